// Every strategy under every fault the simulators inject, over HTTP: who served (provider, key,
// owner, model), how many attempts failed first, and exactly how many upstream calls each
// simulator saw. Then the seed's "Multi-Provider Fallbacks" request, verbatim.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { startStrategyWorld, stopStrategyWorld } from './strategy-world.ts';
import type { ModelClass } from '../../core/routing/model-classes.ts';
import type { RoutingOptions } from '../../core/spec/vocabulary.ts';
import type { Fault } from '../simulators/common.ts';
import { containsAny, expectedCostOrder, lastSentModel, ssePayloads, upstreamKeysOf } from './expectations.ts';
import { attemptsOf, call, chat, errorOf, servedBy, type RoutingGateway, type SimulatorFleet } from './harness.ts';

type Target = 'openai' | 'anthropic' | 'google';
const ACCOUNT_PROVIDERS: readonly Target[] = ['openai', 'anthropic', 'google'];
/** A flagship-class model each provider serves under its own name (the catalog selects the provider). */
const MODEL_OF: Record<Target, string> = { openai: 'gpt-4', anthropic: 'claude-opus-4-5', google: 'gemini-2.5-pro' };
const PROVIDER_OF: Record<string, Target> = { 'gpt-4': 'openai', 'claude-opus-4-5': 'anthropic', 'gemini-2.5-pro': 'google' };

let gateway: RoutingGateway;
let account: SimulatorFleet;
let platform: SimulatorFleet;
let accountKeyIds: Record<string, string>;
let platformKeyIds: Record<string, string>;
let flagship: ModelClass;

beforeAll(async () => {
  ({ gateway, account, platform, accountKeyIds, platformKeyIds, flagship } = await startStrategyWorld(ACCOUNT_PROVIDERS));
});

afterAll(() => stopStrategyWorld({ gateway, account, platform }));

beforeEach(() => {
  account.reset();
  platform.reset();
});

interface Plan {
  model: string;
  routing: RoutingOptions;
  /** Who serves when the first candidate fails for a fallback reason; undefined: nobody. */
  next: { provider: Target; owner: 'account' | 'platform' } | undefined;
}

interface StrategyCase {
  name: string;
  /** A request whose first candidate is the account's key for `target`. */
  plan(target: Target): Plan;
}

const STRATEGIES: StrategyCase[] = [
  // Even with platform permission, direct has one candidate.
  { name: 'direct', plan: (target) => ({ model: MODEL_OF[target], routing: { strategy: 'direct', fallback_to_parrotrouter: true }, next: undefined }) },
  {
    name: 'byok_preferred',
    plan: (target) => ({
      model: MODEL_OF[target],
      routing: { strategy: 'byok_preferred', fallback_to_parrotrouter: true },
      next: { provider: target, owner: 'platform' },
    }),
  },
  {
    name: 'fallback_chain',
    plan(target) {
      const rest = ACCOUNT_PROVIDERS.filter((provider) => provider !== target);
      return {
        model: 'gpt-4',
        routing: { strategy: 'fallback_chain', provider_order: [target, ...rest] },
        next: { provider: rest[0] as Target, owner: 'account' },
      };
    },
  },
  {
    name: 'cost_optimized',
    plan(target) {
      // A deep discount on the target makes it the cheapest; the rest follow catalog prices.
      const weights = { [target]: 0.1 };
      const order = expectedCostOrder(flagship, { provider: 'openai', model: 'gpt-4' }, weights, ACCOUNT_PROVIDERS);
      expect(order[0]?.provider).toBe(target);
      return {
        model: 'gpt-4',
        routing: { strategy: 'cost_optimized', prefer_byok: true, cost_weights: weights },
        next: { provider: order[1]?.provider as Target, owner: 'account' },
      };
    },
  },
];

interface FaultCase {
  name: string;
  target: Target;
  fault: Fault;
  routing?: RoutingOptions;
  /** What a strategy without a next candidate answers. */
  status: number;
  code: string;
  reason: string;
  retryAfter?: string;
}

const FAULTS: FaultCase[] = [
  {
    name: 'OpenAI 429 with Retry-After',
    target: 'openai',
    fault: { kind: 'rate_limit', retryAfterSeconds: 7 },
    status: 429,
    code: 'upstream_rate_limited',
    reason: 'rate_limit',
    retryAfter: '7',
  },
  {
    name: 'Gemini 429 RESOURCE_EXHAUSTED',
    target: 'google',
    fault: { kind: 'rate_limit', retryAfterSeconds: 3 },
    status: 429,
    code: 'upstream_rate_limited',
    reason: 'rate_limit',
    retryAfter: '3',
  },
  { name: 'OpenAI 500', target: 'openai', fault: { kind: 'server_error' }, status: 502, code: 'upstream_error', reason: 'server_error' },
  { name: 'Anthropic 529 overloaded', target: 'anthropic', fault: { kind: 'overloaded' }, status: 502, code: 'upstream_error', reason: 'server_error' },
  { name: 'Gemini connection reset', target: 'google', fault: { kind: 'reset' }, status: 502, code: 'upstream_error', reason: 'server_error' },
  {
    name: 'first-byte timeout (delay + routing.timeout_ms)',
    target: 'openai',
    fault: { kind: 'delay', delayMs: 2_000 },
    routing: { timeout_ms: 300 },
    status: 504,
    code: 'upstream_timeout',
    reason: 'timeout',
  },
];

/** The model a provider is sent for a plan: the requested provider keeps the requested name. */
function modelFor(plan: Plan, provider: Target, owner: 'account' | 'platform'): string {
  if (owner === 'platform' || PROVIDER_OF[plan.model] === provider) return plan.model;
  return flagship.models[provider] ?? 'none';
}

function expectServed(response: Response, plan: Plan, provider: Target, owner: 'account' | 'platform', failedBefore: number): void {
  const served = servedBy(response);
  expect(served.provider).toBe(provider);
  expect(served.keyId).toBe(owner === 'account' ? (accountKeyIds[provider] ?? '?') : (platformKeyIds[provider] ?? '?'));
  expect(served.byok).toBe(owner === 'account' ? 'true' : 'false');
  expect(served.model?.startsWith(modelFor(plan, provider, owner))).toBe(true);
  expect(served.fallbackAttempts).toBe(String(failedBefore));
  const fleet = owner === 'account' ? account : platform;
  expect(lastSentModel(fleet, provider)).toBe(modelFor(plan, provider, owner));
}

function expectUpstream(accountCounts: Partial<Record<Target, number>>, platformCounts: Partial<Record<Target, number>> = {}): void {
  expect(account.upstreamCounts()).toEqual(attemptsOf(accountCounts));
  expect(platform.upstreamCounts()).toEqual(attemptsOf(platformCounts));
}

for (const strategy of STRATEGIES) {
  describe(`${strategy.name} under faults`, () => {
    for (const fault of FAULTS) {
      test(fault.name, async () => {
        const plan = strategy.plan(fault.target);
        account.simulators[fault.target].inject(fault.fault);
        const started = performance.now();
        const response = await chat(gateway, { model: plan.model, routing: { ...plan.routing, ...fault.routing } });
        const elapsed = performance.now() - started;
        if (fault.fault.kind === 'delay') expect(elapsed).toBeLessThan(fault.fault.delayMs - 500);
        if (plan.next === undefined) {
          expect(response.status).toBe(fault.status);
          const error = await errorOf(response);
          expect(error.code).toBe(fault.code);
          expect(error.attempts?.map((attempt) => [attempt.provider, attempt.reason])).toEqual([[fault.target, fault.reason]]);
          expect(response.headers.get('retry-after')).toBe(fault.retryAfter ?? null);
          expectUpstream({ [fault.target]: 1 });
          return;
        }
        expect(response.status).toBe(200);
        expectServed(response, plan, plan.next.provider, plan.next.owner, 1);
        if (plan.next.owner === 'platform') expectUpstream({ [fault.target]: 1 }, { [fault.target]: 1 });
        else expectUpstream({ [fault.target]: 1, [plan.next.provider]: 1 });
      });
    }

    test('stream: a failure before the first byte falls back (or fails without a stream)', async () => {
      const plan = strategy.plan('openai');
      account.simulators.openai.inject({ kind: 'server_error' });
      const response = await chat(gateway, { model: plan.model, stream: true, routing: plan.routing });
      if (plan.next === undefined) {
        expect(response.status).toBe(502);
        expect((await errorOf(response)).code).toBe('upstream_error');
        expectUpstream({ openai: 1 });
        return;
      }
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      expectServed(response, plan, plan.next.provider, plan.next.owner, 1);
      const payloads = ssePayloads(await response.text());
      expect(payloads.at(-1)).toBe('[DONE]');
      if (plan.next.owner === 'platform') expectUpstream({ openai: 1 }, { openai: 1 });
      else expectUpstream({ openai: 1, [plan.next.provider]: 1 });
    });

    for (const midStream of [
      { name: 'an error event', fault: { kind: 'mid_stream_error', afterChunks: 1 } as Fault },
      { name: 'a cut connection', fault: { kind: 'mid_stream_reset', afterChunks: 1 } as Fault },
    ]) {
      test(`stream: ${midStream.name} after the first chunk ends the stream with an error event, no [DONE], no fallback`, async () => {
        const plan = strategy.plan('openai');
        account.simulators.openai.inject(midStream.fault);
        const response = await chat(gateway, { model: plan.model, stream: true, routing: plan.routing });
        expect(response.status).toBe(200);
        expectServed(response, plan, 'openai', 'account', 0);
        const payloads = ssePayloads(await response.text());
        expect(payloads).not.toContain('[DONE]');
        expect(payloads.some((payload) => payload.includes('"content"'))).toBe(true);
        const last = JSON.parse(payloads.at(-1) ?? '{}') as { error?: { code?: string; type?: string } };
        expect(last.error?.type).toBe('upstream_error');
        expectUpstream({ openai: 1 });
      });
    }
  });
}

describe("the seed's fallback_chain request (gpt-4; openai, anthropic, google, parrotrouter)", () => {
  const SEED_ROUTING: RoutingOptions = {
    strategy: 'fallback_chain',
    provider_order: ['openai', 'anthropic', 'google', 'parrotrouter'],
    fallback_reasons: ['rate_limit', 'timeout', 'server_error', 'model_not_available'],
  };
  const seedPlan: Plan = { model: 'gpt-4', routing: SEED_ROUTING, next: undefined };
  const seedRequest = (routing: RoutingOptions = SEED_ROUTING) =>
    chat(gateway, { model: 'gpt-4', messages: [{ role: 'user', content: 'Analyze this data...' }], routing });

  test('healthy: your OpenAI key serves gpt-4 itself', async () => {
    const response = await seedRequest();
    expect(response.status).toBe(200);
    expectServed(response, seedPlan, 'openai', 'account', 0);
    expectUpstream({ openai: 1 });
  });

  test("OpenAI failing → your Anthropic key serves the class's equivalent model", async () => {
    account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 20 });
    const response = await seedRequest();
    expect(response.status).toBe(200);
    expectServed(response, seedPlan, 'anthropic', 'account', 1);
    expect(lastSentModel(account, 'anthropic')).toBe(flagship.models.anthropic as string);
    expectUpstream({ openai: 1, anthropic: 1 });
  });

  test('Anthropic failing too → your Google key', async () => {
    account.simulators.openai.inject({ kind: 'server_error' });
    account.simulators.anthropic.inject({ kind: 'overloaded' });
    const response = await seedRequest();
    expect(response.status).toBe(200);
    expectServed(response, seedPlan, 'google', 'account', 2);
    expectUpstream({ openai: 1, anthropic: 1, google: 1 });
  });

  test("every account provider failing → ParrotRouter's (platform) keys serve, X-BYOK-Used: false", async () => {
    account.simulators.openai.inject({ kind: 'server_error' });
    account.simulators.anthropic.inject({ kind: 'reset' });
    account.simulators.google.inject({ kind: 'model_not_found' });
    const response = await seedRequest();
    expect(response.status).toBe(200);
    // The platform part of the chain follows the chain's own provider order.
    expectServed(response, seedPlan, 'openai', 'platform', 3);
    expectUpstream({ openai: 1, anthropic: 1, google: 1 }, { openai: 1 });
  });

  test('without "parrotrouter" in the order no platform key is used: 502 lists each attempt, never a key', async () => {
    account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 2 });
    account.simulators.anthropic.inject({ kind: 'overloaded' });
    account.simulators.google.inject({ kind: 'server_error' });
    const response = await seedRequest({ ...SEED_ROUTING, provider_order: ['openai', 'anthropic', 'google'] });
    expect(response.status).toBe(502);
    expect(response.headers.get('x-fallback-attempts')).toBe('3');
    // The last attempt's, whose answer the error is.
    expect(response.headers.get('x-provider-used')).toBe('google');
    expect(response.headers.get('x-byok-used')).toBe('true');
    expect(response.headers.get('x-key-id')).toMatch(/^pk_/);
    const text = await response.text();
    const error = (JSON.parse(text) as { error: Awaited<ReturnType<typeof errorOf>> }).error;
    expect(error.type).toBe('upstream_error');
    expect(error.attempts?.map((attempt) => [attempt.provider, attempt.reason, attempt.owner])).toEqual([
      ['openai', 'rate_limit', 'account'],
      ['anthropic', 'server_error', 'account'],
      ['google', 'server_error', 'account'],
    ]);
    for (const provider of ACCOUNT_PROVIDERS) expect(error.message).toContain(provider);
    expect(containsAny(text, upstreamKeysOf(account, platform))).toEqual([]);
    expectUpstream({ openai: 1, anthropic: 1, google: 1 });
  });

  test('when the last failure is a rate limit the answer is 429 upstream_rate_limited with its Retry-After', async () => {
    account.simulators.openai.inject({ kind: 'server_error' });
    account.simulators.anthropic.inject({ kind: 'server_error' });
    account.simulators.google.inject({ kind: 'rate_limit', retryAfterSeconds: 9 });
    const response = await seedRequest({ ...SEED_ROUTING, provider_order: ['openai', 'anthropic', 'google'] });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('9');
    expect((await errorOf(response)).code).toBe('upstream_rate_limited');
    expectUpstream({ openai: 1, anthropic: 1, google: 1 });
  });

  test('"platform" is a synonym of "parrotrouter"', async () => {
    for (const provider of ACCOUNT_PROVIDERS) account.simulators[provider].inject({ kind: 'server_error' });
    const response = await seedRequest({ ...SEED_ROUTING, provider_order: ['openai', 'anthropic', 'google', 'platform'] });
    expect(response.status).toBe(200);
    expect(servedBy(response).byok).toBe('false');
    expectUpstream({ openai: 1, anthropic: 1, google: 1 }, { openai: 1 });
  });
});

// QA (seed walk-through) F2: an order sent without `strategy` was carried and never read: with
// byok_preferred (the default) the openai failure was the answer, anthropic and the platform keys the
// order named were never tried, and nothing said so.
describe('a provider_order with no strategy beside it is a fallback chain', () => {
  const failOpenAI = () => account.simulators.openai.inject({ kind: 'server_error' });
  const ordered = (provider_order: string[]) => chat(gateway, { model: 'gpt-4', routing: { provider_order } });

  test("in the request: OpenAI failing → your Anthropic key serves the class's equivalent", async () => {
    failOpenAI();
    const response = await ordered(['openai', 'anthropic']);
    expect(response.status).toBe(200);
    expect(servedBy(response)).toMatchObject({ provider: 'anthropic', byok: 'true', fallbackAttempts: '1' });
    expectUpstream({ openai: 1, anthropic: 1 });
  });

  test("in the request, ending in parrotrouter: the platform keys after the account's", async () => {
    failOpenAI();
    const response = await ordered(['openai', 'parrotrouter']);
    expect(response.status).toBe(200);
    expect(servedBy(response)).toMatchObject({ provider: 'openai', byok: 'false', fallbackAttempts: '1' });
    expectUpstream({ openai: 1 }, { openai: 1 });
  });

  test("as the account's default (PUT /v1/settings/routing), and over a default strategy when the request sends only an order", async () => {
    const stored = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { provider_order: ['openai', 'anthropic'] } });
    expect(stored.status).toBe(200);
    try {
      failOpenAI();
      const byDefault = await chat(gateway, { model: 'gpt-4' });
      expect(servedBy(byDefault)).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
      expect((await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'byok_preferred' } })).status).toBe(200);
      failOpenAI();
      expect(servedBy(await ordered(['openai', 'google']))).toMatchObject({ provider: 'google', fallbackAttempts: '1' });
    } finally {
      await call(gateway, 'PUT', '/v1/settings/routing', { routing: {} });
    }
  });

  test('a strategy named beside the order is the strategy used', async () => {
    failOpenAI();
    const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', provider_order: ['openai', 'anthropic'] } });
    expect(response.status).toBe(502);
    expectUpstream({ openai: 1 });
  });
});
