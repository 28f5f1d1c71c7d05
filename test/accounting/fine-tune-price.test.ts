// An OpenAI fine-tune (`ft:<base model>:<organisation>:<suffix>:<id>`) is priced by the table's
// `ft:<base model>` entry, as LiteLLM prices it: the shipped table carries those rates (twice the base
// model's for gpt-4o-mini) and Keyway booked every fine-tune unpriced until an operator priced each id
// (QA20). A fine-tune of a base the table has no `ft:` entry for stays unpriced, never $0.

import { describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { openAIBookingPerFile, nextRequestId, price, rowOf } from './booking.ts';

const KEYS = { openai: 'sk-proj-FineTunePriceKey00000000000000001' };
const PRICED_TUNE = 'ft:gpt-4o-mini-2024-07-18:acme:support:AbC123';
const UNKNOWN_BASE_TUNE = 'ft:gpt-4o-mini-2099-01-01:acme:support:XyZ789';

const { gateway, client } = openAIBookingPerFile(KEYS.openai, { unlistedModels: [PRICED_TUNE, UNKNOWN_BASE_TUNE] });

async function tuned(model: string, stream: boolean): Promise<{ row: UsageRecord; costHeader: string | null }> {
  const requestId = nextRequestId();
  const body = { model, messages: [{ role: 'user' as const, content: 'Answer as the support bot.' }] };
  const options = { headers: { 'x-request-id': requestId } };
  let costHeader: string | null = null;
  if (stream) {
    for await (const _chunk of await client().chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, options)) {
      // Read to the end, as a client does.
    }
  } else {
    costHeader = (await client().chat.completions.create(body, options).withResponse()).response.headers.get('x-keyway-cost');
  }
  return { row: await rowOf(gateway(), requestId), costHeader };
}

describe('an OpenAI fine-tune', () => {
  test("is priced by the table's ft:<base model> rates, streamed or not", async () => {
    const rates = price('ft:gpt-4o-mini-2024-07-18');
    for (const stream of [false, true]) {
      const { row, costHeader } = await tuned(PRICED_TUNE, stream);
      expect(row.model).toBe(PRICED_TUNE);
      const expected = row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token;
      expect({ stream, cost: row.costUsd }).toEqual({ stream, cost: expect.closeTo(expected, 12) });
      if (!stream) expect(Number(costHeader)).toBeCloseTo(expected, 12);
    }
  });

  test('of a base the table has no ft: entry for is booked unpriced', async () => {
    const { row, costHeader } = await tuned(UNKNOWN_BASE_TUNE, false);
    expect(row.costUsd).toBeNull();
    expect(costHeader).toBeNull();
  });
});
