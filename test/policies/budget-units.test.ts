// QA14's budget findings, rule by rule: counters in nano-dollars count a settled request as booked
// (a cheap call is no longer rounded up to a micro-dollar), so the 402's `remaining_usd` and
// GET /v1/usage/me agree; a refusal says when the worst case assumed the model's whole output limit;
// and a refusal caused only by this process's in-flight reservations is answered with a Retry-After of
// seconds, not midnight.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { budgetLimitNanos, MAX_EXACT_NANOS, toNanosCeil, toNanosFloor } from '../../core/catalog/nano-usd.ts';
import { KeywayError } from '../../core/errors.ts';
import { ManualClock } from '../../core/clock.ts';
import { MemoryCounters } from '../../core/counters/memory.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { PricingService } from '../../core/spec/services.ts';
import type { UsageSummaryRow } from '../../core/spec/store.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { budgetKey, createCostCap } from '../../policies/cost-cap/index.ts';
import { utcDay } from '../../policies/cost-cap/worst-case.ts';
import { call, flushUsage } from '../helpers/gateway.ts';
import { ACCOUNT, context, costCapServices, key, outcomeOf, refusalErrorOf, TEAM, teamsSection } from './helpers.ts';
import { startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

// Round prices: 10 prompt tokens at $1 and up to 1,000 output tokens at $0.01 ($10 of output).
const roundPricing: PricingService = {
  estimatePromptTokens: () => 10,
  promptTokenBound: () => 10,
  countPromptTokens: async () => undefined,
  countedPromptTokens: () => undefined,
  price: () => ({ inputPerToken: 1, outputPerToken: 0.01, maxOutputTokens: 1000, maxInputTokens: undefined }),
};

// An embedding: a prompt bound of 25 tokens at $0.02 per million, output free. Worst case $5e-7.
const embeddingPricing: PricingService = {
  estimatePromptTokens: () => 25,
  promptTokenBound: () => 25,
  countPromptTokens: async () => undefined,
  countedPromptTokens: () => undefined,
  price: () => ({ inputPerToken: 2e-8, outputPerToken: 0, maxOutputTokens: 8191, maxInputTokens: undefined }),
};

const NOON = Date.UTC(2026, 11, 5, 12);
/** The Retry-After docs/policies.md gives a refusal caused only by this process's in-flight reservations. */
const IN_FLIGHT_RETRY_AFTER_SECONDS = 2;
const day = utcDay(NOON);
const openaiKey = budgetKey(ACCOUNT, TEAM, 'openai', day.date);

interface Fake {
  hooks: ReturnType<typeof createCostCap>;
  counters: MemoryCounters;
  summaries: number;
}

function fake(
  permissions: TeamPermissions,
  options: { pricing?: PricingService; booked?: UsageSummaryRow[]; counters?: MemoryCounters; clock?: ManualClock } = {},
): Fake {
  const clock = options.clock ?? new ManualClock(NOON);
  const counters = options.counters ?? new MemoryCounters(clock);
  const section = teamsSection(permissions);
  const state: Fake = { hooks: undefined as never, counters, summaries: 0 };
  const services = costCapServices({
    clock,
    counters,
    pricing: options.pricing ?? roundPricing,
    section,
    async summarizeUsage() {
      state.summaries += 1;
      return options.booked ?? [];
    },
  });
  state.hooks = createCostCap(services);
  return state;
}

function request(body: Record<string, unknown> = { max_tokens: 100 }): RequestContext {
  const built = context({ body });
  built.teamId = TEAM;
  built.candidates = [{ provider: 'openai', model: 'gpt-4o', key: key('pk_0', 'openai') }];
  return built;
}

const outcome = outcomeOf;

const refusalOf = refusalErrorOf;

/** Reserves and settles a request served by OpenAI at `costUsd`. */
async function serve(hooks: Fake['hooks'], costUsd: number, body?: Record<string, unknown>): Promise<void> {
  const built = request(body);
  await hooks.call(built);
  built.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
  await hooks.account(built, outcome(costUsd));
}

describe('nano-dollars', () => {
  test('costs as booked come back whole; worst cases round up and limits down; float noise adds nothing', () => {
    expect(toNanosCeil(8e-8)).toBe(80);
    expect(toNanosCeil(0.1 + 0.2)).toBe(300_000_000);
    expect(toNanosCeil(0.00015645)).toBe(156_450);
    expect(toNanosCeil(1.0000000001)).toBe(1_000_000_001);
    expect(toNanosCeil(2.5e-10)).toBe(1);
    expect(toNanosFloor(0.00002)).toBe(20_000);
    expect(toNanosFloor(2.5e-10)).toBe(0);
  });

  test('a $1,000,000 cap is 1e15 nano-dollars, exact; a larger one is held where doubles stop being exact', () => {
    expect(budgetLimitNanos(1_000_000)).toBe(1e15);
    expect(Number.isSafeInteger(budgetLimitNanos(1_000_000))).toBe(true);
    expect(budgetLimitNanos(1_000_000_000)).toBe(MAX_EXACT_NANOS);
  });
});

describe('budgets count settled spend as booked (QA14 #1)', () => {
  test('a $0.00002 cap serves 244 embeddings of $8e-8 (a 500 n$ worst case), not 20; the counter is their booked sum', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 0.00002 } } }, { pricing: embeddingPricing });
    let served = 0;
    let refusal: KeywayError | undefined;
    for (let index = 0; index < 1000 && refusal === undefined; index++) {
      refusal = await refusalOf(() => serve(hooks, 8e-8, {}));
      if (refusal === undefined) served += 1;
    }
    // 80 n$ settled each, 500 n$ reserved for the next: it fits while 80·k + 500 ≤ 20,000.
    expect(served).toBe(244);
    expect(counters.get(openaiKey)).toBe(244 * 80);
    expect(refusal?.code).toBe('budget_exceeded');
    // What is left is the cap less the booked spend, as GET /v1/usage/me computes it.
    expect(refusal?.extra?.remaining_usd).toBe(480 / 1e9);
    expect(refusal?.extra?.worst_case_usd).toBe(500 / 1e9);
    expect(refusal?.message).toContain('$0.00000048 left');
  });

  test("today's booked spend seeds the counter to the nano-dollar", async () => {
    const booked = [
      { provider: 'openai', model: 'gpt-4o', teamId: TEAM, requests: 1, inputTokens: 0, outputTokens: 0, costUsd: 0.1, unpricedRequests: 0 },
      { provider: 'openai', model: 'gpt-4o-mini', teamId: TEAM, requests: 1, inputTokens: 0, outputTokens: 0, costUsd: 0.2, unpricedRequests: 0 },
    ];
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 100 } } }, { booked });
    await hooks.call(request());
    expect(counters.get(openaiKey)).toBe(300_000_000 + 11_000_000_000);
  });

  test('counters earlier releases kept (micro-dollars; nano-dollars without a seeded mark) are not read: a new key, seeded again from the store', async () => {
    const clock = new ManualClock(NOON);
    const counters = new MemoryCounters(clock);
    const expiresAt = day.end + 6 * 3600_000;
    // What a running deployment's shared counters hold: $5 in micro-dollars, and the seeded marker; then
    // (QA14) the same in nano-dollars under `v2`, with its own marker.
    counters.adjust(`budget:${ACCOUNT}:${TEAM}:openai:${day.date}`, 5_000_000, expiresAt);
    counters.adjust(`budget-seeded:${ACCOUNT}:${TEAM}:${day.date}`, 1, expiresAt);
    counters.adjust(`budget:v2:${ACCOUNT}:${TEAM}:openai:${day.date}`, 5_000_000_000, expiresAt);
    counters.adjust(`budget-seeded:v2:${ACCOUNT}:${TEAM}:${day.date}`, 1, expiresAt);
    const booked = [{ provider: 'openai', model: 'gpt-4o', teamId: TEAM, requests: 3, inputTokens: 0, outputTokens: 0, costUsd: 5, unpricedRequests: 0 }];
    const setup = fake({ providers: { openai: { enabled: true, max_cost_per_day: 100 } } }, { booked, counters, clock });
    expect(openaiKey.startsWith('budget:v3:')).toBe(true);
    await setup.hooks.call(request());
    expect(setup.summaries).toBe(1);
    expect(counters.get(openaiKey)).toBe(5_000_000_000 + 11_000_000_000);
  });

  test('sums stay exact integers under a $1,000,000 cap', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 1_000_000 } } });
    for (let index = 0; index < 3; index++) await serve(hooks, 0.123456789);
    expect(counters.get(openaiKey)).toBe(3 * 123_456_789);
  });
});

describe('a refusal says what the worst case assumed for output (QA14 #2)', () => {
  const permissions: TeamPermissions = { providers: { openai: { enabled: true, max_cost_per_day: 15 } } };

  test("no max_tokens: the 402 names the model's output limit and the field that reserves less", async () => {
    const { hooks } = fake(permissions);
    // $10 of prompt + 1,000 output tokens × $0.01 = $20, above the $15 cap with nothing spent.
    const refusal = await refusalOf(() => hooks.call(request({})));
    expect(refusal?.code).toBe('budget_exceeded');
    expect(refusal?.message).toContain('its worst case is above the whole daily budget, so it is refused however little was spent');
    // No wait helps a request that can never fit (QA14 N1): no Retry-After, and no client retries it.
    expect(refusal?.retryAfterSeconds).toBeUndefined();
    expect(refusal?.headers).toEqual({ 'x-should-retry': 'false' });
    expect(refusal?.message).not.toContain('The budget resets at');
    expect(refusal?.message).toContain("assumed gpt-4o's whole output limit of 1,000 tokens");
    expect(refusal?.message).toContain('setting max_tokens (or max_completion_tokens) reserves only what it allows');
    expect(refusal?.extra).toMatchObject({ worst_case_output_tokens: 1000, worst_case_output_tokens_from: 'model_output_limit', worst_case_usd: 20 });
    // Following the advice: the same request with max_tokens fits.
    expect(await refusalOf(() => hooks.call(request({ max_tokens: 100 })))).toBeUndefined();
  });

  test('a request that set its own limit is told nothing about the model; n choices are counted', async () => {
    const { hooks } = fake(permissions);
    const own = await refusalOf(() => hooks.call(request({ max_tokens: 1000 })));
    expect(own?.message).not.toContain('sets no output limit');
    expect(own?.extra).toMatchObject({ worst_case_output_tokens: 1000, worst_case_output_tokens_from: 'request' });
    const choices = await refusalOf(() => hooks.call(request({ n: 2 })));
    expect(choices?.message).toContain('1,000 tokens for each of its 2 choices');
    expect(choices?.extra?.worst_case_output_tokens).toBe(2000);
  });

  test("the field is named in the caller's dialect: max_output_tokens on /v1/responses", async () => {
    const { hooks } = fake(permissions);
    const built = request({});
    built.endpoint = 'responses';
    const refusal = await refusalOf(() => hooks.call(built));
    expect(refusal?.message).toContain('setting max_output_tokens reserves only what it allows');
  });

  test('free output (embeddings) explains nothing: no output sentence, no output fields', async () => {
    const { hooks } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 0.0000001 } } }, { pricing: embeddingPricing });
    const refusal = await refusalOf(() => hooks.call(request({})));
    expect(refusal?.code).toBe('budget_exceeded');
    expect(refusal?.message).not.toContain('output limit');
    expect(refusal?.extra?.worst_case_output_tokens).toBeUndefined();
  });
});

describe('a refusal caused by in-flight reservations is told to retry in seconds (QA14 #3)', () => {
  const permissions: TeamPermissions = { providers: { openai: { enabled: true, max_cost_per_day: 25 } } };

  test('two requests in flight hold $22 of a $25 budget: the third is answered Retry-After 2 s, and fits once one settles', async () => {
    const { hooks } = fake(permissions);
    const first = request();
    const second = request();
    await hooks.call(first);
    await hooks.call(second);
    const refusal = await refusalOf(() => hooks.call(request()));
    expect(refusal?.code).toBe('budget_exceeded');
    expect(refusal?.retryAfterSeconds).toBe(IN_FLIGHT_RETRY_AFTER_SECONDS);
    expect(refusal?.headers).toEqual({ 'x-should-retry': 'true' });
    expect(refusal?.message).toContain('of which requests in flight on this gateway hold $22.00');
    expect(refusal?.message).toContain(`retry in ${IN_FLIGHT_RETRY_AFTER_SECONDS} s`);
    expect(refusal?.message).not.toContain('no daily budget left');
    // Nothing is spent yet: all $25 remain, $22 of it held; the reset is still named.
    expect(refusal?.extra).toMatchObject({ remaining_usd: 25, in_flight_usd: 22, worst_case_usd: 11, reset_at: '2026-12-06T00:00:00.000Z' });
    first.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
    await hooks.account(first, outcome(1));
    expect(await refusalOf(() => hooks.call(request()))).toBeUndefined();
  });

  test('spend, not reservations: Retry-After until midnight, and nothing held', async () => {
    const { hooks } = fake(permissions);
    await serve(hooks, 11);
    await serve(hooks, 11);
    const refusal = await refusalOf(() => hooks.call(request()));
    expect(refusal?.retryAfterSeconds).toBe(12 * 3600);
    expect(refusal?.headers).toBeUndefined();
    expect(refusal?.message).toContain('no daily budget left');
    expect(refusal?.extra).toMatchObject({ remaining_usd: 3, in_flight_usd: 0 });
  });

  test('spend and one request in flight: short only when the request would fit once that one is given back', async () => {
    const { hooks } = fake(permissions);
    await serve(hooks, 11);
    await hooks.call(request());
    // $11 spent + $11 held: an $11 request would fit without the held one.
    expect((await refusalOf(() => hooks.call(request())))?.retryAfterSeconds).toBe(IN_FLIGHT_RETRY_AFTER_SECONDS);
    // A $16 request ($10 + 600 output tokens) would not fit even then: midnight, the held part still shown.
    const dearer = await refusalOf(() => hooks.call(request({ max_tokens: 600 })));
    expect(dearer?.retryAfterSeconds).toBe(12 * 3600);
    expect(dearer?.extra).toMatchObject({ remaining_usd: 14, in_flight_usd: 11, worst_case_usd: 16 });
  });

  test('a failed request gives its part back to the tally as it does to the counter', async () => {
    const { hooks } = fake(permissions);
    const failed = request();
    await hooks.call(failed);
    await hooks.account(failed, outcome(undefined));
    await serve(hooks, 11);
    await serve(hooks, 11);
    expect((await refusalOf(() => hooks.call(request())))?.extra?.in_flight_usd).toBe(0);
  });

  test("with shared counters another process's reservations are not recognised: they read as spent", async () => {
    const clock = new ManualClock(NOON);
    const counters = new MemoryCounters(clock);
    const here = fake(permissions, { counters, clock });
    const elsewhere = fake(permissions, { counters, clock });
    await elsewhere.hooks.call(request());
    await elsewhere.hooks.call(request());
    const refusal = await refusalOf(() => here.hooks.call(request()));
    expect(refusal?.retryAfterSeconds).toBe(12 * 3600);
    expect(refusal?.extra).toMatchObject({ remaining_usd: 3, in_flight_usd: 0 });
  });
});

describe('through the gateway', () => {
  let setup: TeamGateway;
  beforeAll(async () => {
    setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 0.00002 } } });
  });
  afterAll(async () => {
    await setup.stop();
  });

  test("cheap embeddings run up to the cap, and the 402's remaining_usd is GET /v1/usage/me's", async () => {
    let served = 0;
    let cost = 0;
    let refused: Response | undefined;
    for (let index = 0; index < 400 && refused === undefined; index++) {
      const response = await call(
        setup.gateway,
        'POST',
        '/v1/embeddings',
        { model: 'text-embedding-3-small', input: 'alpha embed one' },
        { key: setup.memberKey },
      );
      if (response.status !== 200) refused = response;
      else {
        served += 1;
        cost = Number(response.headers.get('x-keyway-cost'));
        await response.text();
      }
    }
    expect(refused?.status).toBe(402);
    const body = (await (refused as Response).json()) as ErrorBody;
    expect(body.error.code).toBe('budget_exceeded');
    const remaining = body.error.remaining_usd as number;
    const worst = body.error.worst_case_usd as number;
    // Refused only when the next worst case no longer fits; the one before it did.
    expect(remaining).toBeLessThan(worst);
    expect(remaining + cost).toBeGreaterThanOrEqual(worst);
    expect(served).toBeGreaterThan(100);
    await flushUsage(setup.gateway);
    const usage = await call(setup.gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: setup.memberKey });
    const budgets = ((await usage.json()) as { budgets: Array<{ provider: string; spent_today_usd: number; remaining_usd: number }> }).budgets;
    const openai = budgets.find((budget) => budget.provider === 'openai');
    expect(openai?.remaining_usd).toBe(remaining);
    expect(Math.round((openai?.spent_today_usd ?? 0) * 1e9)).toBe(served * Math.round(cost * 1e9));
  }, 30_000);

  test('approval_required names the output limit the worst case assumed, when the request set none', async () => {
    const patched = await call(
      setup.gateway,
      'PATCH',
      `/v1/teams/${setup.teamId}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: null, require_approval_above: 0.001 } } } },
      { key: setup.adminKey },
    );
    expect(patched.status).toBe(200);
    const chat = (body: Record<string, unknown>) =>
      call(
        setup.gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...body },
        { key: setup.memberKey },
      );
    const unbounded = await chat({});
    expect(unbounded.status).toBe(403);
    const error = ((await unbounded.json()) as ErrorBody).error;
    expect(error.code).toBe('approval_required');
    expect(error.message).toContain("assumed gpt-4o-mini's whole output limit of");
    expect(error.message).toContain('a request whose worst case stays under the threshold needs no approval');
    expect(error.worst_case_output_tokens_from).toBe('model_output_limit');
    expect(error.worst_case_output_tokens as number).toBeGreaterThan(1000);
    const bounded = await chat({ max_tokens: 50 });
    expect(bounded.status).toBe(200);
    await bounded.text();
  });
});
