// What falls back and what does not (fallback_reasons, client errors, quota), cost_optimized with
// the seed's "Cost Optimization" block and as the account default, and retries with their caps.
// Split from strategies.test.ts to keep files small; same gateway shape, its own instance.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { startStrategyWorld, stopStrategyWorld } from './strategy-world.ts';
import type { ModelClass } from '../../core/routing/model-classes.ts';
import type { RoutingOptions } from '../../core/spec/vocabulary.ts';
import type { Fault } from '../simulators/common.ts';
import { expectedCostOrder } from './expectations.ts';
import { attemptsOf, call, chat, errorOf, servedBy, USER_MESSAGE, type ProviderName, type RoutingGateway, type SimulatorFleet } from './harness.ts';

const ACCOUNT_PROVIDERS = ['openai', 'anthropic', 'google'] as const;
const SEED_COST_BLOCK: RoutingOptions = { strategy: 'cost_optimized', prefer_byok: true, cost_weights: { openai: 0.8, anthropic: 1.0 } };

let gateway: RoutingGateway;
let account: SimulatorFleet;
let platform: SimulatorFleet;
let accountKeyIds: Record<string, string>;
let platformKeyIds: Record<string, string>;
let flagship: ModelClass;

beforeAll(async () => {
  ({ gateway, account, platform, accountKeyIds, platformKeyIds, flagship } = await startStrategyWorld(ACCOUNT_PROVIDERS, 'debug'));
});

afterAll(() => stopStrategyWorld({ gateway, account, platform }));

beforeEach(() => {
  account.reset();
  platform.reset();
});

const upstream = () => ({ account: account.upstreamCounts(), platform: platform.upstreamCounts() });

describe('fallback_reasons decide what falls back', () => {
  const chain = (reasons?: string[]): RoutingOptions => ({
    strategy: 'fallback_chain',
    provider_order: ['openai', 'anthropic'],
    ...(reasons === undefined ? {} : { fallback_reasons: reasons }),
  });

  test('only rate_limit listed: a 500 is not retried elsewhere', async () => {
    account.simulators.openai.inject({ kind: 'server_error' });
    const response = await chat(gateway, { model: 'gpt-4', routing: chain(['rate_limit']) });
    expect(response.status).toBe(502);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(upstream().account).toEqual(attemptsOf({ openai: 1 }));
  });

  test('only rate_limit listed: a 429 still falls back', async () => {
    account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
    const response = await chat(gateway, { model: 'gpt-4', routing: chain(['rate_limit']) });
    expect(response.status).toBe(200);
    expect(servedBy(response).provider).toBe('anthropic');
    expect(upstream().account).toEqual(attemptsOf({ openai: 1, anthropic: 1 }));
  });

  test('model_not_available is a default reason', async () => {
    account.simulators.openai.inject({ kind: 'model_not_found' });
    const response = await chat(gateway, { model: 'gpt-4', routing: chain() });
    expect(response.status).toBe(200);
    expect(servedBy(response)).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
  });

  test('quota_exceeded is classified apart from rate limits: not a default reason, a fallback when listed', async () => {
    account.simulators.openai.inject({ kind: 'quota' });
    const refused = await chat(gateway, { model: 'gpt-4', routing: chain() });
    expect(refused.status).toBe(429);
    expect((await errorOf(refused)).code).toBe('upstream_quota_exceeded');
    expect(upstream().account).toEqual(attemptsOf({ openai: 1 }));
    account.reset();
    account.simulators.openai.inject({ kind: 'quota' });
    const listed = await chat(gateway, { model: 'gpt-4', routing: chain(['quota_exceeded']) });
    expect(listed.status).toBe(200);
    expect(servedBy(listed).provider).toBe('anthropic');
  });
});

describe('a client error (400) is returned as is, never retried elsewhere', () => {
  const clientErrors: Array<{ name: string; fault: Fault; code: string }> = [
    { name: 'context length exceeded', fault: { kind: 'context_length' }, code: 'context_length_exceeded' },
    {
      name: 'invalid request',
      fault: {
        kind: 'status',
        status: 400,
        body: {
          error: { message: "Invalid value for 'temperature': must be at most 2.", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' },
        },
      },
      code: 'upstream_invalid_request',
    },
  ];
  const fallbackStrategies: Array<{ name: string; routing: RoutingOptions }> = [
    { name: 'byok_preferred with platform permission', routing: { strategy: 'byok_preferred', fallback_to_parrotrouter: true } },
    { name: 'fallback_chain', routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic', 'google', 'parrotrouter'] } },
    { name: 'cost_optimized', routing: { strategy: 'cost_optimized', cost_weights: { openai: 0.01 }, fallback_to_parrotrouter: true } },
  ];
  for (const clientError of clientErrors) {
    for (const strategy of fallbackStrategies) {
      test(`${clientError.name} under ${strategy.name}`, async () => {
        account.simulators.openai.inject(clientError.fault);
        const response = await chat(gateway, { model: 'gpt-4', routing: strategy.routing });
        expect(response.status).toBe(400);
        const error = await errorOf(response);
        expect(error.type).toBe('invalid_request_error');
        expect(error.code).toBe(clientError.code);
        expect(upstream()).toEqual({ account: attemptsOf({ openai: 1 }), platform: attemptsOf({}) });
      });
    }
  }
});

describe("cost_optimized with the seed's block (prefer_byok, openai 0.8, anthropic 1.0)", () => {
  for (const model of ['gpt-4', 'gpt-5']) {
    test(`${model}: the cheapest effective price (catalog list price × weight) serves`, async () => {
      const order = expectedCostOrder(flagship, { provider: 'openai', model }, SEED_COST_BLOCK.cost_weights ?? {}, ACCOUNT_PROVIDERS);
      const cheapest = order[0];
      const response = await chat(gateway, { model, routing: SEED_COST_BLOCK });
      expect(response.status).toBe(200);
      expect(servedBy(response)).toMatchObject({
        provider: cheapest?.provider,
        keyId: accountKeyIds[cheapest?.provider ?? ''],
        byok: 'true',
        fallbackAttempts: '0',
      });
      expect(upstream().account).toEqual(attemptsOf({ [cheapest?.provider ?? '']: 1 }));
    });
  }

  test('a provider the request names is kept: cost_optimized orders only its keys', async () => {
    for (const [name, body] of [
      ['provider field', { model: 'gemini-2.5-pro', provider: 'google' }],
      ['provider/model', { model: 'google/gemini-2.5-pro' }],
      ['named provider, priciest', { model: 'gpt-4', provider: 'openai' }],
    ] as const) {
      account.reset();
      const response = await chat(gateway, { ...body, routing: SEED_COST_BLOCK });
      const expected = 'provider' in body ? body.provider : 'google';
      expect({ name, status: response.status, provider: servedBy(response).provider }).toEqual({ name, status: 200, provider: expected });
      expect(upstream().account).toEqual(attemptsOf({ [expected]: 1 }));
    }
    // Failing, it does not move to another provider's model either.
    account.reset();
    account.simulators.google.inject({ kind: 'server_error' });
    const failed = await chat(gateway, { model: 'google/gemini-2.5-pro', routing: SEED_COST_BLOCK });
    expect(failed.status).toBe(502);
    expect(upstream().account).toEqual(attemptsOf({ google: 1 }));
  });

  test('falls back in price order, and the 502 lists the attempts in that order', async () => {
    const order = expectedCostOrder(flagship, { provider: 'openai', model: 'gpt-4' }, SEED_COST_BLOCK.cost_weights ?? {}, ACCOUNT_PROVIDERS);
    for (const provider of ACCOUNT_PROVIDERS) account.simulators[provider].inject({ kind: 'server_error' });
    const failed = await chat(gateway, { model: 'gpt-4', routing: SEED_COST_BLOCK });
    expect(failed.status).toBe(502);
    expect((await errorOf(failed)).attempts?.map((attempt) => attempt.provider)).toEqual(order.map((choice) => choice.provider));
    account.reset();
    const [first, second, third] = order;
    account.simulators[first?.provider as ProviderName].inject({ kind: 'server_error' });
    account.simulators[second?.provider as ProviderName].inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
    const served = await chat(gateway, { model: 'gpt-4', routing: SEED_COST_BLOCK });
    expect(servedBy(served)).toMatchObject({ provider: third?.provider, fallbackAttempts: '2' });
    expect(upstream()).toEqual({ account: attemptsOf({ openai: 1, anthropic: 1, google: 1 }), platform: attemptsOf({}) });
  });

  test('platform keys join only with permission, priced at list × (1 + platform markup)', async () => {
    for (const provider of ACCOUNT_PROVIDERS) account.simulators[provider].setSticky({ kind: 'server_error' });
    const withoutPermission = await chat(gateway, { model: 'gpt-4', routing: SEED_COST_BLOCK });
    expect(withoutPermission.status).toBe(502);
    expect(upstream().platform).toEqual(attemptsOf({}));
    account.reset();
    for (const provider of ACCOUNT_PROVIDERS) account.simulators[provider].setSticky({ kind: 'server_error' });
    // Account and platform candidates share one price order (platform at list + markup); with
    // every account key failing, the cheapest platform key serves after the account keys priced below it.
    // The operator's markup (PUT /v1/platform/settings) moves platform keys down the order.
    const settings = await call(gateway, 'PUT', '/v1/platform/settings', { platform_markup_percent: 200 });
    const markup = 1 + ((await settings.json()) as { platform_markup_percent: number }).platform_markup_percent / 100;
    const byok = expectedCostOrder(flagship, { provider: 'openai', model: 'gpt-4' }, SEED_COST_BLOCK.cost_weights ?? {}, ACCOUNT_PROVIDERS).map((choice) => ({
      ...choice,
      owner: 'account',
    }));
    const pooled = expectedCostOrder(
      flagship,
      { provider: 'openai', model: 'gpt-4' },
      { openai: markup, anthropic: markup, google: markup },
      ACCOUNT_PROVIDERS,
    ).map((choice) => ({ ...choice, owner: 'platform' }));
    const merged = [...byok, ...pooled].sort((left, right) => left.effectivePrice - right.effectivePrice);
    const servingIndex = merged.findIndex((choice) => choice.owner === 'platform');
    const serving = merged[servingIndex]?.provider ?? '';
    const response = await chat(gateway, { model: 'gpt-4', routing: { ...SEED_COST_BLOCK, fallback_to_parrotrouter: true } });
    expect(response.status).toBe(200);
    expect(servedBy(response)).toMatchObject({ provider: serving, keyId: platformKeyIds[serving], byok: 'false', fallbackAttempts: String(servingIndex) });
    const triedAccount = Object.fromEntries(merged.slice(0, servingIndex).map((choice) => [choice.provider, 1]));
    expect(upstream()).toEqual({ account: attemptsOf(triedAccount), platform: attemptsOf({ [serving]: 1 }) });
    await call(gateway, 'PUT', '/v1/platform/settings', { platform_markup_percent: 5 });
  });

  test('PUT /v1/settings/routing stores the block as the account default; a request without routing uses it', async () => {
    const rejected = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'cheapest_please' } });
    expect(rejected.status).toBe(400);
    expect((await errorOf(rejected)).param).toBe('routing.strategy');
    const badWeight = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { ...SEED_COST_BLOCK, cost_weights: { openai: -1 } } });
    expect((await errorOf(badWeight)).param).toBe('routing.cost_weights.openai');
    // A weight is a price multiplier from 0 to 100: 1e308 made the weighted costs Infinity (cost-comparison's provider_costs: null).
    for (const weight of [100.5, 1e6, 1e308]) {
      const huge = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { ...SEED_COST_BLOCK, cost_weights: { openai: weight } } });
      expect(huge.status).toBe(400);
      expect(await errorOf(huge)).toMatchObject({ param: 'routing.cost_weights.openai', message: expect.stringContaining('must be a number from 0 to 100') });
      const perRequest = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'cost_optimized', cost_weights: { openai: weight } } });
      expect((await errorOf(perRequest)).param).toBe('routing.cost_weights.openai');
    }
    const bounds = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { ...SEED_COST_BLOCK, cost_weights: { openai: 0, anthropic: 100 } } });
    expect(bounds.status).toBe(200);

    const stored = await call(gateway, 'PUT', '/v1/settings/routing', { routing: SEED_COST_BLOCK });
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as { routing: unknown }).routing).toEqual(SEED_COST_BLOCK);
    try {
      const settings = (await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } };
      expect(settings.settings.routing).toEqual(SEED_COST_BLOCK);
      // gpt-4 is OpenAI's, so the default strategy would pick OpenAI; the stored block does not.
      const cheapest = expectedCostOrder(flagship, { provider: 'openai', model: 'gpt-4' }, SEED_COST_BLOCK.cost_weights ?? {}, ACCOUNT_PROVIDERS)[0]?.provider;
      expect(cheapest).not.toBe('openai');
      const response = await chat(gateway, { model: 'gpt-4' });
      expect(servedBy(response).provider).toBe(cheapest ?? '');
      // A request's own routing still wins, field by field.
      const overridden = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct' } });
      expect(servedBy(overridden).provider).toBe('openai');
    } finally {
      await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'byok_preferred' } });
    }
  });
});

describe('routing.provider_order names loaded providers only', () => {
  test('an unknown name is a 400 naming its index and the known providers, before any upstream call', async () => {
    for (const [order, index] of [
      [['nope'], 0],
      [['openai', 'nope'], 1],
      [['openai', 'anthropic', 'OpenAI'], 2],
    ] as const) {
      const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: order } });
      expect(response.status).toBe(400);
      const error = await errorOf(response);
      expect(error).toMatchObject({ code: 'invalid_field', param: `routing.provider_order[${index}]` });
      expect(error.message).toContain(`unknown provider '${order[index]}'; known providers: `);
      expect(error.message).toContain('anthropic');
      expect(error.message).toContain('parrotrouter');
    }
    expect(upstream()).toEqual({ account: attemptsOf({}), platform: attemptsOf({}) });
  });

  test("an order that leaves out the model's only provider is a 503 that says so, not one calling its healthy keys unavailable", async () => {
    const response = await chat(gateway, { model: 'claude-3-5-haiku-20241022', routing: { strategy: 'fallback_chain', provider_order: ['openai'] } });
    expect(response.status).toBe(503);
    const error = await errorOf(response);
    expect(error.code).toBe('no_provider_available');
    expect(error.message).toContain('routing.provider_order: openai');
    expect(error.message).toContain('planned none');
    expect(error.message).not.toContain('unavailable');
    expect(upstream()).toEqual({ account: attemptsOf({}), platform: attemptsOf({}) });
  });

  test('the platform names are accepted', async () => {
    for (const name of ['parrotrouter', 'platform']) {
      const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: ['openai', name] } });
      expect(response.status).toBe(200);
    }
  });

  test('PUT /v1/settings/routing refuses it too, and stores nothing', async () => {
    const before = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    const response = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'fallback_chain', provider_order: ['openai', 'nope'] } });
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toMatchObject({ code: 'invalid_field', param: 'routing.provider_order[1]' });
    const after = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    expect(after).toEqual(before);
  });
});

describe('routing.cost_weights names loaded providers only', () => {
  test("a misspelt name is a 400 naming it and the known providers, in a request's routing, before any upstream call", async () => {
    for (const name of ['opanai', 'OpenAI', 'parrotrouter']) {
      const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'cost_optimized', cost_weights: { anthropic: 1, [name]: 0.8 } } });
      expect(response.status).toBe(400);
      const error = await errorOf(response);
      expect(error).toMatchObject({ code: 'invalid_field', param: `routing.cost_weights.${name}` });
      expect(error.message).toContain(`unknown provider '${name}'; known providers: `);
      expect(error.message).toContain('openai');
    }
    expect(upstream()).toEqual({ account: attemptsOf({}), platform: attemptsOf({}) });
  });

  test("the seed's weights are accepted", async () => {
    const response = await chat(gateway, { model: 'gpt-4', routing: { ...SEED_COST_BLOCK } });
    expect(response.status).toBe(200);
  });

  test('PUT /v1/settings/routing refuses it too, and stores nothing', async () => {
    const before = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    const response = await call(gateway, 'PUT', '/v1/settings/routing', { routing: { ...SEED_COST_BLOCK, cost_weights: { openai: 0.8, nope: 1 } } });
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toMatchObject({ code: 'invalid_field', param: 'routing.cost_weights.nope' });
    const after = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    expect(after).toEqual(before);
  });
});

describe('routing numbers must be finite (JSON.parse reads 1e400 as Infinity; stored JSON would hold null)', () => {
  const infiniteWeight = (envelope: boolean) => {
    const routing = '{"strategy":"cost_optimized","cost_weights":{"openai":1,"google":1e400}}';
    return envelope ? `{"routing":${routing}}` : routing;
  };

  test('PUT /v1/settings/routing refuses an infinite cost weight, naming it, and stores nothing', async () => {
    const before = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    for (const body of [infiniteWeight(true), infiniteWeight(false)]) {
      const response = await call(gateway, 'PUT', '/v1/settings/routing', body);
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({ code: 'invalid_field', param: 'routing.cost_weights.google' });
    }
    const after = ((await (await call(gateway, 'GET', '/v1/settings')).json()) as { settings: { routing?: unknown } }).settings.routing;
    expect(after).toEqual(before);
  });

  test("a request's routing refuses infinite numbers too, before any upstream call", async () => {
    for (const [field, routing] of [
      ['routing.cost_weights.google', '{"strategy":"cost_optimized","cost_weights":{"openai":1,"google":1e400}}'],
      ['routing.cost_weights.openai', '{"strategy":"cost_optimized","cost_weights":{"openai":-1e400}}'],
      ['routing.timeout_ms', '{"strategy":"direct","timeout_ms":1e400}'],
      ['routing.total_timeout_ms', '{"strategy":"direct","total_timeout_ms":-1e400}'],
      ['routing.retries', '{"strategy":"direct","retries":1e400}'],
    ] as const) {
      const body = `{"model":"gpt-4","messages":${JSON.stringify(USER_MESSAGE)},"routing":${routing}}`;
      const response = await call(gateway, 'POST', '/v1/chat/completions', body, { headers: { 'X-Use-BYOK': 'true' } });
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({ code: 'invalid_field', param: field });
    }
    expect(upstream()).toEqual({ account: attemptsOf({}), platform: attemptsOf({}) });
  });
});

describe('retries, backoff and caps', () => {
  test('retries: 1 with a 429 Retry-After 1 on a single candidate: the second pass succeeds after ≥ 1 s', async () => {
    account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
    const started = performance.now();
    const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', retries: 1 } });
    expect(response.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(servedBy(response)).toMatchObject({ provider: 'openai', keyId: accountKeyIds.openai, fallbackAttempts: '1' });
    const [first, second] = account.simulators.openai.inferenceRequests();
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1_000);
    expect(upstream().account).toEqual(attemptsOf({ openai: 2 }));
  });

  test('total_timeout_ms caps it: a backoff that would overrun answers 429 with Retry-After at once', async () => {
    account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 5 });
    const started = performance.now();
    const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', retries: 1, total_timeout_ms: 2_000 } });
    expect(performance.now() - started).toBeLessThan(4_000);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('5');
    expect((await errorOf(response)).code).toBe('upstream_rate_limited');
    expect(upstream().account).toEqual(attemptsOf({ openai: 1 }));
  });

  test('without a Retry-After, passes back off exponentially (with bounded jitter) up to retries', async () => {
    account.simulators.openai.setSticky({ kind: 'server_error' });
    const started = performance.now();
    const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', retries: 2 } });
    // Jitter keeps each wait in [base·2^pass / 2, base·2^pass]: at least 125 + 250 ms in all.
    expect(performance.now() - started).toBeGreaterThanOrEqual(370);
    expect(response.status).toBe(502);
    expect((await errorOf(response)).attempts).toHaveLength(3);
    expect(upstream().account).toEqual(attemptsOf({ openai: 3 }));
  });

  test('a retry pass goes over every candidate again, in order', async () => {
    account.simulators.openai.inject({ kind: 'server_error' });
    account.simulators.anthropic.inject({ kind: 'server_error' });
    const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'], retries: 1 } });
    expect(response.status).toBe(200);
    expect(servedBy(response)).toMatchObject({ provider: 'openai', fallbackAttempts: '2' });
    expect(upstream().account).toEqual(attemptsOf({ openai: 2, anthropic: 1 }));
  });

  test('max_attempts caps the attempts, platform keys included', async () => {
    for (const provider of ACCOUNT_PROVIDERS) account.simulators[provider].setSticky({ kind: 'server_error' });
    const response = await chat(gateway, {
      model: 'gpt-4',
      routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic', 'google', 'parrotrouter'], max_attempts: 2, retries: 3 },
    });
    expect(response.status).toBe(502);
    expect((await errorOf(response)).attempts?.map((attempt) => attempt.provider)).toEqual(['openai', 'anthropic']);
    expect(upstream()).toEqual({ account: attemptsOf({ openai: 1, anthropic: 1 }), platform: attemptsOf({}) });
  });

  test('routing values out of range are refused with the field named', async () => {
    for (const [field, value] of [
      ['retries', 6],
      ['max_attempts', 0],
      ['timeout_ms', -5],
      ['fallback_reasons', ['sunspots']],
    ] as const) {
      const response = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', [field]: value } });
      expect(response.status).toBe(400);
      expect((await errorOf(response)).param).toBe(`routing.${field}`);
    }
    expect(upstream().account).toEqual(attemptsOf({}));
  });
});

describe('informative: what a fallback after a 429 adds', () => {
  interface Finished {
    requestId: string;
    latencyMs: number;
    attempts: Array<{ durationMs: number }>;
  }
  const finished = (requestId: string | null): Finished | undefined =>
    gateway.output
      .filter((line) => line.includes('"request finished"'))
      .map((line) => JSON.parse(line) as Finished)
      .find((entry) => entry.requestId === requestId);
  const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] ?? Number.NaN;

  // Reported, never asserted: the time after the failed attempt, minus a plain request to the
  // provider that served, is what the fallback itself costs.
  test('fallback overhead over the failed attempt and the serving provider', async () => {
    const afterFailure: number[] = [];
    const failedAttempt: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < 15; round++) {
      account.simulators.openai.inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
      const fallback = await chat(gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] } });
      await fallback.text();
      const direct = await chat(gateway, { model: 'claude-opus-4-5', routing: { strategy: 'direct' } });
      await direct.text();
      const fallbackLog = finished(fallback.headers.get('x-request-id'));
      const directLog = finished(direct.headers.get('x-request-id'));
      if (fallbackLog === undefined || directLog === undefined) continue;
      failedAttempt.push(fallbackLog.attempts[0]?.durationMs ?? 0);
      afterFailure.push(fallbackLog.latencyMs - (fallbackLog.attempts[0]?.durationMs ?? 0));
      plain.push(directLog.latencyMs);
    }
    expect(afterFailure.length).toBeGreaterThan(0);
    console.log(
      `fallback after a 429 adds ${(median(afterFailure) - median(plain)).toFixed(2)} ms over the failed attempt's own time ` +
        `(median failed 429 attempt ${median(failedAttempt).toFixed(2)} ms, time after it ${median(afterFailure).toFixed(2)} ms, plain Anthropic request ${median(plain).toFixed(2)} ms, ${afterFailure.length} rounds)`,
    );
  });
});
