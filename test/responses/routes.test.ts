// /v1/responses over HTTP: what reaches the provider, what is refused, a refused WebSocket upgrade
// (the WebSocket mode itself: websocket.test.ts), the stored-response routes, and usage and cost
// identical to the same conversation on chat.

import { bookedRow as bookedRowOf } from '../accounting/booking.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { anthropicDescriptor, googleDescriptor, openAIDescriptor, type ProviderDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, expectSpecError, flushUsage } from '../helpers/gateway.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

let world: ClientWorld;
let key: string;

/**
 * An OpenAI-compatible server that Keyway reaches through Chat Completions only (its adapter has no
 * Responses API of its own): the OpenAI simulator under the `vllm` provider, to see the translation.
 */
const translatedDescriptor: ProviderDescriptor = {
  ...openAIDescriptor,
  name: 'vllm',
  environment: (simulator) => ({ KEYWAY_VLLM_BASE_URL: `${simulator.url}/v1` }),
};

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor, anthropicDescriptor, googleDescriptor, translatedDescriptor]);
  key = world.gateway.defaultAdminKey;
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

type Json = Record<string, unknown>;

function responses(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call(world.gateway, 'POST', '/v1/responses', body, { key, headers });
}

function lastUpstreamBody(provider: string): Json {
  return (world.simulator(provider).inferenceRequests().at(-1)?.body ?? {}) as Json;
}

describe('the translation reaching the provider', () => {
  test('instructions, input items, tools, tool_choice, text.format, reasoning.effort and max_output_tokens', async () => {
    const response = await responses({
      model: openAIDescriptor.model,
      provider: 'vllm',
      instructions: 'Be brief.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '18C' },
        { type: 'message', role: 'user', content: 'And now?' },
      ],
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } }],
      tool_choice: { type: 'function', name: 'get_weather' },
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: {} }, strict: true } },
      reasoning: { effort: 'low' },
      max_output_tokens: 50,
      metadata: { ticket: 'T-9' },
    });
    expect(response.status).toBe(200);
    const upstream = lastUpstreamBody('vllm');
    expect(world.simulator('vllm').inferenceRequests().at(-1)?.path).toBe('/v1/chat/completions');
    expect(upstream.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '18C' },
      { role: 'user', content: 'And now?' },
    ]);
    expect(upstream.tools).toEqual([{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }]);
    expect(upstream.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(upstream.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'answer', schema: { type: 'object', properties: {} }, strict: true },
    });
    expect(upstream.reasoning_effort).toBe('low');
    expect(upstream.max_completion_tokens).toBe(50);
    // Keyway-side only: metadata is echoed to the client, never sent upstream.
    expect(upstream.metadata).toBeUndefined();
    expect(upstream.input).toBeUndefined();
    expect(((await response.json()) as Json).metadata).toEqual({ ticket: 'T-9' });
  });

  test('an image part reaches Anthropic as an image block', async () => {
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const response = await responses({
      model: anthropicDescriptor.model,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Look' },
            { type: 'input_image', image_url: png },
          ],
        },
      ],
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { output: Array<{ content?: Array<{ text: string }> }> }).output[0]?.content?.[0]?.text).toBe('Echo: Look [images: 1]');
  });
});

test('an unknown previous_response_id: 404 previous_response_not_found naming the field, as OpenAI answers, and no upstream call', async () => {
  const before = world.simulator('anthropic').inferenceRequests().length;
  const response = await responses({ model: anthropicDescriptor.model, input: 'Hi', previous_response_id: 'resp_123' });
  expect(response.status).toBe(404);
  const error = ((await response.json()) as { error: Json }).error;
  expect(error).toMatchObject({ type: 'invalid_request_error', code: 'previous_response_not_found', param: 'previous_response_id' });
  expect(world.simulator('anthropic').inferenceRequests().length).toBe(before);
});

/** A user turn, a function call with these arguments, and its output. */
function calledWith(argumentsValue: unknown): Json[] {
  return [
    { role: 'user', content: 'Weather in Paris?' },
    { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: argumentsValue },
    { type: 'function_call_output', call_id: 'call_1', output: '21C' },
  ];
}

describe('refusals: a 400 naming the field, no upstream call', () => {
  const cases: Array<[string, Json, string]> = [
    ['a hosted tool', { input: 'Hi', tools: [{ type: 'web_search_preview' }] }, 'tools[0].type'],
    ['an item_reference to nothing', { input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0]'],
    ['no input', { instructions: 'Only instructions' }, 'input'],
    // Input that is only items of an unknown type names the first of them, not a missing input (QA17).
    ['input of an unknown item type only', { input: [{ type: 'x' }] }, 'input[0].type'],
    ['instructions and an unknown item type', { instructions: 'Be brief.', input: [{ type: 'x' }, { type: 'y' }] }, 'input[0].type'],
    ['an uploaded image', { input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }] }, 'input[0].content[0]'],
    ['background', { input: 'Hi', background: true }, 'background'],
    ['conversation', { input: 'Hi', conversation: 'conv_1' }, 'conversation'],
    // QA20: these were taken. Arguments not a string reached Anthropic as `input: {}` (the call's
    // arguments lost); a `stream` not a boolean answered JSON to a client that reads events; a
    // json_schema format without a schema object was downgraded to json_object with a warning.
    ['function_call arguments as an object', { input: [...calledWith({ city: 'Paris' })] }, 'input[1].arguments'],
    ['function_call without arguments', { input: [...calledWith(undefined)] }, 'input[1].arguments'],
    ['stream that is not a boolean', { input: 'Hi', stream: 'true' }, 'stream'],
    [
      'a json_schema format whose schema is not an object',
      { input: 'Hi', text: { format: { type: 'json_schema', name: 'x', schema: 5 } } },
      'text.format.schema',
    ],
    ['a json_schema format without a schema', { input: 'Hi', text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema'],
  ];
  // On a translated route (Anthropic); hosted tools and uploaded files reach OpenAI's own API (native.test.ts).
  test.each(cases)('%s', async (_name, body, param) => {
    const before = world.simulator('anthropic').inferenceRequests().length;
    const response = await responses({ model: anthropicDescriptor.model, ...body });
    expect(response.status).toBe(400);
    const error = ((await response.json()) as { error: { param: string; message: string; type: string } }).error;
    expect(error.param).toBe(param);
    expect(error.type).toBe('invalid_request_error');
    expect(world.simulator('anthropic').inferenceRequests().length).toBe(before);
  });

  test('conversation: the message gives both ways the documentation gives (QA14 docs N4), on OpenAI too', async () => {
    for (const model of [anthropicDescriptor.model, openAIDescriptor.model]) {
      const body = await expectSpecError(await responses({ model, input: 'Hi', conversation: 'conv_1' }), 400, 'unsupported_feature');
      expect(body.error.param).toBe('conversation');
      expect(body.error.message).toBe(
        "OpenAI's Conversations API is not available through Keyway; send the whole conversation in input, or continue a stored response with previous_response_id.",
      );
    }
    expect(world.simulator('openai').inferenceRequests()).toHaveLength(0);
  });

  test("input of an unknown item type is refused naming its type, on OpenAI's own API too", async () => {
    for (const model of [anthropicDescriptor.model, openAIDescriptor.model]) {
      const body = await expectSpecError(await responses({ model, input: [{ type: 'x' }] }), 400, 'unsupported_feature');
      expect(body.error.param).toBe('input[0].type');
      expect(body.error.message).toContain("Input items of type 'x'");
    }
  });

  test('a refusal of a field the translation renamed names the Responses field the client sent (QA20)', async () => {
    const response = await responses({ model: anthropicDescriptor.model, input: 'Hi', reasoning: { effort: 'extreme' } });
    const error = ((await response.json()) as { error: { param: string; message: string } }).error;
    expect({ status: response.status, param: error.param }).toEqual({ status: 400, param: 'reasoning.effort' });
    expect(error.message).toContain("'reasoning.effort'");
    expect(error.message).not.toContain('reasoning_effort');
  });

  test('a body that is not JSON is a spec-shaped 400', async () => {
    await expectSpecError(await responses('{"model":'), 400, 'invalid_json');
  });
});

describe('the WebSocket transport and stored responses', () => {
  test('without a key the upgrade is refused first as unauthenticated', async () => {
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key: '', headers: { upgrade: 'websocket', connection: 'Upgrade' } });
    await expectSpecError(response, 401, 'invalid_api_key');
  });

  test('a plain GET /v1/responses without a key is 405 as well: a wrong method needs no key, as on every other path', async () => {
    for (const method of ['GET', 'HEAD']) {
      const response = await call(world.gateway, method, '/v1/responses', undefined, { key: '' });
      expect({ method, status: response.status, allow: response.headers.get('allow') }).toEqual({ method, status: 405, allow: 'POST' });
      if (method === 'GET') await expectSpecError(response, 405, 'method_not_allowed');
    }
    // The same as a wrong method on any path, which the core answers from the registered routes.
    const chat = await call(world.gateway, 'GET', '/v1/chat/completions', undefined, { key: '' });
    await expectSpecError(chat, 405, 'method_not_allowed');
  });

  test('a plain GET /v1/responses is 405, and Allow says POST', async () => {
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key });
    expect(response.headers.get('allow')).toBe('POST');
    await expectSpecError(response, 405, 'method_not_allowed');
    // A wrong method on the path is answered the same way, from the registered routes.
    const put = await call(world.gateway, 'PUT', '/v1/responses', {}, { key });
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    await expectSpecError(put, 405, 'method_not_allowed');
  });

  test('GET and DELETE of an unknown response id answer 404', async () => {
    for (const method of ['GET', 'DELETE']) {
      const body = await expectSpecError(await call(world.gateway, method, '/v1/responses/resp_abc', undefined, { key }), 404, 'not_found');
      expect(body.error.message).toContain('resp_abc');
    }
  });
});

describe('usage and cost identical to the same conversation on /v1/chat/completions', () => {
  const bookedRow = (response: Response) => bookedRowOf(world.gateway, response);

  test.each(
    [openAIDescriptor, anthropicDescriptor, googleDescriptor].flatMap((descriptor) =>
      [false, true].map((stream) => [descriptor.name, descriptor.model, stream] as const),
    ),
  )('%s (%s), streamed: %p', async (_provider, model, stream) => {
    const system = 'You answer in one word.';
    const text = 'What colour is the sky on a clear day?';
    const chat = await call(
      world.gateway,
      'POST',
      '/v1/chat/completions',
      {
        model,
        stream,
        max_tokens: 100,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: text },
        ],
      },
      { key },
    );
    const viaResponses = await responses({ model, stream, max_output_tokens: 100, instructions: system, input: text });
    const [chatRow, responsesRow] = [await bookedRow(chat), await bookedRow(viaResponses)];
    expect(responsesRow).toEqual(chatRow);
    expect(chatRow.inputTokens as number).toBeGreaterThan(0);
  });

  test('the usage in the answer is the booked usage', async () => {
    const response = await responses({ model: anthropicDescriptor.model, stream: true, input: 'Count me' });
    const requestId = response.headers.get('x-request-id');
    const checked = checkResponsesStream(parseResponsesSse(await response.text()));
    await flushUsage(world.gateway);
    const row = (await world.gateway.runtime.store.listUsage('default')).find((entry) => entry.requestId === requestId);
    expect(checked.response.usage).toMatchObject({ input_tokens: row?.inputTokens, output_tokens: row?.outputTokens });
  });
});
