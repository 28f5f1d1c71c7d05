// Request shapes any OpenAI client may send, which each provider must take: conversations that do
// not follow the provider's own turn rules, tool_choice, stop sequences, reasoning_effort and the
// optional fields SDKs fill in. What a provider cannot honour may be dropped, with a readable warning.

import { expect, test } from 'bun:test';
import { chatBody, firstChoice, postChat, streamChat, type Harness, type Message } from './conformance-harness.ts';
import type { JsonObject } from './native-answers.ts';
import type { ProviderDescriptor } from './provider-descriptors.ts';

const TOOLS: JsonObject[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } },
];

function toolNames(body: JsonObject): string[] {
  const calls = (firstChoice(body).message.tool_calls ?? []) as Array<{ function: { name: string } }>;
  return calls.map((toolCall) => toolCall.function.name);
}

/** X-Keyway-Warnings must read as written: the header is ASCII, and a '?' there is a mangled character. */
function expectReadableWarnings(response: Response): void {
  const warnings = response.headers.get('x-keyway-warnings');
  if (warnings !== null) expect(warnings).not.toContain('?');
}

export function describeRequestShapeScenarios(harness: () => Harness, descriptor: ProviderDescriptor): void {
  test('requests: a conversation that opens with an assistant greeting', async () => {
    const messages: Message[] = [
      { role: 'assistant', content: 'Hello! How can I help you today?' },
      { role: 'user', content: 'Tell me about gateways' },
    ];
    const { response, body } = await postChat(harness(), chatBody(harness(), messages));
    expect(response.status).toBe(200);
    expect(firstChoice(body).message.content).toBe('Echo: Tell me about gateways');
  });

  test('requests: developer messages and a system message in the middle of the conversation', async () => {
    const messages: Message[] = [
      { role: 'developer', content: 'Answer briefly.' },
      { role: 'user', content: 'First' },
      { role: 'assistant', content: 'Noted.' },
      { role: 'system', content: 'Stay on topic.' },
      { role: 'user', content: 'Second' },
    ];
    const { response, body } = await postChat(harness(), chatBody(harness(), messages));
    expect(response.status).toBe(200);
    expect(String(firstChoice(body).message.content)).toMatch(/^Echo: (.*\n)?Second$/s);
  });

  test('requests: stop sequences cut the answer before the sequence, streamed or not', async () => {
    const messages: Message[] = [{ role: 'user', content: 'Hello there, general' }];
    const { body } = await postChat(harness(), chatBody(harness(), messages, { stop: ['there'] }));
    expect(firstChoice(body).message.content).toBe('Echo: Hello ');
    expect(firstChoice(body).finish_reason).toBe('stop');
    const streamed = await streamChat(harness(), chatBody(harness(), messages, { stop: 'there' }));
    expect(streamed.text).toBe('Echo: Hello ');
    expect(streamed.finishReasons).toEqual(['stop']);
  });

  test.skipIf(!descriptor.tools)('requests: tool_choice none, required and a named function', async () => {
    const ask: Message[] = [{ role: 'user', content: 'What now?' }];
    const none = await postChat(harness(), chatBody(harness(), ask, { tools: TOOLS, tool_choice: 'none' }));
    expect(firstChoice(none.body).message.content).toBe('Echo: What now?');
    const required = await postChat(harness(), chatBody(harness(), ask, { tools: TOOLS, tool_choice: 'required' }));
    expect(toolNames(required.body)).toEqual(['get_weather']);
    const named = await postChat(harness(), chatBody(harness(), ask, { tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_time' } } }));
    expect(toolNames(named.body)).toEqual(['get_time']);
    expect(firstChoice(named.body).finish_reason).toBe('tool_calls');
  });

  test('requests: reasoning_effort is honoured, or dropped with a warning, never a refusal', async () => {
    const { response, body } = await postChat(harness(), chatBody(harness(), [{ role: 'user', content: 'Think a little' }], { reasoning_effort: 'low' }));
    expect({ status: response.status, error: body.error }).toEqual({ status: 200, error: undefined });
    expect(firstChoice(body).message.content).toBe('Echo: Think a little');
  });

  test('requests: the optional fields OpenAI SDKs fill in are taken, or dropped with a warning', async () => {
    const optional = {
      temperature: 0.7,
      top_p: 1,
      n: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
      seed: 7,
      user: 'user-1234',
      store: false,
      logprobs: false,
      max_completion_tokens: 200,
      metadata: { team: 'conformance' },
    };
    const { response, body } = await postChat(harness(), chatBody(harness(), [{ role: 'user', content: 'All the knobs' }], optional));
    expect({ status: response.status, error: body.error }).toEqual({ status: 200, error: undefined });
    expect(firstChoice(body).message.content).toBe('Echo: All the knobs');
    expectReadableWarnings(response);
  });

  test('requests: sampling values outside a provider range are adjusted, with a readable warning', async () => {
    const { response, body } = await postChat(harness(), chatBody(harness(), [{ role: 'user', content: 'Hot sampling' }], { temperature: 1.5 }));
    expect({ status: response.status, error: body.error }).toEqual({ status: 200, error: undefined });
    expect(firstChoice(body).message.content).toBe('Echo: Hot sampling');
    expectReadableWarnings(response);
  });
}
