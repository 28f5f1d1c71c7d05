// Anthropic's own aliases (`claude-3-7-sonnet-latest`, `claude-sonnet-4-0`) are names the price table
// does not list, answered by dated models it does. The row books the dated model the provider named and,
// since the alias has no price of its own, is priced by that model's: it was booked unpriced, its spend
// missing from every cost figure, although Anthropic said exactly which priced model served it (QA20).
// A routed name that is priced still prices a served name outside its family (costs.md).

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import type { UsageRecord } from '../../core/spec/store.ts';
import { OPERATOR_KEY, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { keyedGatewayPerFile, nextRequestId, price, rowOf } from './booking.ts';

const KEYS = { anthropic: 'sk-ant-api03-ServedAliasPriceKey000000001' };

const gatewayOfFile = keyedGatewayPerFile(() => {
  const anthropic = startAnthropicSimulator({ apiKeys: [KEYS.anthropic] });
  return { simulators: [anthropic], options: { env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url }, probes: false, logLevel: 'info' } };
}, KEYS);
let gateway: TestGateway;
let client: Anthropic;
beforeAll(() => {
  gateway = gatewayOfFile();
  client = new Anthropic({ baseURL: gateway.url, apiKey: OPERATOR_KEY, maxRetries: 0 });
});

async function asked(model: string, stream: boolean): Promise<UsageRecord> {
  const requestId = nextRequestId();
  const body = { model: `anthropic/${model}`, max_tokens: 64, messages: [{ role: 'user' as const, content: `Hello from ${model}` }] };
  const options = { headers: { 'x-request-id': requestId } };
  if (stream) await client.messages.stream(body, options).finalMessage();
  else await client.messages.create(body, options);
  return rowOf(gateway, requestId);
}

describe('an alias the table does not price, served by a dated model it does', () => {
  test('the row is priced by the served model, streamed or not', async () => {
    for (const [alias, dated] of [
      ['claude-3-7-sonnet-latest', 'claude-3-7-sonnet-20250219'],
      ['claude-sonnet-4-0', 'claude-sonnet-4-20250514'],
    ] as const) {
      const listed = price(dated);
      for (const stream of [false, true]) {
        const row = await asked(alias, stream);
        expect({ alias, stream, model: row.model }).toEqual({ alias, stream, model: dated });
        const expected = row.inputTokens * listed.input_cost_per_token + row.outputTokens * listed.output_cost_per_token;
        expect({ alias, stream, cost: row.costUsd }).toEqual({ alias, stream, cost: expect.closeTo(expected, 12) });
      }
    }
  });
});
