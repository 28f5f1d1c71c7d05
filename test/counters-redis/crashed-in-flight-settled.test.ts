// QA18 multi #2: a process SIGKILLed with a budgeted call in flight. The provider bills the call; the
// restarted process's replay books it at its estimate (docs/security.md, "Requests in flight at a
// crash"). Its reservation was a lease on the shared counters, which lapsed, and nothing put the
// estimate in its place: the team could spend its whole cap again on top of the billed call (QA18 saw
// 7 calls billed against a cap that fitted 5). Now the open mark names the request's leases and the
// replay settles them to the estimated row's cost.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { OPERATOR_KEY } from '../helpers/gateway.ts';
import { FROM_SOURCE, logLines, startGatewayProcess, type GatewayProcess } from '../process/process-helpers.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { setUpBudgetedTeam, sharedCountersEnv, worstCaseOf } from './budgeted-team.ts';
import { deletePrefix, randomPrefix } from './redis.ts';

const OPENAI_KEY = 'sk-proj-RedisCrashSettledOpenAIKey000000001';
const MODEL = 'gpt-4o-mini';
const FIRST_BYTE_TIMEOUT_MS = 5_000;
const LEASE_MS = FIRST_BYTE_TIMEOUT_MS + 5_000;
const body = { model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(400).trim() }], max_tokens: 1000 };

const prefix = randomPrefix();
let directory = '';
let openai: SimulatorHandle;
let memberKey = '';
let gateway: GatewayProcess | undefined;

function environment(): Record<string, string> {
  return sharedCountersEnv(directory, {
    openaiUrl: openai.url,
    prefix,
    operatorKey: OPERATOR_KEY,
    extra: {
      KEYWAY_FIRST_BYTE_TIMEOUT_MS: String(FIRST_BYTE_TIMEOUT_MS),
      // Every budget on the prompt's byte bound: counted by OpenAI's tokenizer, a worst case would fit beside the estimate.
      KEYWAY_TOKENIZERS: 'off',
    },
  });
}

const ask = (url: string): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${memberKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  directory = mkdtempSync(join(tmpdir(), 'keyway-crash-settled-'));
  ({ memberKey } = await setUpBudgetedTeam(environment(), OPENAI_KEY, (pricing) => {
    const request = body as ChatRequest;
    // What the replay books for the call killed before its answer: its prompt's bound, no output.
    const estimate = pricing.promptTokenBound(request) * (pricing.price('openai', MODEL)?.inputPerToken as number) * 1e9;
    // Room for one worst case; once the killed call's estimate is spent, not for another.
    return Math.floor(worstCaseOf(pricing, request) + estimate / 2) / 1e9;
  }));
  gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment() });
});

afterAll(async () => {
  await gateway?.stop('SIGKILL').catch(() => undefined);
  await openai?.stop();
  rmSync(directory, { recursive: true, force: true });
  await deletePrefix(prefix);
});

test('the replay settles a killed call’s budget lease to its estimate: the budget stays spent after the lease would have lapsed', async () => {
  const doomed = gateway as GatewayProcess;
  openai.reset();
  openai.inject({ kind: 'delay', delayMs: 60_000 });
  const pending = ask(doomed.url).catch(() => undefined);
  for (let waited = 0; openai.inferenceRequests().length < 1; waited += 10) {
    if (waited > 10_000) throw new Error('the call never reached the simulator');
    await Bun.sleep(10);
  }
  // Past one mark interval (1 s): the call's open mark, with its lease, is in the journal.
  await Bun.sleep(1_500);
  doomed.process.kill('SIGKILL');
  await doomed.waitForExit();
  const killedAt = performance.now();
  gateway = undefined;
  await pending;

  gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: environment() });
  expect(logLines(gateway.stdout()).some((line) => line.msg === 'replaying the usage journal of a previous run')).toBe(true);
  // Past the lease the killed process took: before, its amount left the budget here and a worst case fitted again.
  const lapse = LEASE_MS + 1_000 - (performance.now() - killedAt);
  if (lapse > 0) await Bun.sleep(lapse);
  const after = await ask(gateway.url);
  const answer = (await after.json()) as { error?: { code?: string } };
  expect([after.status, answer.error?.code]).toEqual([402, 'budget_exceeded']);
  expect(logLines(gateway.stdout()).some((line) => String(line.msg).includes('could not be settled'))).toBe(false);
}, 60_000);
