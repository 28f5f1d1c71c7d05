// The official `openai` client's `responses.create` and `responses.stream` against Keyway's
// /v1/responses for a model of each of the five providers: only the base URL and the key change.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { FunctionTool, Response, ResponseInputItem } from 'openai/resources/responses/responses';
import { PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { rejectionOf, useClientWorld } from '../clients/client-fixtures.ts';

const world = useClientWorld();
let client: OpenAI;

beforeAll(() => {
  client = new OpenAI({ baseURL: `${world().gateway.url}/v1`, apiKey: world().gateway.defaultAdminKey, maxRetries: 0 });
});

const tools: FunctionTool[] = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  },
  {
    type: 'function',
    name: 'get_time',
    description: 'Time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
    strict: false,
  },
];

const results: Record<string, string> = { get_weather: '18C', get_time: '09:30' };

function functionCalls(response: Response): Array<{ call_id: string; name: string; arguments: unknown }> {
  return response.output.flatMap((item) =>
    item.type === 'function_call' ? [{ call_id: item.call_id, name: item.name, arguments: JSON.parse(item.arguments) }] : [],
  );
}

/** The next turn as Codex builds it: the whole conversation again, with the calls' outputs. */
function followUp(question: ResponseInputItem[], response: Response): ResponseInputItem[] {
  const outputs: ResponseInputItem[] = functionCalls(response).map((call) => ({
    type: 'function_call_output',
    call_id: call.call_id,
    output: results[call.name] ?? '',
  }));
  return [...question, ...(response.output as ResponseInputItem[]), ...outputs];
}

describe.each(PROVIDER_DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model, descriptor.tools] as const))(
  'openai responses → %s (%s)',
  (provider, model, hasTools) => {
    test('responses.create: text, usage and the provider headers', async () => {
      const { data: response, response: http } = await client.responses
        .create({ model, instructions: 'Be brief.', input: 'Hello from the Responses API', metadata: { ticket: 'T-1' } })
        .withResponse();
      expect(response.object).toBe('response');
      expect(response.status).toBe('completed');
      expect(response.output_text).toBe('Echo: Hello from the Responses API');
      expect(response.metadata).toEqual({ ticket: 'T-1' });
      expect(response.instructions).toBe('Be brief.');
      expect(response.usage?.input_tokens).toBeGreaterThan(0);
      expect(response.usage?.output_tokens).toBeGreaterThan(0);
      expect(response.usage?.total_tokens).toBe((response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0));
      expect(typeof response.usage?.input_tokens_details.cached_tokens).toBe('number');
      expect(typeof response.usage?.output_tokens_details.reasoning_tokens).toBe('number');
      expect(http.headers.get('x-provider-used')).toBe(provider);
    });

    test('responses.stream: the events assemble into the same text and usage', async () => {
      const stream = client.responses.stream({ model, input: [{ role: 'user', content: [{ type: 'input_text', text: 'Stream through the Responses API' }] }] });
      let text = '';
      const types: string[] = [];
      stream.on('response.output_text.delta', (event) => {
        text += event.delta;
      });
      stream.on('event', (event) => void types.push(event.type));
      const final = await stream.finalResponse();
      expect(text).toBe('Echo: Stream through the Responses API');
      expect(final.output_text).toBe(text);
      expect(final.status).toBe('completed');
      expect(final.usage?.output_tokens).toBeGreaterThan(0);
      expect(types[0]).toBe('response.created');
      expect(types.at(-1)).toBe('response.completed');
    });

    test('max_output_tokens cuts the answer: status incomplete, streamed or not', async () => {
      const request = {
        model,
        max_output_tokens: 16,
        input: 'Say something long enough to be cut short, then keep going for a good while longer than sixteen tokens',
      };
      const response = await client.responses.create(request);
      expect(response.status).toBe('incomplete');
      expect(response.incomplete_details?.reason).toBe('max_output_tokens');
      const final = await client.responses.stream(request).finalResponse();
      expect(final.status).toBe('incomplete');
      expect(final.output_text).toBe(response.output_text);
    });

    test('upstream failures surface as the openai error classes', async () => {
      world().simulator(provider).inject({ kind: 'rate_limit', retryAfterSeconds: 2 });
      const limited = await rejectionOf(client.responses.create({ model, input: 'x' }));
      expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    });

    test.if(hasTools)('a tool round trip, as Codex runs it (not streamed, then streamed)', async () => {
      const question: ResponseInputItem[] = [{ role: 'user', content: 'Please call all tools for Paris' }];
      const first = await client.responses.create({ model, tools, input: question });
      const calls = functionCalls(first);
      expect(calls.map((call) => ({ name: call.name, arguments: call.arguments }))).toEqual([
        { name: 'get_weather', arguments: { city: 'sample' } },
        { name: 'get_time', arguments: { zone: 'sample' } },
      ]);
      expect(new Set(calls.map((call) => call.call_id)).size).toBe(2);
      const second = await client.responses.stream({ model, tools, input: followUp(question, first) }).finalResponse();
      expect(second.output_text).toBe('Tool results: 18C | 09:30');

      const streamedFirst = await client.responses.stream({ model, tools, input: question }).finalResponse();
      expect(functionCalls(streamedFirst).map((call) => call.arguments)).toEqual([{ city: 'sample' }, { zone: 'sample' }]);
      const streamedSecond = await client.responses.create({ model, tools, input: followUp(question, streamedFirst) });
      expect(streamedSecond.output_text).toBe('Tool results: 18C | 09:30');
    });
  },
);

test('an unknown previous_response_id is the NotFoundError OpenAI itself answers (code previous_response_not_found), streamed or not', async () => {
  for (const descriptor of PROVIDER_DESCRIPTORS.slice(0, 2)) {
    const request = { model: descriptor.model, input: 'Go on', previous_response_id: 'resp_0123456789abcdef0123456789abcdef' };
    for (const refused of [await rejectionOf(client.responses.create(request)), await rejectionOf(client.responses.stream(request).finalResponse())]) {
      expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
      expect({
        code: (refused as InstanceType<typeof OpenAI.NotFoundError>).code,
        param: (refused as InstanceType<typeof OpenAI.NotFoundError>).param,
      }).toEqual({
        code: 'previous_response_not_found',
        param: 'previous_response_id',
      });
    }
  }
});
