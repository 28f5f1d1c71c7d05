// The usage journal of a process killed with SIGKILL is replayed once, whatever its pid looks like
// afterwards, and without waiting for a restart:
// - a restart moments after the kill, while the killed pid is still a zombie (its parent has not
//   reaped it), replays the journal: every answered request has exactly one row;
// - a gateway that keeps running replays the journal of another one on the same data directory that
//   died (its periodic rescan), and never touches it while that one lives. Two instances share a data
//   directory only on PostgreSQL: on the embedded database the second start is refused
//   (test/process/instance-lock.test.ts), so that test runs on PostgreSQL and skips without it.

import { expect, test } from 'bun:test';
import { SQL } from 'bun';
import { Database } from 'bun:sqlite';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcessStat } from '../../core/accounting/journal-owner.ts';
import { redisReachable, TEST_REDIS_URL } from '../counters-redis/redis.ts';
import { createTestDatabase, postgresReachable } from '../store-postgres/database.ts';
import {
  addOpenAIKey,
  chatCompletion,
  childEnvironment,
  dataFolderEnv,
  FROM_SOURCE,
  logLines,
  ssePayloads,
  startGatewayProcess,
  waitUntilListening,
  type GatewayProcess,
  simulatorAndScratch,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-JournalReplayUpstreamKey0000000001';
const OPERATOR_KEY = 'kw_op_JournalReplayOperatorKey0123456789abc';
/** A shared database needs the master key named, the same on every instance. */
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 7 + 3)).toString('base64');

const suite = simulatorAndScratch(UPSTREAM_KEY);
const dataDirectory = (name: string): string => suite.dataDirectory(name);

function gatewayEnv(directory: string, extra: Record<string, string> = {}): Record<string, string> {
  // Rows stay in the journal only until a flush a minute away: a journal not replayed is rows missing.
  return dataFolderEnv(directory, {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: suite.simulator.url },
    extra: { KEYWAY_USAGE_FLUSH_MS: '60000', ...extra },
  });
}

function countPerRequest(rows: ReadonlyArray<{ request_id: string }>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { request_id } of rows) counts.set(request_id, (counts.get(request_id) ?? 0) + 1);
  return counts;
}

function rowsPerRequest(directory: string): Map<string, number> {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return countPerRequest(database.query('SELECT request_id FROM usage_records').all() as Array<{ request_id: string }>);
  } finally {
    database.close();
  }
}

const journalFiles = (directory: string): string[] => readdirSync(join(directory, 'usage-journal')).filter((name) => name.endsWith('.jsonl'));

interface Call {
  requestId: string | null;
  /** The whole answer arrived: a JSON body, or a stream ending with [DONE]. */
  complete: boolean;
}

async function call(url: string, index: number): Promise<Call> {
  const stream = index % 2 === 1;
  let requestId: string | null = null;
  try {
    const response = await chatCompletion(url, OPERATOR_KEY, { model: 'gpt-4o', stream, messages: [{ role: 'user', content: `in flight ${index}` }] });
    requestId = response.headers.get('x-request-id');
    const body = await response.text();
    const complete =
      response.status === 200 && (stream ? ssePayloads(body).at(-1) === '[DONE]' : Array.isArray((JSON.parse(body) as { choices?: unknown }).choices));
    return { requestId, complete };
  } catch {
    return { requestId, complete: false };
  }
}

/** Every answered request has exactly one row; a request cut by the kill has at most one. */
function expectBookedOnce(counts: Map<string, number>, calls: readonly Call[]): void {
  const answered = calls.filter((one) => one.complete).map((one) => one.requestId as string);
  expect(answered.filter((id) => counts.get(id) !== 1)).toEqual([]);
  const cut = calls.filter((one) => !one.complete && one.requestId !== null).map((one) => one.requestId as string);
  expect(cut.filter((id) => (counts.get(id) ?? 0) > 1)).toEqual([]);
}

test.skipIf(readProcessStat('self') === undefined)(
  'SIGKILL with requests in flight, restarted while the killed pid is still a zombie: every answered request has exactly one row',
  async () => {
    const directory = dataDirectory('zombie-restart');
    const logPath = join(directory, 'keyway.log');
    // The gateway's parent is `sleep`, which never reaps a child: after SIGKILL the gateway stays a zombie.
    const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
    const parent = Bun.spawn(['sh', '-c', `${FROM_SOURCE.map(quote).join(' ')} >> ${quote(logPath)} 2>&1 & echo $!; exec sleep 600`], {
      cwd: directory,
      env: childEnvironment(gatewayEnv(directory)),
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'ignore',
    });
    const reader = parent.stdout.getReader();
    const pid = Number(new TextDecoder().decode((await reader.read()).value).trim());
    reader.releaseLock();
    let restarted: GatewayProcess | undefined;
    try {
      const url = await waitUntilListening(
        // The shell opens the log after it answers the pid: read nothing until it exists.
        () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''),
        () => readProcessStat(pid) === undefined || readProcessStat(pid)?.state === 'Z',
      );
      await addOpenAIKey(url, OPERATOR_KEY, UPSTREAM_KEY);
      // Answers spread over about 1.5 s: some are done at the kill, the rest are cut by it.
      suite.simulator.inject(...Array.from({ length: 30 }, (_, index) => ({ kind: 'delay' as const, delayMs: index * 50 })));
      const calls: Call[] = [];
      const inFlight = Array.from({ length: 30 }, (_, index) => call(url, index).then((one) => void calls.push(one)));
      for (let waited = 0; calls.filter((one) => one.complete).length < 8 && waited < 10_000; waited += 10) await Bun.sleep(10);
      process.kill(pid, 'SIGKILL');
      await Promise.all(inFlight);
      for (let waited = 0; readProcessStat(pid)?.state !== 'Z' && waited < 5_000; waited += 10) await Bun.sleep(10);
      expect(readProcessStat(pid)?.state).toBe('Z');
      expect(calls.filter((one) => one.complete).length).toBeGreaterThanOrEqual(8);
      expect(calls.filter((one) => !one.complete).length).toBeGreaterThan(0);

      // Restarted at once: the zombie still holds the pid.
      restarted = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
      expect(readProcessStat(pid)?.state).toBe('Z');
      const replay = logLines(restarted.stdout()).find((line) => line.msg === 'replaying the usage journal of a previous run');
      expect(replay).toBeDefined();
      expectBookedOnce(rowsPerRequest(directory), calls);
      expect(await restarted.stop('SIGTERM')).toBe(0);
      restarted = undefined;
      // Nothing left behind, nothing booked twice by the drain.
      expectBookedOnce(rowsPerRequest(directory), calls);
      expect(journalFiles(directory)).toEqual([]);
    } finally {
      if (readProcessStat(pid) !== undefined && readProcessStat(pid)?.state !== 'Z') process.kill(pid, 'SIGKILL');
      await restarted?.stop('SIGKILL').catch(() => undefined);
      // Its parent gone, the zombie is reaped by init.
      parent.kill('SIGKILL');
      await parent.exited;
    }
  },
  90_000,
);

const postgres = await postgresReachable();
if (!postgres) console.warn('PostgreSQL is not reachable on 127.0.0.1:5432: the shared data directory test is skipped');
// Two instances on one PostgreSQL database need shared counters: without them the second start is
// refused (core/process/instance-lease.ts).
const redis = postgres && (await redisReachable());
if (postgres && !redis) console.warn('Redis is not reachable: the shared data directory test (two instances) is skipped');

test.skipIf(!redis)(
  'a running gateway replays the journal of another one on its data directory that died, and never touches it while it lives',
  async () => {
    const directory = dataDirectory('rescan');
    const database = await createTestDatabase();
    const reader = new SQL(database.url, { max: 1 });
    const rows = async (): Promise<Map<string, number>> =>
      countPerRequest((await reader.unsafe('SELECT request_id FROM usage_records')) as Array<{ request_id: string }>);
    const rescanMs = '200';
    const env = gatewayEnv(directory, {
      KEYWAY_USAGE_JOURNAL_RESCAN_MS: rescanMs,
      KEYWAY_DATABASE_URL: database.url,
      KEYWAY_MASTER_KEY: MASTER_KEY,
      KEYWAY_REDIS_URL: TEST_REDIS_URL,
      KEYWAY_REDIS_PREFIX: `journal-replay-${crypto.randomUUID().slice(0, 8)}:`,
    });
    const survivor = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env });
    let victim: GatewayProcess | undefined;
    try {
      await addOpenAIKey(survivor.url, OPERATOR_KEY, UPSTREAM_KEY);
      victim = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env });
      const victimPid = victim.process.pid;
      const calls = await Promise.all(Array.from({ length: 12 }, (_, index) => call((victim as GatewayProcess).url, index)));
      expect(calls.every((one) => one.complete)).toBe(true);

      // Many rescans while it lives: its journal stays its own.
      await Bun.sleep(1_200);
      const counts = await rows();
      expect(calls.filter((one) => counts.has(one.requestId as string))).toEqual([]);
      expect(journalFiles(directory).some((name) => new RegExp(`^${victimPid}[.-]`).test(name))).toBe(true);

      victim.process.kill('SIGKILL');
      await victim.waitForExit();
      victim = undefined;
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) {
        const booked = await rows();
        if (calls.every((one) => booked.has(one.requestId as string))) break;
        await Bun.sleep(100);
      }
      expectBookedOnce(await rows(), calls);
      expect(logLines(survivor.stdout()).some((line) => line.msg === 'replaying the usage journal of a process that died')).toBe(true);
      // No restart: the same process did it, and goes on serving.
      expect(survivor.process.exitCode).toBeNull();
      expect((await call(survivor.url, 100)).complete).toBe(true);
      await Bun.sleep(600);
      expectBookedOnce(await rows(), calls);
      expect(await survivor.stop('SIGTERM')).toBe(0);
    } finally {
      await victim?.stop('SIGKILL').catch(() => undefined);
      if (survivor.process.exitCode === null) await survivor.stop('SIGKILL').catch(() => undefined);
      await reader.close();
      await database.drop();
    }
  },
  90_000,
);
