// OpenAI bills a call at the processing tier it served it at: a request with `service_tier: "priority"`
// at the priority rates (gpt-4o's input 1.7 times the standard one), `"flex"` at the flex rates (half).
// The answer says which (`service_tier`, in the body, every stream chunk and the Responses object), and
// the table lists the rates (`*_priority`, `*_flex`). Every call was booked at the standard rates, so a
// team could spend 1.7 times its budget with priority calls and flex calls were billed twice (QA20).

import { describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { call } from '../helpers/gateway.ts';
import { OPENAI_DEFAULT_MODELS } from '../simulators/openai.ts';
import { openAIBookingPerFile, nextRequestId, price, rowOf } from './booking.ts';

const KEYS = { openai: 'sk-proj-ServiceTierPriceKey0000000000001' };

// OpenAI answers an alias with its dated snapshot, which the table lists without the tier rates.
const { gateway, client } = openAIBookingPerFile(KEYS.openai, {
  models: [...OPENAI_DEFAULT_MODELS],
  servedModels: { 'gpt-4o': 'gpt-4o-2024-08-06', 'o4-mini': 'o4-mini-2025-04-16' },
});

type Tier = 'priority' | 'flex' | 'default';
type Way = 'chat' | 'chat stream' | 'responses' | 'responses stream';

async function called(model: string, tier: Tier, way: Way): Promise<UsageRecord> {
  const requestId = nextRequestId();
  const options = { headers: { 'x-request-id': requestId } };
  const text = `Answer at the ${tier} tier.`;
  if (way === 'chat') await client().chat.completions.create({ model, service_tier: tier, messages: [{ role: 'user', content: text }] }, options);
  else if (way === 'chat stream') {
    const stream = await client().chat.completions.create(
      { model, service_tier: tier, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: text }] },
      options,
    );
    for await (const _chunk of stream) {
      // Read to the end, as a client does.
    }
  } else if (way === 'responses') await client().responses.create({ model, service_tier: tier, input: text, store: false }, options);
  else {
    const stream = await client().responses.create({ model, service_tier: tier, input: text, store: false, stream: true }, options);
    for await (const _event of stream) {
      // Read to the end, as a client does.
    }
  }
  return rowOf(gateway(), requestId);
}

/** The row's cost at the table's rates of that tier (the standard ones for `default`). */
function atTier(model: string, tier: Tier, row: UsageRecord): number {
  const entry = price(model) as unknown as Record<string, number | undefined>;
  const suffix = tier === 'default' ? '' : `_${tier}`;
  const input = entry[`input_cost_per_token${suffix}`] as number;
  const output = entry[`output_cost_per_token${suffix}`] as number;
  const cached = entry[`cache_read_input_token_cost${suffix}`] as number;
  return (row.inputTokens - row.cachedInputTokens) * input + row.cachedInputTokens * cached + row.outputTokens * output;
}

describe('a call served at a processing tier', () => {
  test('is booked at that tier’s rates, on chat and Responses, streamed or not', async () => {
    for (const [model, tier] of [
      ['gpt-4o', 'priority'],
      ['o4-mini', 'flex'],
      ['gpt-4o', 'default'],
    ] as const) {
      for (const way of ['chat', 'chat stream', 'responses', 'responses stream'] as const) {
        const row = await called(model, tier, way);
        // The simulator serves chat as the snapshot (as OpenAI does), Responses under the name asked for.
        if (way.startsWith('chat')) expect(row.model).toStartWith(`${model}-20`);
        expect({ model, tier, way, cost: row.costUsd }).toEqual({ model, tier, way, cost: expect.closeTo(atTier(model, tier, row), 12) });
      }
    }
  });
});

describe('the budget reservation and an operator price', () => {
  test('a request that asks for priority is reserved at the priority rates; one that does not, at the standard ones', () => {
    const pricing = gateway().runtime.services.pricing;
    const entry = price('o4-mini') as unknown as Record<string, number>;
    const request = (tier: string | undefined) =>
      ({ model: 'o4-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...(tier === undefined ? {} : { service_tier: tier }) }) as never;
    const nanos = (input: number, output: number) => Math.ceil((100 * input + 10 * output) * 1e9);
    expect(worstCaseNanos(pricing, request('priority'), 'openai', 'o4-mini', 100)).toBe(
      nanos(entry.input_cost_per_token_priority as number, entry.output_cost_per_token_priority as number),
    );
    expect(worstCaseNanos(pricing, request(undefined), 'openai', 'o4-mini', 100)).toBe(
      nanos(entry.input_cost_per_token as number, entry.output_cost_per_token as number),
    );
  });

  test("an operator's input or output rate replaces the table's processing-tier rates too", async () => {
    const put = await call(gateway(), 'PUT', '/v1/platform/prices', {
      provider: 'openai',
      model: 'gpt-4o',
      input_cost_per_token: 0.000001,
      output_cost_per_token: 0.000004,
    });
    expect(put.status).toBe(200);
    const row = await called('gpt-4o', 'priority', 'chat');
    expect(row.costUsd).toBeCloseTo(row.inputTokens * 0.000001 + row.outputTokens * 0.000004, 12);
    expect((await call(gateway(), 'DELETE', '/v1/platform/prices/openai/gpt-4o')).status).toBe(200);
  });
});
