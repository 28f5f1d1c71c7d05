// One Keyway instance per embedded SQLite database (plugins/store-sqlite/instance-lock.ts): a second
// start on the same file, alone or with workers, is refused with a message naming the first one's pid
// and what to do instead, while the first goes on serving; a SIGKILLed holder leaves nothing behind
// that blocks the next start; and the workers of one instance are not refused by their own primary.
// QA17 SRE review: two instances on one file served, and drifted apart (a key revoked on one kept
// working on the other, a team budget was spent 1.8 times over).

import { expect, test } from 'bun:test';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { dataFolderEnv, FROM_SOURCE, runUntilExit, startGatewayProcess, type GatewayProcess, simulatorAndScratch } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-InstanceLockUpstreamKey000000000001';
const OPERATOR_KEY = 'kw_op_InstanceLockOperatorKey0123456789abcd';

const suite = simulatorAndScratch(UPSTREAM_KEY);

function environment(directory: string, extra: Record<string, string> = {}): Record<string, string> {
  return dataFolderEnv(directory, { operatorKey: OPERATOR_KEY, upstreams: { openai: suite.simulator.url }, extra });
}

async function ready(gateway: GatewayProcess): Promise<number> {
  return (await fetch(`${gateway.url}/ready`)).status;
}

function expectRefusedFor(result: { exitCode: number; stdout: string; stderr: string }, directory: string, holder: number): void {
  expect(result.exitCode).not.toBe(0);
  expect(result.stderr).toStartWith('keyway: cannot start: ');
  expect(result.stderr).toContain(`the embedded database ${join(directory, 'keyway.db')} is in use by another Keyway process (pid ${holder})`);
  expect(result.stderr).toContain('run several instances on PostgreSQL and Redis');
  expect(result.stderr).toContain('docs/deployment.md');
  // Refused before anything was opened: no listening line, no stack trace.
  expect(result.stdout).not.toContain('Keyway listening');
  expect(result.stderr).not.toContain('    at ');
}

test('a second start on the same SQLite database is refused, alone or with workers, naming the first; the first keeps serving', async () => {
  const directory = suite.dataDirectory('instance-lock');
  const first = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment(directory) });
  try {
    expectRefusedFor(await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: environment(directory) }), directory, first.process.pid);
    // With workers, on the port the first one listens on: SO_REUSEPORT would have let it share the port.
    const port = new URL(first.url).port;
    expectRefusedFor(
      await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: environment(directory, { KEYWAY_WORKERS: '2', KEYWAY_PORT: port }) }),
      directory,
      first.process.pid,
    );
    expect(await ready(first)).toBe(200);
    // The lock file is as private as the database beside it.
    expect((statSync(join(directory, 'keyway.db.lock')).mode & 0o777).toString(8)).toBe('600');
    expect(await first.stop('SIGTERM')).toBe(0);
  } finally {
    if (first.process.exitCode === null) await first.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);

test('after a SIGKILL the next start succeeds at once; an instance with workers holds the lock for them all', async () => {
  const directory = suite.dataDirectory('instance-lock-kill');
  const killed = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment(directory) });
  killed.process.kill('SIGKILL');
  await killed.waitForExit();
  // Two workers: the primary holds the lock, and its workers open the database all the same.
  const workers = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment(directory, { KEYWAY_WORKERS: '2' }) }, 40_000);
  try {
    expect(workers.stdout()).toContain('"workers":2');
    expect(await ready(workers)).toBe(200);
    expectRefusedFor(await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: environment(directory) }), directory, workers.process.pid);
    expect(await workers.stop('SIGTERM')).toBe(0);
    // A clean stop gives it back as well.
    const next = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment(directory) });
    expect(await next.stop('SIGTERM')).toBe(0);
  } finally {
    if (workers.process.exitCode === null) await workers.stop('SIGKILL').catch(() => undefined);
  }
}, 90_000);
