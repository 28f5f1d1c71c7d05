// Conformance of /v1/responses streams to the documented event sequence, for every provider: text,
// tool calls, a cut answer and a failure after the first byte (checked by event-sequence.ts).

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { useClientWorld } from '../clients/client-fixtures.ts';
import { call } from '../helpers/gateway.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

const world = useClientWorld();

const TOOLS = [
  { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { type: 'function', name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
];

async function stream(body: Record<string, unknown>) {
  const response = await call(world().gateway, 'POST', '/v1/responses', { ...body, stream: true }, { key: world().gateway.defaultAdminKey });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  return checkResponsesStream(parseResponsesSse(await response.text()));
}

describe.each(PROVIDER_DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model, descriptor.tools] as const))(
  '%s (%s)',
  (provider, model, hasTools) => {
    test('a text answer: created, in_progress, one message item, completed with usage', async () => {
      const checked = await stream({ model, input: 'Check the sequence' });
      expect(checked.terminal).toBe('response.completed');
      expect(checked.text).toBe('Echo: Check the sequence');
      expect(checked.items.map((item) => item.type)).toEqual(['message']);
      const usage = checked.response.usage as { input_tokens: number; output_tokens: number; total_tokens: number };
      expect(usage.input_tokens).toBeGreaterThan(0);
      expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    });

    test.if(hasTools)('tool calls: one function_call item each, arguments streamed then done', async () => {
      const checked = await stream({ model, tools: TOOLS, input: 'Please call all tools for Paris' });
      const calls = checked.items.filter((item) => item.type === 'function_call');
      expect(calls.map((item) => [item.name, JSON.parse(String(item.arguments))])).toEqual([
        ['get_weather', { city: 'sample' }],
        ['get_time', { zone: 'sample' }],
      ]);
      expect(calls.every((item) => item.status === 'completed')).toBe(true);
    });

    test('a cut answer ends with response.incomplete (max_output_tokens)', async () => {
      const checked = await stream({
        model,
        max_output_tokens: 16,
        input: 'Say something long enough to be cut short, then keep going for a good while longer than sixteen tokens',
      });
      expect(checked.terminal).toBe('response.incomplete');
      expect(checked.response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
      // The message the model stopped in is incomplete, as OpenAI marks it, in its done event and in the response (QA17).
      expect(checked.items.map((item) => [item.type, item.status])).toEqual([['message', 'incomplete']]);
      expect((checked.response.output as Array<{ status?: string }>).map((item) => item.status)).toEqual(['incomplete']);
    });

    test('a cut answer not streamed: its message is incomplete too', async () => {
      const answer = await call(
        world().gateway,
        'POST',
        '/v1/responses',
        { model, max_output_tokens: 16, input: 'Say something long enough to be cut short, then keep going for a good while longer than sixteen tokens' },
        { key: world().gateway.defaultAdminKey },
      );
      const response = (await answer.json()) as { status: string; output: Array<{ type: string; status?: string }> };
      expect(response.status).toBe('incomplete');
      expect(response.output.map((item) => [item.type, item.status])).toEqual([['message', 'incomplete']]);
    });

    test('a failure after the first byte ends with response.failed and an error event', async () => {
      // OpenAI's own Responses stream counts its message's item and part starts among its chunks: they
      // carry nothing and are held (the opening hold), so the failure comes after one delta there.
      world()
        .simulator(provider)
        .inject({ kind: 'mid_stream_error', afterChunks: provider === 'openai' ? 3 : 2 });
      const answer = await call(
        world().gateway,
        'POST',
        '/v1/responses',
        { model, input: 'This stream will break somewhere in the middle of its answer', stream: true },
        { key: world().gateway.defaultAdminKey },
      );
      const events = parseResponsesSse(await answer.text());
      const checked = checkResponsesStream(events);
      expect(checked.terminal).toBe('response.failed');
      expect(checked.response.status).toBe('failed');
      expect(typeof (checked.response.error as { code?: unknown }).code).toBe('string');
      // The message the failure cut short was opened and is never done, as in OpenAI's own streams (QA17):
      // no done events for it, and it is not in the failed response's output.
      const types = events.map((event) => String(event.data.type));
      expect(types.filter((type) => type === 'response.output_item.added')).toHaveLength(1);
      expect(types.filter((type) => type.endsWith('.done'))).toEqual([]);
      expect(checked.response.output).toEqual([]);
      // Nothing is kept, and the response says so; its usage is null, as OpenAI's, not zeros beside a billed row.
      expect(checked.response.store).toBe(false);
      expect(checked.response.usage).toBeNull();
      const read = await call(world().gateway, 'GET', `/v1/responses/${String(checked.response.id)}`, undefined, { key: world().gateway.defaultAdminKey });
      expect(read.status).toBe(404);
      await read.arrayBuffer();
    });
  },
);

test('the checker refuses a stream out of order (a delta before its content part, a gap in sequence numbers)', async () => {
  const response = await call(
    world().gateway,
    'POST',
    '/v1/responses',
    { model: 'gpt-4o-mini', input: 'Order', stream: true },
    { key: world().gateway.defaultAdminKey },
  );
  const events = parseResponsesSse(await response.text());
  expect(checkResponsesStream(events).terminal).toBe('response.completed');
  const withoutPart = events
    .filter((event) => event.data.type !== 'response.content_part.added')
    .map((event, index) => ({ ...event, data: { ...event.data, sequence_number: index } }));
  expect(() => checkResponsesStream(withoutPart)).toThrow('response.content_part.added');
  expect(() => checkResponsesStream(events.slice(0, 1).concat(events.slice(2)))).toThrow('sequence_number');
});
