// The official `@anthropic-ai/sdk` drives Keyway's /v1/messages routed to Google, Cohere and
// Perplexity (Anthropic and OpenAI are covered in test/gateway/messages-api.test.ts): an
// Anthropic-dialect application keeps working whichever provider serves it.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { cohereDescriptor, googleDescriptor, perplexityDescriptor } from '../conformance/provider-descriptors.ts';
import { rejectionOf, startClientWorld, type ClientWorld } from './client-fixtures.ts';

const DESCRIPTORS = [googleDescriptor, cohereDescriptor, perplexityDescriptor];
let world: ClientWorld;
let client: Anthropic;

beforeAll(async () => {
  world = await startClientWorld(DESCRIPTORS);
  client = new Anthropic({ baseURL: world.gateway.url, apiKey: world.gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

const tools: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { name: 'get_time', description: 'Time in a zone', input_schema: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
];

function textOf(message: Anthropic.Message): string {
  return message.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
}

describe.each(DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model] as const))('Anthropic SDK → %s (%s)', (provider, model) => {
  test('a message, with usage and the provider headers', async () => {
    const { data: message, response } = await client.messages
      .create({ model, max_tokens: 256, system: 'Be terse.', messages: [{ role: 'user', content: 'Hello from the Anthropic SDK' }] })
      .withResponse();
    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(textOf(message)).toBe('Echo: Hello from the Anthropic SDK');
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-provider-used')).toBe(provider);
  });

  test('a streamed message assembles into the same text and usage', async () => {
    const stream = client.messages.stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Stream through the Anthropic SDK' }] });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    expect(text).toBe('Echo: Stream through the Anthropic SDK');
    expect(textOf(final)).toBe(text);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  test('max_tokens cuts the answer with stop_reason max_tokens, streamed or not', async () => {
    const request = { model, max_tokens: 2, messages: [{ role: 'user' as const, content: 'Say something long enough to be cut short' }] };
    const message = await client.messages.create(request);
    expect(message.stop_reason).toBe('max_tokens');
    const final = await client.messages.stream(request).finalMessage();
    expect(final.stop_reason).toBe('max_tokens');
    expect(textOf(final)).toBe(textOf(message));
  });

  test('a stop sequence: Cohere names none, so the only one sent is named; Gemini and Perplexity report a plain stop', async () => {
    const request = { model, max_tokens: 256, stop_sequences: ['END'], messages: [{ role: 'user' as const, content: 'one END two' }] };
    const expected = provider === 'cohere' ? ['stop_sequence', 'END'] : ['end_turn', null];
    const message = await client.messages.create(request);
    expect([message.stop_reason, message.stop_sequence]).toEqual(expected);
    const streamed = await client.messages.stream(request).finalMessage();
    expect([streamed.stop_reason, streamed.stop_sequence]).toEqual(expected);
    if (provider !== 'cohere') return;
    const several = await client.messages.create({ ...request, stop_sequences: ['END', 'STOP'] });
    expect([several.stop_reason, several.stop_sequence]).toEqual(['stop_sequence', null]);
  });

  test('a multi-turn conversation answers the last user turn', async () => {
    const message = await client.messages.create({
      model,
      max_tokens: 256,
      messages: [
        { role: 'user', content: 'First question' },
        { role: 'assistant', content: 'First answer' },
        { role: 'user', content: [{ type: 'text', text: 'Second question' }] },
      ],
    });
    expect(textOf(message)).toBe('Echo: Second question');
  });

  test('a base64 image block', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const message = await client.messages.create({
      model,
      max_tokens: 256,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Look' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          ],
        },
      ],
    });
    expect(textOf(message)).toBe('Echo: Look [images: 1]');
  });

  test('upstream failures surface as the Anthropic SDK error classes', async () => {
    world.simulator(provider).inject({ kind: 'rate_limit', retryAfterSeconds: 2 });
    const limited = await rejectionOf(client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'x' }] }));
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    world.simulator(provider).inject({ kind: 'overloaded' });
    const failed = await rejectionOf(client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'x' }] }));
    expect(failed).toBeInstanceOf(Anthropic.InternalServerError);
  });
});

// Perplexity's simulator never calls tools, as Sonar does not.
describe.each([googleDescriptor, cohereDescriptor].map((descriptor) => [descriptor.name, descriptor.model] as const))(
  'Anthropic SDK tool round trip → %s (%s)',
  (_provider, model) => {
    const question: Anthropic.MessageParam[] = [{ role: 'user', content: 'Please call all tools for Paris' }];

    function followUp(first: Anthropic.Message): Anthropic.MessageParam[] {
      const uses = first.content.filter((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
      const answers: Record<string, string> = { get_weather: '18C', get_time: '09:30' };
      return [
        ...question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: uses.map((use) => ({ type: 'tool_result' as const, tool_use_id: use.id, content: answers[use.name] ?? '' })) },
      ];
    }

    test('not streamed', async () => {
      const first = await client.messages.create({ model, max_tokens: 256, tools, messages: question });
      expect(first.stop_reason).toBe('tool_use');
      const uses = first.content.filter((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
      expect(uses.map((use) => ({ name: use.name, input: use.input }))).toEqual([
        { name: 'get_weather', input: { city: 'sample' } },
        { name: 'get_time', input: { zone: 'sample' } },
      ]);
      expect(new Set(uses.map((use) => use.id)).size).toBe(2);
      const second = await client.messages.create({ model, max_tokens: 256, tools, messages: followUp(first) });
      expect(textOf(second)).toBe('Tool results: 18C | 09:30');
      expect(second.stop_reason).toBe('end_turn');
    });

    test('streamed', async () => {
      const first = await client.messages.stream({ model, max_tokens: 256, tools, messages: question }).finalMessage();
      expect(first.stop_reason).toBe('tool_use');
      const uses = first.content.filter((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
      expect(uses.map((use) => ({ name: use.name, input: use.input }))).toEqual([
        { name: 'get_weather', input: { city: 'sample' } },
        { name: 'get_time', input: { zone: 'sample' } },
      ]);
      const second = await client.messages.stream({ model, max_tokens: 256, tools, messages: followUp(first) }).finalMessage();
      expect(textOf(second)).toBe('Tool results: 18C | 09:30');
    });
  },
);
