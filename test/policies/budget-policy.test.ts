// cost-cap's rules one by one: over fake services (reservations, dropping a provider, settling,
// releasing, seeding from the store after a restart) and through a gateway (402 and 403 answers
// that reach no upstream).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import { ManualClock } from '../../core/clock.ts';
import { MemoryCounters } from '../../core/counters/memory.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { PricingService } from '../../core/spec/services.ts';
import type { UsageSummaryFilter, UsageSummaryRow } from '../../core/spec/store.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { budgetKey, COST_CAP_PLUGIN, createCostCap } from '../../policies/cost-cap/index.ts';
import { utcDay } from '../../policies/cost-cap/worst-case.ts';
import { call } from '../helpers/gateway.ts';
import { ACCOUNT, context, costCapServices, key, outcomeOf, refusalOf, TEAM, teamsSection } from './helpers.ts';
import { setOpenAIDailyCap, startTeamGateway, type ErrorBody, type TeamGateway, teamGatewayPerSuite } from './team-fixture.ts';

// Round prices: a prompt of 10 tokens at $1/token and 100 output tokens at $0.01/token cost $11.
const pricing: PricingService = {
  estimatePromptTokens: () => 10,
  promptTokenBound: () => 10,
  countPromptTokens: async () => undefined,
  countedPromptTokens: () => undefined,
  price: (provider, model) =>
    model.includes('unpriced')
      ? undefined
      : { inputPerToken: provider === 'anthropic' ? 2 : 1, outputPerToken: 0.01, maxOutputTokens: 1000, maxInputTokens: undefined },
};

interface Fake {
  hooks: ReturnType<typeof createCostCap>;
  counters: MemoryCounters;
  clock: ManualClock;
  summaries: UsageSummaryFilter[];
  failStore: boolean;
}

const NOON = Date.UTC(2026, 11, 5, 12);

function fake(permissions: TeamPermissions, booked: UsageSummaryRow[] = [], shared?: { counters: MemoryCounters; clock: ManualClock }): Fake {
  const clock = shared?.clock ?? new ManualClock(NOON);
  const counters = shared?.counters ?? new MemoryCounters(clock);
  const state: Fake = { hooks: undefined as never, counters, clock, summaries: [], failStore: false };
  const section = teamsSection(permissions);
  const services = costCapServices({
    clock,
    counters,
    pricing,
    section,
    async summarizeUsage(filter) {
      state.summaries.push(filter);
      await Bun.sleep(5);
      if (state.failStore) throw new Error('database is locked');
      return booked;
    },
  });
  state.hooks = createCostCap(services);
  return state;
}

function request(body: Record<string, unknown> = {}, candidates: Array<[string, string]> = [['openai', 'gpt-4o']]): RequestContext {
  const built = context({ body: { max_tokens: 100, ...body } });
  built.teamId = TEAM;
  built.candidates = candidates.map(([provider, model], index) => ({ provider, model, key: key(`pk_${index}`, provider) }));
  return built;
}

const outcome = outcomeOf;

const codeOf = refusalOf;

const day = utcDay(NOON);
const openaiKey = budgetKey(ACCOUNT, TEAM, 'openai', day.date);

describe('cost-cap reservations', () => {
  test('reserves the worst case ($11 = 10 prompt tokens × $1 + 100 output tokens × $0.01) and refuses the one that does not fit', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 25 } } });
    await hooks.call(request());
    await hooks.call(request());
    expect(counters.get(openaiKey)).toBe(22_000_000_000);
    const third = request();
    expect(await codeOf(() => hooks.call(third))).toBe('budget_exceeded');
    expect(counters.get(openaiKey)).toBe(22_000_000_000);
  });

  test('n choices multiply the output; max_completion_tokens and the model limit stand in for max_tokens', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 1000 } } });
    await hooks.call(request({ n: 3 }));
    expect(counters.get(openaiKey)).toBe(13_000_000_000);
    await hooks.call(request({ max_tokens: undefined, max_completion_tokens: 200 }));
    expect(counters.get(openaiKey)).toBe(25_000_000_000);
    await hooks.call(request({ max_tokens: undefined }));
    expect(counters.get(openaiKey)).toBe(45_000_000_000);
  });

  test('with both max_tokens and max_completion_tokens, the larger is reserved, whichever field holds it', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 1000 } } });
    // $10 of prompt + 400 output tokens × $0.01 = $14, not the $10.10 of the smaller field.
    await hooks.call(request({ max_tokens: 10, max_completion_tokens: 400 }));
    expect(counters.get(openaiKey)).toBe(14_000_000_000);
    await hooks.call(request({ max_tokens: 400, max_completion_tokens: 10 }));
    expect(counters.get(openaiKey)).toBe(28_000_000_000);
  });

  test('a provider over its budget is dropped from the plan; another provider keeps the request alive', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 5 }, anthropic: { enabled: true, max_cost_per_day: 100 } } });
    const built = request({}, [
      ['openai', 'gpt-4o'],
      ['anthropic', 'claude-sonnet'],
    ]);
    await hooks.call(built);
    expect(built.candidates.map((candidate) => candidate.provider)).toEqual(['anthropic']);
    expect(counters.get(openaiKey)).toBe(0);
    expect(counters.get(budgetKey(ACCOUNT, TEAM, 'anthropic', day.date))).toBe(21_000_000_000);
  });

  test('a provider without a budget is untouched; no team, no reservation', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true } } });
    const built = request();
    await hooks.call(built);
    expect(built.candidates.length).toBe(1);
    const anonymous = request();
    anonymous.teamId = undefined;
    await hooks.call(anonymous);
    expect(counters.get(openaiKey)).toBe(0);
    expect(built.state.has(COST_CAP_PLUGIN)).toBe(false);
  });

  test('an unpriced model of a budgeted provider is dropped; with nothing left, 403 model_unpriced', async () => {
    const { hooks } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 100 } } });
    const mixed = request({}, [
      ['openai', 'gpt-unpriced'],
      ['openai', 'gpt-4o'],
    ]);
    await hooks.call(mixed);
    expect(mixed.candidates.map((candidate) => candidate.model)).toEqual(['gpt-4o']);
    expect(await codeOf(() => hooks.call(request({}, [['openai', 'gpt-unpriced']])))).toBe('model_unpriced');
    // Two keys of the provider are two candidates of one model: the model is named once.
    const twoKeys = request({}, [
      ['openai', 'gpt-unpriced'],
      ['openai', 'gpt-unpriced'],
    ]);
    const message = await Promise.resolve()
      .then(() => hooks.call(twoKeys))
      .then(
        () => '',
        (error: Error) => error.message,
      );
    expect(message.split('openai/gpt-unpriced').length - 1).toBe(1);
  });

  test('the 402 names the team, provider, limit and reset, with Retry-After until midnight UTC', async () => {
    const { hooks } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 15 } } });
    // $10 settled: the next $11 worst case fits the cap but not what is left of it today.
    const first = request();
    await hooks.call(first);
    first.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
    await hooks.account(first, outcome(10));
    try {
      await hooks.call(request());
      throw new Error('expected a refusal');
    } catch (error) {
      const refusal = error as KeywayError;
      expect(refusal.code).toBe('budget_exceeded');
      expect(refusal.status).toBe(402);
      expect(refusal.retryAfterSeconds).toBe(12 * 3600);
      expect(refusal.extra).toMatchObject({
        budget: 'max_cost_per_day',
        team_id: TEAM,
        provider: 'openai',
        limit_usd: 15,
        reset_at: '2026-12-06T00:00:00.000Z',
      });
      expect(refusal.message).toContain('2026-12-06T00:00:00.000Z');
      expect(refusal.message).toContain('Engineering Team');
    }
  });
});

describe('cost-cap settlement', () => {
  test('the served provider settles to the real cost, every other reservation is released', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 100 }, anthropic: { enabled: true, max_cost_per_day: 100 } } });
    const built = request({}, [
      ['openai', 'gpt-4o'],
      ['anthropic', 'claude-sonnet'],
    ]);
    await hooks.call(built);
    built.served = { provider: 'anthropic', model: 'claude-sonnet', keyId: 'pk_1', owner: 'account' };
    await hooks.account(built, outcome(0.1234567));
    expect(counters.get(openaiKey)).toBe(0);
    expect(counters.get(budgetKey(ACCOUNT, TEAM, 'anthropic', day.date))).toBe(123_456_700);
    // Exactly once: a second account call finds nothing held.
    await hooks.account(built, outcome(5));
    expect(counters.get(budgetKey(ACCOUNT, TEAM, 'anthropic', day.date))).toBe(123_456_700);
  });

  test('a failure before any usage releases the whole reservation', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 100 } } });
    const built = request();
    await hooks.call(built);
    expect(counters.get(openaiKey)).toBe(11_000_000_000);
    built.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
    await hooks.account(built, outcome(undefined));
    expect(counters.get(openaiKey)).toBe(0);
  });

  test('a refusal by cost-cap itself holds nothing afterwards', async () => {
    const { hooks, counters } = fake({ providers: { openai: { enabled: true, max_cost_per_day: 5 } } });
    const built = request();
    await codeOf(() => hooks.call(built));
    await hooks.account(built, outcome(undefined));
    expect(counters.get(openaiKey)).toBe(0);
  });

  test('a new UTC day is a new budget; a request reserved before midnight and ended after it counts on the day it ends (its usage row is booked then)', async () => {
    const setup = fake({ providers: { openai: { enabled: true, max_cost_per_day: 12 } } });
    const late = request();
    await setup.hooks.call(late);
    setup.clock.advance(12 * 3600 * 1000);
    const tomorrow = utcDay(setup.clock.now()).date;
    const early = request();
    await setup.hooks.call(early);
    expect(setup.counters.get(budgetKey(ACCOUNT, TEAM, 'openai', tomorrow))).toBe(11_000_000_000);
    late.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_0', owner: 'account' };
    await setup.hooks.account(late, outcome(1));
    // The old day's reservation is given back whole; the $1 it cost joins tomorrow's $11 reservation.
    expect(setup.counters.get(openaiKey)).toBe(0);
    expect(setup.counters.get(budgetKey(ACCOUNT, TEAM, 'openai', tomorrow))).toBe(12_000_000_000);
  });
});

describe('cost-cap after a restart', () => {
  test("today's booked spend is read from the store once, before the first reservation, even under concurrent first requests", async () => {
    const setup = fake({ providers: { openai: { enabled: true, max_cost_per_day: 40 } } }, [
      { provider: 'openai', model: 'gpt-4o', teamId: TEAM, requests: 3, inputTokens: 0, outputTokens: 0, costUsd: 20, unpricedRequests: 0 },
      { provider: 'anthropic', model: 'claude', teamId: TEAM, requests: 1, inputTokens: 0, outputTokens: 0, costUsd: 7, unpricedRequests: 0 },
    ]);
    const results = await Promise.all(Array.from({ length: 5 }, () => codeOf(() => setup.hooks.call(request()))));
    expect(setup.summaries.length).toBe(1);
    expect(setup.summaries[0]).toMatchObject({ accountId: ACCOUNT, teamId: TEAM, from: '2026-12-05T00:00:00.000Z', to: '2026-12-06T00:00:00.000Z' });
    // $20 already spent, $40 cap, $11 a request: exactly one more fits.
    expect(results.filter((code) => code === undefined).length).toBe(1);
    expect(results.filter((code) => code === 'budget_exceeded').length).toBe(4);
    expect(setup.counters.get(openaiKey)).toBe(31_000_000_000);
    expect(setup.counters.get(budgetKey(ACCOUNT, TEAM, 'anthropic', day.date))).toBe(7_000_000_000);
  });

  test('two processes on shared counters (the workers of one instance): the one that does not read the store waits for the other, and never reserves before the spend is in (QA15 #2)', async () => {
    const clock = new ManualClock(NOON);
    const counters = new MemoryCounters(clock);
    const booked = [{ provider: 'openai', model: 'gpt-4o', teamId: TEAM, requests: 3, inputTokens: 0, outputTokens: 0, costUsd: 20, unpricedRequests: 0 }];
    const permissions: TeamPermissions = { providers: { openai: { enabled: true, max_cost_per_day: 40 } } };
    const reading = fake(permissions, booked, { counters, clock });
    const waiting = fake(permissions, booked, { counters, clock });
    const results = await Promise.all([reading, waiting].flatMap((process) => Array.from({ length: 5 }, () => codeOf(() => process.hooks.call(request())))));
    // $20 already spent, $40 cap, $11 a request: exactly one more fits, whichever process serves it.
    expect(results.filter((code) => code === undefined).length).toBe(1);
    expect(results.filter((code) => code === 'budget_exceeded').length).toBe(9);
    expect(reading.summaries.length + waiting.summaries.length).toBe(1);
    expect(counters.get(openaiKey)).toBe(31_000_000_000);
  });

  test('a store that cannot answer fails closed (503) and the next request tries again', async () => {
    const setup = fake({ providers: { openai: { enabled: true, max_cost_per_day: 40 } } });
    setup.failStore = true;
    expect(await codeOf(() => setup.hooks.call(request()))).toBe('not_ready');
    setup.failStore = false;
    expect(await codeOf(() => setup.hooks.call(request()))).toBeUndefined();
    expect(setup.summaries.length).toBe(2);
  });
});

describe('cost-cap through the gateway', () => {
  let setup: TeamGateway;
  beforeAll(async () => {
    setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 0.01 } } });
  });
  afterAll(async () => {
    await setup.stop();
  });

  const chat = (body: Record<string, unknown>) =>
    call(setup.gateway, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], ...body }, { key: setup.memberKey });

  test('an unpriced model is 403 model_unpriced and reaches no upstream', async () => {
    const before = setup.openai.inferenceRequests().length;
    const response = await chat({ model: 'gpt-unpriced-test' });
    expect(response.status).toBe(403);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('model_unpriced');
    expect(body.error.type).toBe('permission_error');
    expect(setup.openai.inferenceRequests().length).toBe(before);
  });

  test('a worst case above the whole budget is 402 budget_exceeded without Retry-After (no wait helps), streamed or not, and reaches no upstream', async () => {
    const before = setup.openai.inferenceRequests().length;
    for (const stream of [false, true]) {
      const response = await chat({ model: 'gpt-4o', max_tokens: 100_000, stream });
      expect(response.status).toBe(402);
      expect(response.headers.get('retry-after')).toBeNull();
      expect(response.headers.get('x-should-retry')).toBe('false');
      const body = (await response.json()) as ErrorBody;
      expect(body.error.code).toBe('budget_exceeded');
      expect(body.error.reset_at).toBe(new Date(utcDay(Date.now()).end).toISOString());
    }
    expect(setup.openai.inferenceRequests().length).toBe(before);
  });

  test('a request that fits is served and settles to its real cost', async () => {
    const response = await chat({ model: 'gpt-4o-mini', max_tokens: 50 });
    expect(response.status).toBe(200);
    await response.text();
    await Bun.sleep(20);
    const counter = await setup.gateway.runtime.counters.get(budgetKey('default', setup.teamId, 'openai', utcDay(Date.now()).date));
    const cost = Number(response.headers.get('x-keyway-cost'));
    expect(cost).toBeGreaterThan(0);
    expect(counter).toBe(Math.round(cost * 1e9));
  });
});

describe('a budget set later in the day starts from what the team already spent', () => {
  const setup = teamGatewayPerSuite({ providers: { openai: { enabled: true } } });

  const chat = (content: string) =>
    call(
      setup().gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', max_tokens: 20, messages: [{ role: 'user', content }] },
      { key: setup().memberKey },
    );
  const setBudget = (maxCostPerDay: number | null): Promise<void> => setOpenAIDailyCap(setup(), maxCostPerDay);

  test('spend while unbudgeted, or while a budget was removed, counts against the budget set afterwards', async () => {
    const long = 'Summarise the quarterly report in detail. '.repeat(400);
    let spent = 0;
    for (let index = 0; index < 3; index++) {
      const response = await chat(long);
      expect(response.status).toBe(200);
      spent += Number(response.headers.get('x-keyway-cost'));
      await response.text();
    }
    expect(spent).toBeGreaterThan(0.01);
    await Bun.sleep(20);
    // A budget below what was already spent today: nothing more is served.
    await setBudget(spent / 2);
    const refused = await chat('hi');
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('budget_exceeded');
    // Removed, spent on, and set again a little above the earlier spend: the spend in between counts.
    await setBudget(null);
    const between = await chat(long);
    expect(between.status).toBe(200);
    const betweenCost = Number(between.headers.get('x-keyway-cost'));
    await between.text();
    await Bun.sleep(20);
    await setBudget(spent + betweenCost / 2);
    const again = await chat('hi');
    expect(again.status).toBe(402);
  });
});
