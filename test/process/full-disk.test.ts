// A full disk under the gateway's stdout and its data (the default layout: `./data` beside a
// `>> keyway.log`): the gateway keeps answering, books every request once space is back, never dies,
// and says how many log lines it dropped. It used to crash on the first log line the disk refused,
// then hang in its exit (pino's flushSync retrying forever) with the rows it held in memory.
//
// The disk is a 8 MiB tmpfs, so the test mounts one: it runs as root only, and is skipped (saying so)
// where mounting is not permitted (CI without privileges).

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import {
  addOpenAIKey,
  chatCompletion,
  childEnvironment,
  dataFolderEnv,
  FROM_SOURCE,
  REPOSITORY_ROOT,
  ssePayloads,
  waitUntilListening,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-FullDiskUpstreamKey000000000000001';
const OPERATOR_KEY = 'kw_op_FullDiskOperatorKey0123456789abcdef01';

/** Why the test cannot run here, or undefined when a tmpfs can be mounted. */
function mountRefusal(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts are a Linux test';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'keyway-mount-probe-'));
  try {
    const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stderr: 'pipe' });
    if (mounted.exitCode !== 0) return `mount refused: ${mounted.stderr.toString().trim()}`;
    Bun.spawnSync(['umount', probe]);
    return undefined;
  } catch (error) {
    return `mount is not available: ${(error as Error).message}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const refusal = mountRefusal();
if (refusal !== undefined) console.warn(`full-disk.test.ts skipped: ${refusal}`);

let simulator: SimulatorHandle;

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
});

afterAll(async () => {
  await simulator?.stop();
});

/** Writes zeros until the disk refuses: the tmpfs is then full to the last byte. */
/** Appends newlines to `path` until the disk refuses one: the slack of its last page is used up. */
function topUpLastPage(path: string): void {
  const descriptor = openSync(path, 'a');
  const newline = Buffer.from('\n');
  try {
    for (let written = 0; written < 1 << 20; written++) {
      try {
        if (writeSync(descriptor, newline) < 1) break;
      } catch {
        break;
      }
    }
  } finally {
    closeSync(descriptor);
  }
}

function fillDisk(path: string): void {
  const descriptor = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      try {
        if (writeSync(descriptor, block) < block.length) break;
      } catch {
        break;
      }
    }
    // The last few bytes a block did not fit in.
    for (;;) {
      try {
        if (writeSync(descriptor, block, 0, 1) < 1) break;
      } catch {
        break;
      }
    }
  } finally {
    closeSync(descriptor);
  }
}

function rowCounts(databasePath: string, requestIds: readonly string[]): Map<string, number> {
  const database = new Database(databasePath, { readonly: true });
  try {
    const counts = new Map<string, number>(requestIds.map((id) => [id, 0]));
    for (const { request_id } of database.query('SELECT request_id FROM usage_records').all() as Array<{ request_id: string }>) {
      if (counts.has(request_id)) counts.set(request_id, (counts.get(request_id) as number) + 1);
    }
    return counts;
  } finally {
    database.close();
  }
}

async function answered(url: string, index: number): Promise<string> {
  const stream = index % 2 === 1;
  const response = await chatCompletion(url, OPERATOR_KEY, { model: 'gpt-4o', stream, messages: [{ role: 'user', content: `full disk ${index}` }] });
  const body = await response.text();
  expect(response.status).toBe(200);
  if (stream) expect(ssePayloads(body).at(-1)).toBe('[DONE]');
  return response.headers.get('x-request-id') as string;
}

async function healthWithin(url: string, milliseconds: number): Promise<number> {
  return fetch(`${url}/health`, { signal: AbortSignal.timeout(milliseconds) }).then(
    (response) => response.status,
    () => 0,
  );
}

async function droppedLinesMetric(url: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` }, signal: AbortSignal.timeout(2_000) });
  const line = (await response.text()).split('\n').find((candidate) => candidate.startsWith('keyway_log_lines_dropped_total'));
  return Number(line?.split(' ').at(-1));
}

test.skipIf(refusal !== undefined)(
  'stdout and data on a full disk: the gateway keeps answering, never dies, books every request once space is back, and reports the dropped log lines',
  async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'keyway-full-disk-'));
    const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint], { stderr: 'pipe' });
    expect(mounted.exitCode).toBe(0);
    const dataDirectory = join(mountPoint, 'data');
    mkdirSync(dataDirectory);
    const logPath = join(mountPoint, 'keyway.log');
    const filler = join(mountPoint, 'filler');
    const stdout = openSync(logPath, 'a');
    // KEYWAY_MIN_FREE_DISK_MB=0: /ready's disk check is not what this test is about.
    const env = dataFolderEnv(dataDirectory, {
      operatorKey: OPERATOR_KEY,
      upstreams: { openai: simulator.url },
      extra: { KEYWAY_USAGE_FLUSH_MS: '200', KEYWAY_MIN_FREE_DISK_MB: '0' },
    });
    const gateway = Bun.spawn(FROM_SOURCE, { cwd: REPOSITORY_ROOT, env: childEnvironment(env), stdin: 'ignore', stdout, stderr: 'pipe' });
    closeSync(stdout);
    const stderr = new Response(gateway.stderr).text();
    let exited = false;
    void gateway.exited.then(() => {
      exited = true;
    });
    const output = () => readFileSync(logPath, 'utf8');
    try {
      const url = await waitUntilListening(output, () => exited);
      await addOpenAIKey(url, OPERATOR_KEY, UPSTREAM_KEY);
      const before = await Promise.all(Array.from({ length: 4 }, (_, index) => answered(url, index)));

      fillDisk(filler);
      // tmpfs gives a file whole pages: the log's last page has room for a few more lines however full
      // the disk is, and how much depends on what was logged before (a new migration's name moved it).
      // Topped up with blank lines, the next line the gateway logs is refused.
      topUpLastPage(logPath);
      const whileFull: string[] = [];
      for (let index = 0; index < 20; index++) whileFull.push(await answered(url, 100 + index));
      // Flushes fail every 200 ms meanwhile, and each failure is a log line the disk refuses.
      for (let check = 0; check < 6; check++) {
        await Bun.sleep(250);
        expect(await healthWithin(url, 2_000)).toBe(200);
      }
      expect(exited).toBe(false);
      expect(await droppedLinesMetric(url)).toBeGreaterThan(0);
      whileFull.push(await answered(url, 200));

      unlinkSync(filler);
      const everyId = [...before, ...whileFull];
      const databasePath = join(dataDirectory, 'keyway.db');
      const deadline = performance.now() + 15_000;
      let counts = rowCounts(databasePath, everyId);
      while ([...counts.values()].some((count) => count === 0) && performance.now() < deadline) {
        await Bun.sleep(200);
        counts = rowCounts(databasePath, everyId);
      }
      expect([...counts.entries()].filter(([, count]) => count !== 1)).toEqual([]);
      expect(await healthWithin(url, 2_000)).toBe(200);
      await answered(url, 300);
      // Once lines go out again, one warning says how many were lost.
      const warningDeadline = performance.now() + 5_000;
      while (!output().includes('log lines could not be written and were dropped') && performance.now() < warningDeadline) await Bun.sleep(100);
      const warnings = output()
        .split('\n')
        .filter((line) => line.includes('log lines could not be written and were dropped'));
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 'warn', reason: 'ENOSPC' });
      expect(exited).toBe(false);

      gateway.kill('SIGTERM');
      expect(await gateway.exited).toBe(0);
      expect(await stderr).not.toContain('ENOSPC');
    } finally {
      if (!exited) {
        gateway.kill('SIGKILL');
        await gateway.exited;
      }
      Bun.spawnSync(['umount', mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    }
  },
  90_000,
);
