// A Keyway process that dies mid-request does not hold its budget reservation for the rest of the
// day: reservations are leases renewed while their request lives, so a SIGKILLed instance's lapse
// within KEYWAY_FIRST_BYTE_TIMEOUT_MS + 5 s and another instance can spend the budget again, while a
// live instance keeps renewing its leases past that.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { FROM_SOURCE, startGatewayProcess, type GatewayProcess } from '../process/process-helpers.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { setUpBudgetedTeam, sharedCountersEnv, worstCaseOf } from './budgeted-team.ts';
import { deletePrefix, randomPrefix } from './redis.ts';

const OPENAI_KEY = 'sk-proj-RedisCrashLeaseOpenAIKey00000000001';
const MODEL = 'gpt-4o-mini';
const FIRST_BYTE_TIMEOUT_MS = 1_000;
const LEASE_MS = FIRST_BYTE_TIMEOUT_MS + 5_000;
const body = { model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(80).trim() }], max_tokens: 1000 };

const prefix = randomPrefix();
const directories: string[] = [];
let openai: SimulatorHandle;
let memberKey = '';
let survivor: TestGateway | undefined;
let doomed: GatewayProcess | undefined;

function environment(directory: string): Record<string, string> {
  return sharedCountersEnv(directory, {
    openaiUrl: openai.url,
    prefix,
    operatorKey: OPERATOR_KEY,
    extra: { KEYWAY_FIRST_BYTE_TIMEOUT_MS: String(FIRST_BYTE_TIMEOUT_MS) },
  });
}

const ask = (url: string, stream: boolean): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${memberKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream }),
  });

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  const first = mkdtempSync(join(tmpdir(), 'keyway-lease-a-'));
  directories.push(first);
  // Room for one request's worst case, not two.
  ({ memberKey } = await setUpBudgetedTeam(environment(first), OPENAI_KEY, (pricing) => Math.floor(worstCaseOf(pricing, body as ChatRequest) * 1.5) / 1e9));
  await Bun.sleep(500);
  const second = mkdtempSync(join(tmpdir(), 'keyway-lease-b-'));
  cpSync(first, second, { recursive: true });
  directories.push(second);
  doomed = await startGatewayProcess({ command: FROM_SOURCE, cwd: first, env: environment(first) });
  survivor = await startTestGateway({ probes: false, logLevel: 'warn', env: environment(second) });
});

afterAll(async () => {
  await doomed?.stop('SIGKILL').catch(() => undefined);
  await survivor?.stop();
  await openai?.stop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  await deletePrefix(prefix);
});

test('a live instance keeps its reservation past a lease; a SIGKILLed one loses it within KEYWAY_FIRST_BYTE_TIMEOUT_MS + 5 s', async () => {
  const gateway = survivor as TestGateway;
  const victim = doomed as GatewayProcess;
  // A long stream on the doomed instance holds the only worst case the budget has room for.
  openai.inject({ kind: 'slow_stream', delayMs: 300 });
  const streaming = await ask(victim.url, true);
  expect(streaming.status).toBe(200);
  const reader = (streaming.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  const refused = await ask(gateway.url, false);
  expect(refused.status).toBe(402);
  await refused.text();

  // While its request lives the instance renews the lease: past a whole lease, the budget is still held.
  await Bun.sleep(LEASE_MS + 1_000);
  const stillHeld = await ask(gateway.url, false);
  expect(stillHeld.status).toBe(402);
  await stillHeld.text();

  victim.process.kill('SIGKILL');
  const killedAt = performance.now();
  await reader.cancel().catch(() => undefined);
  let status = 402;
  while (status === 402 && performance.now() - killedAt < LEASE_MS + 6_000) {
    await Bun.sleep(250);
    const response = await ask(gateway.url, false);
    status = response.status;
    await response.text();
  }
  const freedAfter = performance.now() - killedAt;
  expect(status).toBe(200);
  // Renewals come every LEASE_MS / 3, so the last one was at most that long before the kill.
  expect(freedAfter).toBeLessThanOrEqual(LEASE_MS + 1_000);
  console.log(`lease: the crashed instance's reservation was free ${Math.round(freedAfter)} ms after SIGKILL (bound ${LEASE_MS} ms)`);
}, 40_000);
