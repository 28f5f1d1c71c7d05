// OpenAI answers its chat search models with a dated snapshot (`gpt-4o-search-preview` is served as
// `gpt-4o-search-preview-2025-03-11`), and the price table lists those snapshots without the search fee
// their alias has. The row books the snapshot, but the search is still charged, at the routed model's
// fee, streamed or not: the snapshot's entry alone dropped the fee, 98 % of such a call's cost (QA20).

import { describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { OPENAI_DEFAULT_MODELS } from '../simulators/openai.ts';
import { openAIBookingPerFile, nextRequestId, price, rowOf } from './booking.ts';

const KEYS = { openai: 'sk-proj-SnapshotSearchFeeKey0000000000001' };
const SERVED = { 'gpt-4o-search-preview': 'gpt-4o-search-preview-2025-03-11', 'gpt-4o-mini-search-preview': 'gpt-4o-mini-search-preview-2025-03-11' };

const { gateway, client } = openAIBookingPerFile(KEYS.openai, { models: [...OPENAI_DEFAULT_MODELS, ...Object.keys(SERVED)], servedModels: SERVED });

/** One search call as the OpenAI SDK makes it, streamed or not, and the row it left. */
async function searched(model: string, size: 'low' | 'high' | undefined, stream: boolean): Promise<UsageRecord> {
  const requestId = nextRequestId();
  const body = {
    model,
    web_search_options: size === undefined ? {} : { search_context_size: size },
    messages: [{ role: 'user' as const, content: `What happened today? (${size ?? 'default'})` }],
  };
  const options = { headers: { 'x-request-id': requestId } };
  if (stream) {
    for await (const _chunk of await client().chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, options)) {
      // Read to the end, as a client does.
    }
  } else {
    await client().chat.completions.create(body, options);
  }
  return rowOf(gateway(), requestId);
}

describe('a search model served as its dated snapshot', () => {
  test('the search fee of the model asked for is charged, at the size asked for, streamed or not', async () => {
    for (const [model, snapshot] of Object.entries(SERVED)) {
      // The shipped table prices the snapshot without a search fee: what made the call lose it.
      expect(price(snapshot).search_context_cost_per_query).toBeUndefined();
      const listed = price(model);
      const fees = listed.search_context_cost_per_query as Record<string, number>;
      for (const [size, fee] of [
        ['high', fees.search_context_size_high],
        ['low', fees.search_context_size_low],
        [undefined, fees.search_context_size_medium],
      ] as const) {
        for (const stream of [false, true]) {
          const row = await searched(model, size, stream);
          expect(row.model).toBe(snapshot);
          const tokens = row.inputTokens * listed.input_cost_per_token + row.outputTokens * listed.output_cost_per_token;
          expect({ model, size, stream, cost: row.costUsd as number }).toEqual({ model, size, stream, cost: expect.closeTo(tokens + (fee as number), 9) });
        }
      }
    }
  });
});
