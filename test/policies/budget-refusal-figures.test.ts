// A 402 caused by reservations in flight must add up: identical requests in flight reserved their
// worst case on the prompt's byte bound (the tokenizer counts a prompt only when that does not fit),
// while the refused request's worst case is the smaller counted one. QA read "this request may cost
// up to $0.001715" beside `in_flight_usd: 0.00996` from 4 requests, and five of $0.001715 would have
// fit: the answer now states the bound too (`worst_case_bound_usd`), which the in-flight ones hold.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { formatNanos } from '../../core/catalog/nano-usd.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { type ErrorBody, setOpenAIDailyCap, startTeamGateway, type TeamGateway } from './team-fixture.ts';

const MODEL = 'gpt-4o-mini';
const ADMITTED = 4;
const REQUESTS = 40;
const request: ChatRequest = {
  model: MODEL,
  max_tokens: 50,
  stream: true,
  messages: [{ role: 'user', content: 'Summarise the quarterly budget report for the release notes of the gateway team. '.repeat(40) }],
};

describe('a 402 caused by identical requests in flight', () => {
  let setup: TeamGateway;
  let boundNanos: number;
  let countedNanos: number;

  beforeAll(async () => {
    setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 1000 } } });
    const pricing = setup.gateway.runtime.services.pricing;
    boundNanos = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    countedNanos = worstCaseNanos(pricing, request, 'openai', MODEL, (await pricing.countPromptTokens('openai', MODEL, request)) as number) as number;
    // Four bound reservations fit, and what is left holds no counted one; five counted ones would fit.
    expect((ADMITTED + 1) * countedNanos).toBeLessThan(ADMITTED * boundNanos);
    await setOpenAIDailyCap(setup, (ADMITTED * boundNanos + Math.floor(countedNanos / 2)) / 1e9);
  });

  afterAll(async () => {
    await setup.stop();
  });

  test('states both worst cases, and what is in flight is the admitted requests times the bound', async () => {
    setup.openai.setSticky({ kind: 'delay', delayMs: 1500 });
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, async () => {
        const response = await fetch(`${setup.gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(request),
        });
        const text = await response.text();
        return { status: response.status, error: response.status === 200 ? undefined : (JSON.parse(text) as ErrorBody).error };
      }),
    );
    setup.openai.setSticky(undefined);
    expect(answers.filter((answer) => answer.status === 200).length).toBe(ADMITTED);
    const refused = answers.filter((answer) => answer.status === 402);
    expect(refused.length).toBe(REQUESTS - ADMITTED);
    for (const { error } of refused) {
      expect(error?.worst_case_usd).toBe(countedNanos / 1e9);
      expect(error?.worst_case_bound_usd).toBe(boundNanos / 1e9);
      expect(error?.in_flight_usd).toBe((ADMITTED * boundNanos) / 1e9);
      expect(error?.message).toContain(
        `this request may cost up to ${formatNanos(countedNanos)} with its prompt counted by openai's tokenizer, ${formatNanos(boundNanos)} on the prompt's byte bound, which is what an identical request reserves while it is in flight`,
      );
      expect(error?.message).toContain('each reserved its worst case with its prompt counted from above');
    }
  }, 30_000);
});
