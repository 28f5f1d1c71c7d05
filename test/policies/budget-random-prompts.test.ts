// Budgets hold for prompts a calibrated estimate gets wrong. The OpenAI simulator here counts prompts
// with OpenAI's own tokenizer (o200k_base, as gpt-4o-mini does), and every prompt is random base64, which
// tokenizes far denser than prose. With `max_tokens: 1` the prompt is nearly all of each request's cost.
// Reserved at the prompt bound, exactly the requests that fit are served and the cap holds; reserved at
// the token estimate (the rule before session 8), more would have been admitted and each would have
// settled above its reservation.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ChatMessage, ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { bookedOpenAIToday, postChatsAtOnce, realPromptTokens, setOpenAIDailyCap, startTokenBilledTeamGateway, type TeamGateway } from './team-fixture.ts';

const MODEL = 'gpt-4o-mini';
const FITS = 12;
const REQUESTS = 40;
/** 2,250 random bytes: 3,000 base64 characters, so every prompt has the same bound. */
const PROMPT_BYTES = 2250;

const randomPrompt = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(PROMPT_BYTES))).toString('base64');
const requestFor = (content: string): ChatRequest => ({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 1 });

let setup: TeamGateway;
let worstNanos: number;
let capUsd: number;

beforeAll(async () => {
  setup = await startTokenBilledTeamGateway();
  const request = requestFor(randomPrompt());
  worstNanos = worstCaseNanos(
    setup.gateway.runtime.services.pricing,
    request,
    'openai',
    MODEL,
    setup.gateway.runtime.services.pricing.promptTokenBound(request),
  ) as number;
  capUsd = (FITS * worstNanos + Math.floor(worstNanos / 2)) / 1e9;
  await setOpenAIDailyCap(setup, capUsd);
});

afterAll(async () => {
  await setup.stop();
});

describe('a budget against random prompts, counted by the real tokenizer', () => {
  test('the estimate would have reserved less than such a prompt costs; the bound reserves more', () => {
    const pricing = setup.gateway.runtime.services.pricing;
    const request = requestFor(randomPrompt());
    const real = realPromptTokens({ messages: request.messages as Array<ChatMessage & { role: 'user'; content: string }> });
    expect(pricing.estimatePromptTokens(request)).toBeLessThan(real);
    expect(pricing.promptTokenBound(request)).toBeGreaterThanOrEqual(real);
    // What the old rule would have done with this cap: admitted more requests than fit, each settling above its reservation.
    const estimated = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.estimatePromptTokens(request)) as number;
    const admittedByEstimate = Math.floor((capUsd * 1e9) / estimated);
    const price = pricing.price('openai', MODEL);
    const realNanos = real * (price?.inputPerToken ?? 0) * 1e9;
    expect(admittedByEstimate * realNanos).toBeGreaterThan(capUsd * 1e9);
  });

  test(`${REQUESTS} concurrent requests: exactly ${FITS} served, billed at the real count, never past the cap`, async () => {
    const outcomes = await postChatsAtOnce(
      setup,
      Array.from({ length: REQUESTS }, () => requestFor(randomPrompt())),
      REQUESTS - FITS,
    );

    const served = outcomes.filter((outcome) => outcome.status === 200);
    expect(served.length).toBe(FITS);
    expect(outcomes.filter((outcome) => outcome.status === 402 && outcome.code === 'budget_exceeded').length).toBe(REQUESTS - FITS);
    // The simulator billed the real tokenizer's count (about 2,060 tokens for 3,000 base64 characters),
    // above what the estimate gives any such prompt (about 1,500) and within the bound (3,010).
    for (const outcome of served) {
      expect(outcome.promptTokens).toBeGreaterThan(1_800);
      expect(outcome.promptTokens).toBeLessThanOrEqual((PROMPT_BYTES / 3) * 4 + 10);
    }

    await Bun.sleep(200);
    const { costUsd: spent } = await bookedOpenAIToday(setup);
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(capUsd);
  }, 30_000);
});
