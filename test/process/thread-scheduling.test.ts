// Helper threads without wake-up preemption (core/process/thread-scheduling.ts): the /proc readers on
// fixtures, the policy call after collections (its struct once lived in memory a collection could
// reuse, so a first upstream call seconds after start was refused), then a running gateway, whose HTTP client thread (once a call made it) and usage writer
// thread run under SCHED_BATCH by default and as the runtime made them with
// KEYWAY_THREAD_SCHEDULING=default, while the request thread is never touched.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.ts';
import { batchScheduleThreads, HELPER_THREAD_NAMES, policyFromStat, SCHED_BATCH, threadsNamed, threadYielder } from '../../core/process/thread-scheduling.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, chatCompletion, dataFolderEnv, FROM_SOURCE, startGatewayProcess, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-ThreadSchedulingUpstreamKey000001';
const OPERATOR_KEY = 'kw_op_ThreadSchedulingOperatorKey0123456789ab';
const scratch: string[] = [];

afterAll(() => {
  for (const directory of scratch) rmSync(directory, { recursive: true, force: true });
});

function directory(name: string): string {
  const made = mkdtempSync(join(tmpdir(), `keyway-${name}-`));
  scratch.push(made);
  return made;
}

describe('reading threads from /proc', () => {
  test('policyFromStat counts fields after the name, which may hold spaces and parentheses', () => {
    const after = Array.from({ length: 50 }, (_, index) => String(index + 3));
    after[0] = 'S';
    after[38] = '3';
    expect(policyFromStat(`4242 (HTTP Client) ${after.join(' ')}`)).toBe(3);
    expect(policyFromStat(`4242 (odd) name (x)) ${after.join(' ')}`)).toBe(3);
    after[38] = '0';
    expect(policyFromStat(`7 (bun) ${after.join(' ')}`)).toBe(0);
    expect(policyFromStat('7 (bun) S 1 2')).toBeUndefined();
  });

  test('threadsNamed finds the named threads of a task directory, and nothing where it cannot read one', () => {
    const tasks = directory('tasks');
    for (const [tid, name] of [
      ['100', 'bun'],
      ['101', 'HTTP Client'],
      ['102', 'Bun Pool 0'],
    ] as const) {
      mkdirSync(join(tasks, tid));
      writeFileSync(join(tasks, tid, 'comm'), `${name}\n`);
    }
    mkdirSync(join(tasks, '103'));
    expect(threadsNamed(HELPER_THREAD_NAMES, tasks)).toEqual([{ tid: 101, name: 'HTTP Client' }]);
    expect(threadsNamed(HELPER_THREAD_NAMES, join(tasks, 'missing'))).toEqual([]);
  });

  test('KEYWAY_THREAD_SCHEDULING: batch by default, default on request, anything else refused at start', () => {
    expect(loadConfig({}).threadScheduling).toBe('batch');
    expect(loadConfig({ KEYWAY_THREAD_SCHEDULING: 'Default' }).threadScheduling).toBe('default');
    expect(() => loadConfig({ KEYWAY_THREAD_SCHEDULING: 'idle' })).toThrow(/KEYWAY_THREAD_SCHEDULING must be one of batch, default/);
  });
});

describe.skipIf(process.platform !== 'linux')('setting the policy', () => {
  test('still works after collections have reused the memory of the call set-up (the start-up release runs one)', async () => {
    // This process's own HTTP client thread: a fetch starts it.
    const server = Bun.serve({ port: 0, fetch: () => new Response('ok') });
    try {
      await (await fetch(`http://127.0.0.1:${server.port}/`)).text();
      const helpers = threadsNamed(HELPER_THREAD_NAMES);
      expect(helpers.length).toBe(1);
      expect(await batchScheduleThreads(helpers)).toEqual(helpers);
      // What the start-up memory release does, then garbage that fills freed memory with non-zero
      // words: the call's struct must still read as priority 0.
      for (let round = 0; round < 3; round++) {
        Bun.gc(true);
        (Bun as { shrink?: () => void }).shrink?.();
        const filler = Array.from({ length: 20_000 }, () => new Int32Array(4).fill(7));
        expect(filler.length).toBe(20_000);
      }
      expect(await batchScheduleThreads(helpers)).toEqual(helpers);
    } finally {
      server.stop(true);
    }
  });
});

describe.skipIf(process.platform !== 'linux')('yielding the core', () => {
  test('the usage writer gets sched_yield: a call that returns and leaves the thread running', async () => {
    const yieldCore = await threadYielder();
    expect(typeof yieldCore).toBe('function');
    let calls = 0;
    for (let round = 0; round < 1000; round++) {
      yieldCore?.();
      calls++;
    }
    expect(calls).toBe(1000);
  });
});

function threadPolicies(pid: number): Map<string, number | undefined> {
  const policies = new Map<string, number | undefined>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = tid === String(pid) ? 'request thread' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      policies.set(name, policyFromStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended while it was read.
    }
  }
  return policies;
}

async function policiesAfterACall(env: Record<string, string>, firstCallAfterMs = 0): Promise<Map<string, number | undefined>> {
  const data = directory('threads');
  const gateway: GatewayProcess = await startGatewayProcess({
    command: FROM_SOURCE,
    cwd: data,
    env: dataFolderEnv(data, { operatorKey: OPERATOR_KEY, upstreams: { openai: simulator.url }, extra: { KEYWAY_WORKERS: '1', ...env } }),
  });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    await Bun.sleep(firstCallAfterMs);
    const answer = await chatCompletion(gateway.url, OPERATOR_KEY, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] });
    expect(answer.status).toBe(200);
    // The usage writer thread starts with the first flush and sets itself when it opens; the helper
    // threads are looked for every 2 s.
    const deadline = Date.now() + 6000;
    const settled = (policies: Map<string, number | undefined>): boolean =>
      policies.has('Worker') && policies.has('HTTP Client') && (env.KEYWAY_THREAD_SCHEDULING !== undefined || policies.get('HTTP Client') === SCHED_BATCH);
    let policies = threadPolicies(gateway.process.pid);
    while (!settled(policies) && Date.now() < deadline) {
      await Bun.sleep(200);
      policies = threadPolicies(gateway.process.pid);
    }
    return policies;
  } finally {
    await gateway.stop();
  }
}

let simulator: SimulatorHandle;

describe.skipIf(process.platform !== 'linux')('a running gateway', () => {
  beforeAll(() => {
    simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  });
  afterAll(async () => {
    await simulator.stop();
  });

  test('by default its HTTP client and usage writer threads run under SCHED_BATCH, its request thread as it was', async () => {
    const policies = await policiesAfterACall({});
    expect(policies.get('HTTP Client')).toBe(SCHED_BATCH);
    expect(policies.get('Worker')).toBe(SCHED_BATCH);
    expect(policies.get('request thread')).toBe(0);
  }, 30_000);

  test('so does the HTTP client thread of a gateway whose first upstream call comes seconds after it started', async () => {
    // Past the start-up memory release (1 s) and the watch's first looks (every 2 s).
    const policies = await policiesAfterACall({}, 4500);
    expect(policies.get('HTTP Client')).toBe(SCHED_BATCH);
  }, 30_000);

  test('KEYWAY_THREAD_SCHEDULING=default leaves every thread under the ordinary policy', async () => {
    const policies = await policiesAfterACall({ KEYWAY_THREAD_SCHEDULING: 'default' });
    expect(policies.get('HTTP Client')).toBe(0);
    expect(policies.get('Worker')).toBe(0);
    expect([...policies.values()].every((policy) => policy === 0)).toBe(true);
  }, 30_000);
});
