// A worker that hangs before it listens, under KEYWAY_WORKERS=2 (a plugin whose setup never finishes
// stands for a key source or a database that never answers). Before, the primary waited for it for
// ever: during the start it never listened and printed nothing; a restarted worker that hung left the
// instance one worker short, unreported. Now KEYWAY_WORKER_START_TIMEOUT_MS times every start: during
// the start the primary kills the worker, stops the others and exits 1 with one line naming it; a
// restarted worker is killed with one error line and restarted again with the usual back-off.

import { afterAll, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { alive, childEnvironment, dataFolderEnv, FROM_SOURCE, logLines, runUntilExit, startTwoWorkers, until } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_StartTimeoutOperatorKey0123456789ab';
const HANGING_START_PLUGIN = resolve(import.meta.dir, 'fixtures/hanging-start-plugin.ts');
/** Short for the test, yet above what a sound worker's start takes on a busy two-core machine. */
const START_TIMEOUT_MS = 8_000;

const scratch: string[] = [];
afterAll(() => {
  for (const directory of scratch) rmSync(directory, { recursive: true, force: true });
});

test('a worker hanging in its first start is killed at KEYWAY_WORKER_START_TIMEOUT_MS, and the start stops with one line naming it', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-start-timeout-'));
  scratch.push(directory);
  writeFileSync(join(directory, 'hang-worker-2'), '');
  const startedAt = performance.now();
  const result = await runUntilExit(
    {
      command: FROM_SOURCE,
      cwd: directory,
      env: dataFolderEnv(directory, {
        operatorKey: OPERATOR_KEY,
        extra: {
          KEYWAY_WORKERS: '2',
          KEYWAY_PLUGINS: HANGING_START_PLUGIN,
          KEYWAY_LOG_LEVEL: 'info',
          KEYWAY_WORKER_START_TIMEOUT_MS: String(START_TIMEOUT_MS),
        },
      }),
    },
    START_TIMEOUT_MS + 40_000,
  );
  expect(result.exitCode).toBe(1);
  expect(performance.now() - startedAt).toBeGreaterThanOrEqual(START_TIMEOUT_MS);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(
    /^keyway: cannot start: worker 2 \(pid \d+\) did not listen within 8 s \(KEYWAY_WORKER_START_TIMEOUT_MS\): it was killed and the start stopped\.$/,
  );
  // Worker 1 had listened: it was stopped too, and nothing of the instance is left running.
  expect(logLines(result.stdout).some((line) => line.msg === 'worker 1 listening')).toBe(true);
  const pids = logLines(result.stdout)
    .filter((line) => line.msg === 'worker 1 listening')
    .map((line) => line.pid as number);
  pids.push(Number(/pid (\d+)/.exec(lines[0] ?? '')?.[1]));
  expect(await until(() => pids.every((pid) => !alive(pid)), 5_000)).toBe(true);
}, 90_000);

test('a restarted worker that hangs is killed with one error line and restarted again, while the other worker serves', async () => {
  const { gateway, directory } = await startTwoWorkers('keyway-start-timeout-restart', {
    operatorKey: OPERATOR_KEY,
    upstreams: {},
    extra: { KEYWAY_PLUGINS: HANGING_START_PLUGIN, KEYWAY_WORKER_START_TIMEOUT_MS: String(START_TIMEOUT_MS) },
  });
  scratch.push(directory);
  try {
    const victim = logLines(gateway.stdout()).find((line) => line.msg === 'worker 2 listening')?.pid as number;
    expect(victim).toBeGreaterThan(0);
    // Its next start hangs, as a key source that stopped answering would make it.
    writeFileSync(join(directory, 'hang-worker-2'), '');
    process.kill(victim, 'SIGKILL');
    const timeoutLine = (): Record<string, unknown> | undefined =>
      logLines(gateway.stdout()).find((line) => typeof line.msg === 'string' && line.msg.includes('(KEYWAY_WORKER_START_TIMEOUT_MS); killing it'));
    expect(await until(() => timeoutLine() !== undefined, START_TIMEOUT_MS + 15_000)).toBe(true);
    const line = timeoutLine() as Record<string, unknown>;
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/^worker 2 \(pid \d+\) did not listen within 8 s \(KEYWAY_WORKER_START_TIMEOUT_MS\); killing it$/);
    expect(line.worker).toBe(2);
    // The line is written as the kill is sent: the process is gone once the primary has reaped it.
    expect(await until(() => !alive(line.pid as number), 5_000)).toBe(true);
    // Worker 1 served all along.
    expect((await fetch(`${gateway.url}/ready`)).status).toBe(200);
    // Once whatever it waited for answers again, the next restart listens.
    rmSync(join(directory, 'hang-worker-2'));
    expect(await until(() => logLines(gateway.stdout()).some((entry) => entry.msg === 'worker 2 is back'), 30_000)).toBe(true);
    expect(gateway.process.exitCode).toBeNull();
    expect(await gateway.stop('SIGTERM', 20_000)).toBe(0);
  } finally {
    if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
  }
}, 120_000);

test('a worker still starting when its primary is killed exits, instead of staying an orphan that could listen later', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-start-orphan-'));
  scratch.push(directory);
  writeFileSync(join(directory, 'hang-worker-2'), '');
  const primary = Bun.spawn(FROM_SOURCE, {
    cwd: directory,
    env: childEnvironment(
      dataFolderEnv(directory, {
        operatorKey: OPERATOR_KEY,
        // Never timed: only the primary's death may end this start.
        extra: { KEYWAY_WORKERS: '2', KEYWAY_PLUGINS: HANGING_START_PLUGIN, KEYWAY_WORKER_START_TIMEOUT_MS: '0' },
      }),
    ),
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
  });
  const pidFile = join(directory, 'hung-worker-2.pid');
  let worker = 0;
  try {
    expect(await until(() => existsSync(pidFile), 40_000)).toBe(true);
    worker = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(worker)).toBe(true);
    primary.kill('SIGKILL');
    await primary.exited;
    expect(await until(() => !alive(worker), 5_000)).toBe(true);
  } finally {
    if (primary.exitCode === null) primary.kill('SIGKILL');
    if (worker > 0 && alive(worker)) process.kill(worker, 'SIGKILL');
  }
}, 60_000);
