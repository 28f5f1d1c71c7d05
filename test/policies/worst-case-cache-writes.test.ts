// A budget's worst case prices a prompt at a cache-write rate only where the request can be billed for
// one: on a provider that writes caches only where the request marks them (Anthropic, `cache_control`),
// a request that marks nothing is reserved at the plain input rate, one marking only 5-minute writes at
// the 5-minute rate, one asking for an hour at the 1-hour rate; a provider that caches on its own
// (OpenAI's models with a write rate) keeps the dearest rate for every request.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ModelCatalog, shippedCatalog } from '../../core/catalog/catalog.ts';
import { createPricingService } from '../../core/catalog/pricing-service.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { cacheWriteMarks, worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { BUILTIN_CATALOG_ALIASES } from '../helpers/catalog.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

const catalog = new ModelCatalog();
catalog.replaceWith(shippedCatalog(BUILTIN_CATALOG_ALIASES));
const pricing = createPricingService(catalog, undefined, undefined, (provider) => (provider === 'anthropic' ? 'marked' : undefined));
const HAIKU = 'claude-3-haiku-20240307';
const haiku = catalog.get('anthropic', HAIKU);
const request = { model: HAIKU, max_tokens: 40, messages: [{ role: 'user', content: 'x' }] } as ChatRequest;
const nanos = (usd: number): number => Math.ceil(usd * 1e9 - 1e-3);

describe('which cache writes a body can be billed for', () => {
  test('none without cache_control, 5-minute ones with it, every kind when a marker may ask for an hour or the body is unknown', () => {
    expect(cacheWriteMarks('{"messages":[{"role":"user","content":"hi"}]}')).toBe('none');
    expect(cacheWriteMarks('{"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]}')).toBe('five-minute');
    expect(cacheWriteMarks('{"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"5m"}}]}')).toBe('five-minute');
    expect(cacheWriteMarks('{"cache_control":{"type":"ephemeral","ttl":"1h"}}')).toBe('any');
    expect(cacheWriteMarks(undefined)).toBe('any');
    // A stored conversation's turns are replayed upstream without being in the body.
    expect(cacheWriteMarks('{"previous_response_id":"resp_1","input":"go on"}')).toBe('any');
  });
});

describe('the worst case of a prompt on a provider that writes only marked caches', () => {
  test("the shipped table's claude-3-haiku has a 1-hour write rate far above its input rate (the case this guards)", () => {
    expect(haiku?.cacheWrite1hCostPerToken).toBeGreaterThan(4 * (haiku?.inputCostPerToken ?? 0));
    expect(pricing.price('anthropic', HAIKU)?.cacheWritesMarked).toBe(true);
  });

  test('each kind of marks reserves the prompt at its own rate; output at the output rate', () => {
    const input = haiku?.inputCostPerToken as number;
    const output = (haiku?.outputCostPerToken as number) * 40;
    const fiveMinutes = Math.max(input, haiku?.cacheWriteCostPerToken ?? 0);
    const oneHour = Math.max(fiveMinutes, haiku?.cacheWrite1hCostPerToken ?? 0);
    expect(worstCaseNanos(pricing, request, 'anthropic', HAIKU, 490, 'none')).toBe(nanos(490 * input + output));
    expect(worstCaseNanos(pricing, request, 'anthropic', HAIKU, 490, 'five-minute')).toBe(nanos(490 * fiveMinutes + output));
    expect(worstCaseNanos(pricing, request, 'anthropic', HAIKU, 490, 'any')).toBe(nanos(490 * oneHour + output));
    expect(worstCaseNanos(pricing, request, 'anthropic', HAIKU, 490)).toBe(nanos(490 * oneHour + output));
  });

  test('a provider that caches on its own keeps the dearest rate whatever the request marks', () => {
    const model = 'gpt-5.6';
    const info = catalog.get('openai', model);
    expect(info?.cacheWriteCostPerToken).toBeGreaterThan(info?.inputCostPerToken ?? Number.POSITIVE_INFINITY);
    const body = { ...request, model } as ChatRequest;
    expect(worstCaseNanos(pricing, body, 'openai', model, 490, 'none')).toBe(worstCaseNanos(pricing, body, 'openai', model, 490, 'any'));
  });
});

describe('over HTTP: a budgeted team asking for claude-3-haiku', () => {
  const ANTHROPIC_KEY = 'sk-ant-api03-CacheWriteWorstCaseTestKey0000000000000000000000';
  let anthropic: SimulatorHandle;
  let gateway: TestGateway;
  let memberKey = '';

  beforeAll(async () => {
    anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
    gateway = await startTestGateway({ env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url }, probes: false, logLevel: 'warn' });
    await addProviderKeys(gateway, [{ name: 'anthropic', api_key: ANTHROPIC_KEY }], gateway.defaultAdminKey);
    // The approval threshold sits between the plain-input worst case and the 1-hour-write one.
    const team = await call(
      gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Haiku team',
        byok_permissions: { providers: { anthropic: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.001 } } },
        members: [{ email: 'dev@company.com', role: 'developer', byok_access: true }],
      },
      { key: gateway.defaultAdminKey },
    );
    memberKey = ((await team.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
  });

  afterAll(async () => {
    await gateway?.stop();
    await anthropic?.stop();
  });

  const prompt = 'Summarise the notes. '.repeat(23);
  const send = (body: unknown) => call(gateway, 'POST', '/v1/messages', body, { key: memberKey, headers: { 'anthropic-version': '2023-06-01' } });

  test('without cache_control it is served: its worst case is the list price of the prompt and max_tokens', async () => {
    const response = await send({ model: HAIKU, max_tokens: 40, messages: [{ role: 'user', content: prompt }] });
    expect(response.status).toBe(200);
  });

  test('asking for a 1-hour cache write, the same prompt is reserved at that rate and held for approval', async () => {
    const response = await send({
      model: HAIKU,
      max_tokens: 40,
      system: [{ type: 'text', text: prompt, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: 'Go.' }],
    });
    expect(response.status).toBe(403);
    const error = ((await response.json()) as { error: { type: string; message: string } }).error;
    expect(error.message).toMatch(/approval/i);
  });
});
