// The budget race across three gateways sharing one Redis: each has its own data directory (copies
// of one, so the team, its keys and its budget are the same), all three share the Redis counters
// under one random prefix. 200 concurrent requests spread over the three: exactly as many served as
// the cap holds (100), the rest refused 402, and the spend never above the cap.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { budgetKey } from '../../policies/cost-cap/index.ts';
import { utcDay } from '../../policies/cost-cap/worst-case.ts';
import { call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { setUpBudgetedTeam, sharedCountersEnv, worstCaseOf } from './budgeted-team.ts';
import { deletePrefix, randomPrefix } from './redis.ts';

const OPENAI_KEY = 'sk-proj-RedisBudgetRaceOpenAIKey0000000001';
const MODEL = 'gpt-4o-mini';
const MAX_TOKENS = 1000;
// More than one gateway's share (200 / 3): at least two gateways must serve from the one budget.
const FITS = 100;
const REQUESTS = 200;
const messages = [{ role: 'user', content: 'Write one short sentence about budgets.' }];

const prefix = randomPrefix();
const directories: string[] = [];
const gateways: TestGateway[] = [];
let openai: SimulatorHandle;
let memberKey = '';
let teamId = '';
let capUsd = 0;

function environment(directory: string): Record<string, string> {
  return sharedCountersEnv(directory, { openaiUrl: openai.url, prefix });
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  const first = mkdtempSync(join(tmpdir(), 'keyway-redis-a-'));
  directories.push(first);
  // One gateway sets up the account, then stops: its data directory is copied for the other two.
  ({ teamId, memberKey, capUsd } = await setUpBudgetedTeam(environment(first), OPENAI_KEY, (pricing) => {
    const worstNanos = worstCaseOf(pricing, { model: MODEL, messages, max_tokens: MAX_TOKENS } as ChatRequest);
    return (FITS * worstNanos + Math.floor(worstNanos / 2)) / 1e9;
  }));
  // The store's last writes land as it closes: wait for them before copying the files.
  await Bun.sleep(500);
  for (const name of ['b', 'c']) {
    const copy = mkdtempSync(join(tmpdir(), `keyway-redis-${name}-`));
    cpSync(first, copy, { recursive: true });
    directories.push(copy);
  }
  for (const directory of directories) gateways.push(await startTestGateway({ probes: false, logLevel: 'warn', env: environment(directory) }));
  // Each copy knows the member's key (an unbudgeted call, so no budget is spent).
  for (const gateway of gateways) expect((await call(gateway, 'GET', '/v1/models', undefined, { key: memberKey })).status).toBe(200);
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  await openai?.stop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  await deletePrefix(prefix);
});

async function one(index: number): Promise<number> {
  const gateway = gateways[index % gateways.length] as TestGateway;
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${memberKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages, max_tokens: MAX_TOKENS, stream: index % 2 === 0 }),
  });
  const text = await response.text();
  if (response.status !== 200 && response.status !== 402) console.log(`unexpected answer from gateway ${index % 3}: ${response.status} ${text.slice(0, 300)}`);
  return response.status;
}

describe('the budget race across three gateways on one Redis', () => {
  test(`${REQUESTS} concurrent requests over three gateways: exactly ${FITS} served, the cap never overshot`, async () => {
    expect(gateways.every((gateway) => gateway.runtime.counters.name === 'redis')).toBe(true);
    // Every upstream answer waits, so every reservation is made before any settles. Each gateway
    // pipelines its reservations, so one batch may take its whole share before another arrives.
    openai.setSticky({ kind: 'delay', delayMs: 1500 });
    const statuses = await Promise.all(Array.from({ length: REQUESTS }, (_, index) => one(index)));
    openai.setSticky(undefined);
    expect(statuses.filter((status) => status === 200).length).toBe(FITS);
    expect(statuses.filter((status) => status === 402).length).toBe(REQUESTS - FITS);
    expect(openai.inferenceRequests().length).toBe(FITS);
    // Per-instance budgets would serve every request (each gateway gets fewer than FITS): exactly FITS means one shared budget.
    const servedBy = [0, 1, 2].map((offset) => statuses.filter((status, index) => index % 3 === offset && status === 200).length);
    expect(servedBy.filter((served) => served > 0).length).toBeGreaterThanOrEqual(2);

    await Bun.sleep(300);
    const day = utcDay(Date.now());
    let spent = 0;
    for (const gateway of gateways) {
      await flushUsage(gateway);
      const rows = await gateway.runtime.store.summarizeUsage({
        accountId: 'default',
        teamId,
        from: new Date(day.start).toISOString(),
        to: new Date(day.end).toISOString(),
      });
      spent += rows.filter((row) => row.provider === 'openai').reduce((sum, row) => sum + row.costUsd, 0);
    }
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(capUsd);
    // The shared counter, read from any gateway, holds the settled spend and never more than the cap.
    const counter = await (gateways[1] as TestGateway).runtime.counters.get(budgetKey('default', teamId, 'openai', day.date));
    expect(counter).toBeLessThanOrEqual(Math.round(capUsd * 1e9));
    expect(counter).toBeGreaterThanOrEqual(Math.floor(spent * 1e9));
    console.log(
      `redis budget race: served ${FITS} of ${REQUESTS} over 3 gateways (${servedBy.join(' + ')}); spend ${spent.toFixed(6)} $ of a ${capUsd} $ cap; counter ${counter} n$`,
    );
  }, 60_000);
});
