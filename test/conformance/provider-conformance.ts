// The provider conformance suite: the same scenarios, over HTTP through the gateway, for every
// provider plugin against its simulator. A provider's descriptor (provider-descriptors.ts) says how
// to reach it and which scenarios apply; what is specific to one provider stays in test/providers/.

import { describe, expect, test } from 'bun:test';
import { describeFailureScenarios } from './conformance-failures.ts';
import {
  assistantTurn,
  chatBody,
  firstChoice,
  nativeBody,
  postChat,
  streamChat,
  toolCallsOf,
  useHarness,
  type AssembledToolCall,
  type Harness,
  type Message,
} from './conformance-harness.ts';
import { describeRequestShapeScenarios } from './conformance-requests.ts';
import { describeUsageScenarios } from './conformance-usage.ts';
import type { JsonObject } from './native-answers.ts';
import type { ProviderDescriptor } from './provider-descriptors.ts';

/** Two tools with required properties of different types, so argument filling is visible. */
export const CONFORMANCE_TOOLS: JsonObject[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'Local time in a zone',
      parameters: { type: 'object', properties: { zone: { type: 'string' }, hour24: { type: 'boolean' } }, required: ['zone', 'hour24'] },
    },
  },
];

/** What the simulators fill required properties with ("sample" for strings, true for booleans). */
const EXPECTED_ARGUMENTS: Record<string, unknown> = { get_weather: { city: 'sample' }, get_time: { zone: 'sample', hour24: true } };
const TOOL_RESULTS: Record<string, string> = { get_weather: '21C and sunny', get_time: '10:00' };

/** A 1×1 PNG: the Anthropic simulator checks that the bytes match the declared media type. */
const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const PNG_DATA_URL = `data:image/png;base64,${PNG_BASE64}`;
const PNG_HTTP_URL = 'https://keyway.example/images/cat.png';

const ECHO_SCHEMA = { type: 'object', properties: { echo: { type: 'string' } }, required: ['echo'] };

export function describeProviderConformance(descriptor: ProviderDescriptor): void {
  describe(`provider conformance: ${descriptor.name} (${descriptor.model})`, () => {
    const harness = useHarness(descriptor);
    describeTextScenarios(harness);
    if (descriptor.tools) describeToolScenarios(harness);
    describeImageScenarios(harness, descriptor);
    describeJsonScenarios(harness);
    describeRequestShapeScenarios(harness, descriptor);
    describeUsageScenarios(harness, descriptor);
    // Last: the auth failure takes the provider key out of rotation for the rest of the block.
    describeFailureScenarios(harness);
  });
}

function userTurn(text: string): Message {
  return { role: 'user', content: text };
}

function describeTextScenarios(harness: () => Harness): void {
  test('plain text: an OpenAI chat.completion with the echo, stop and the provider headers', async () => {
    const { descriptor } = harness();
    const { response, body } = await postChat(harness(), chatBody(harness(), [userTurn('Hello from the conformance suite')]));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe(descriptor.name);
    expect(response.headers.get('x-model-used')).toBe(descriptor.model);
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe(descriptor.model);
    const choice = firstChoice(body);
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe('Echo: Hello from the conformance suite');
    expect(choice.finish_reason).toBe('stop');
  });

  test('plain text: a multi-turn conversation with a system message answers the last user turn', async () => {
    const messages: Message[] = [
      { role: 'system', content: 'You are terse.' },
      userTurn('First question'),
      { role: 'assistant', content: 'First answer' },
      userTurn('Second question'),
    ];
    const { response, body } = await postChat(harness(), chatBody(harness(), messages));
    expect(response.status).toBe(200);
    expect(firstChoice(body).message.content).toBe('Echo: Second question');
  });

  test('streamed text: chunks concatenate to the same text and the stream ends with [DONE]', async () => {
    const { descriptor } = harness();
    const messages = [userTurn('Stream this sentence back to me please')];
    const plain = await postChat(harness(), chatBody(harness(), messages));
    const streamed = await streamChat(harness(), chatBody(harness(), messages));
    expect(streamed.response.status).toBe(200);
    expect(streamed.response.headers.get('content-type')).toContain('text/event-stream');
    expect(streamed.response.headers.get('x-provider-used')).toBe(descriptor.name);
    expect(streamed.errors).toEqual([]);
    expect(streamed.text).toBe(firstChoice(plain.body).message.content as string);
    expect(streamed.chunks.length).toBeGreaterThan(2);
    expect(streamed.chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(streamed.firstDelta?.role).toBe('assistant');
    expect(streamed.finishReasons).toEqual(['stop']);
    expect(streamed.done).toBe(true);
  });
}

function parsedArguments(toolCalls: AssembledToolCall[]): Array<{ name: string; arguments: unknown }> {
  return toolCalls.map((toolCall) => ({ name: toolCall.name, arguments: JSON.parse(toolCall.arguments) as unknown }));
}

function expectedCalls(names: string[]): Array<{ name: string; arguments: unknown }> {
  return names.map((name) => ({ name, arguments: EXPECTED_ARGUMENTS[name] }));
}

function toolResultTurns(toolCalls: AssembledToolCall[]): Message[] {
  return toolCalls.map((toolCall) => ({ role: 'tool', tool_call_id: toolCall.id, content: TOOL_RESULTS[toolCall.name] ?? '' }));
}

/** What the native request must use to tie each result to its call: the ids, or (Gemini) the names. */
function expectedLinks(harness: Harness, toolCalls: AssembledToolCall[]): string[] {
  return toolCalls.map((toolCall) => (harness.descriptor.toolResultLinkedBy === 'name' ? toolCall.name : toolCall.id));
}

function expectDistinctIds(toolCalls: AssembledToolCall[]): void {
  for (const toolCall of toolCalls) expect(toolCall.id).toMatch(/^[A-Za-z0-9_-]+$/);
  expect(new Set(toolCalls.map((toolCall) => toolCall.id)).size).toBe(toolCalls.length);
}

function describeToolScenarios(harness: () => Harness): void {
  const ask = (text: string): Message[] => [userTurn(text)];

  test('tools: a tool call, then its result, with the id round-tripping', async () => {
    const question = ask('What is the weather in Paris?');
    const first = await postChat(harness(), chatBody(harness(), question, { tools: CONFORMANCE_TOOLS }));
    expect(first.response.status).toBe(200);
    const choice = firstChoice(first.body);
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const toolCalls = toolCallsOf(choice.message);
    expect(parsedArguments(toolCalls)).toEqual(expectedCalls(['get_weather']));
    expectDistinctIds(toolCalls);

    const second = await postChat(
      harness(),
      chatBody(harness(), [...question, assistantTurn(toolCalls), ...toolResultTurns(toolCalls)], { tools: CONFORMANCE_TOOLS }),
    );
    expect(second.response.status).toBe(200);
    expect(firstChoice(second.body).message.content).toBe('Tool results: 21C and sunny');
    expect(firstChoice(second.body).finish_reason).toBe('stop');
    expect(harness().descriptor.toolResultLinks?.(nativeBody(harness()))).toEqual(expectedLinks(harness(), toolCalls));
  });

  test('tools: parallel calls ("call all tools") and their results, in order', async () => {
    const question = ask('Please call all tools now');
    const first = await postChat(harness(), chatBody(harness(), question, { tools: CONFORMANCE_TOOLS }));
    const toolCalls = toolCallsOf(firstChoice(first.body).message);
    expect(firstChoice(first.body).finish_reason).toBe('tool_calls');
    expect(parsedArguments(toolCalls)).toEqual(expectedCalls(['get_weather', 'get_time']));
    expectDistinctIds(toolCalls);

    const second = await postChat(
      harness(),
      chatBody(harness(), [...question, assistantTurn(toolCalls), ...toolResultTurns(toolCalls)], { tools: CONFORMANCE_TOOLS }),
    );
    expect(second.response.status).toBe(200);
    expect(firstChoice(second.body).message.content).toBe('Tool results: 21C and sunny | 10:00');
    expect(harness().descriptor.toolResultLinks?.(nativeBody(harness()))).toEqual(expectedLinks(harness(), toolCalls));
  });

  test('tools: streamed tool calls assemble by index and round-trip, streamed too', async () => {
    const question = ask('Please call all tools now');
    const first = await streamChat(harness(), chatBody(harness(), question, { tools: CONFORMANCE_TOOLS }));
    expect(first.errors).toEqual([]);
    expect(first.done).toBe(true);
    expect(first.finishReasons).toEqual(['tool_calls']);
    expect(parsedArguments(first.toolCalls)).toEqual(expectedCalls(['get_weather', 'get_time']));
    expectDistinctIds(first.toolCalls);

    const second = await streamChat(
      harness(),
      chatBody(harness(), [...question, assistantTurn(first.toolCalls), ...toolResultTurns(first.toolCalls)], { tools: CONFORMANCE_TOOLS }),
    );
    expect(second.errors).toEqual([]);
    expect(second.text).toBe('Tool results: 21C and sunny | 10:00');
    expect(second.finishReasons).toEqual(['stop']);
    expect(harness().descriptor.toolResultLinks?.(nativeBody(harness()))).toEqual(expectedLinks(harness(), first.toolCalls));
  });
}

function imageTurn(text: string, url: string): Message {
  return {
    role: 'user',
    content: [
      { type: 'text', text },
      { type: 'image_url', image_url: { url } },
    ],
  };
}

function describeImageScenarios(harness: () => Harness, descriptor: ProviderDescriptor): void {
  test('images: a base64 data URL reaches the provider in its native image shape', async () => {
    const { response, body } = await postChat(harness(), chatBody(harness(), [imageTurn('What is in this picture?', PNG_DATA_URL)]));
    expect(response.status).toBe(200);
    expect(firstChoice(body).message.content).toBe('Echo: What is in this picture? [images: 1]');
    const { descriptor } = harness();
    expect(descriptor.nativeImage(nativeBody(harness()))).toEqual(descriptor.expectedNativeImage(PNG_DATA_URL, 'image/png') as never);
  });

  test.skipIf(!descriptor.httpImages)('images: an http URL reaches the provider where it takes one', async () => {
    const { response, body } = await postChat(harness(), chatBody(harness(), [imageTurn('And this one?', PNG_HTTP_URL)]));
    expect(response.status).toBe(200);
    expect(firstChoice(body).message.content).toBe('Echo: And this one? [images: 1]');
    expect(descriptor.nativeImage(nativeBody(harness()))).toEqual(descriptor.expectedNativeImage(PNG_HTTP_URL, 'image/png') as never);
  });

  test('images: streamed, the image still counts', async () => {
    const streamed = await streamChat(harness(), chatBody(harness(), [imageTurn('Streamed picture', PNG_DATA_URL)]));
    expect(streamed.errors).toEqual([]);
    expect(streamed.text).toBe('Echo: Streamed picture [images: 1]');
  });
}

function describeJsonScenarios(harness: () => Harness): void {
  const jsonSchemaFormat = { type: 'json_schema', json_schema: { name: 'echo', schema: ECHO_SCHEMA } };

  test('JSON mode: response_format json_schema answers JSON that fits the schema', async () => {
    const { response, body } = await postChat(harness(), chatBody(harness(), [userTurn('Answer in JSON please')], { response_format: jsonSchemaFormat }));
    expect(response.status).toBe(200);
    expect(JSON.parse(String(firstChoice(body).message.content))).toEqual({ echo: 'Answer in JSON please' });
  });

  test('JSON mode: json_schema streamed', async () => {
    const streamed = await streamChat(harness(), chatBody(harness(), [userTurn('Stream JSON please')], { response_format: jsonSchemaFormat }));
    expect(streamed.errors).toEqual([]);
    expect(JSON.parse(streamed.text)).toEqual({ echo: 'Stream JSON please' });
  });

  test('JSON mode: response_format json_object is honoured, or a warning says how it was not', async () => {
    const { descriptor } = harness();
    const { response, body } = await postChat(
      harness(),
      chatBody(harness(), [userTurn('Reply with a json object')], { response_format: { type: 'json_object' } }),
    );
    expect(response.status).toBe(200);
    const warnings = response.headers.get('x-keyway-warnings');
    if (descriptor.jsonObject === 'emulated') {
      expect(warnings ?? '').toContain('json_object');
      return;
    }
    expect(JSON.parse(String(firstChoice(body).message.content))).toEqual({ echo: 'Reply with a json object' });
    if (descriptor.jsonObject === 'translated') expect(warnings ?? '').toContain('json_object');
    else expect(warnings).toBeNull();
  });
}
