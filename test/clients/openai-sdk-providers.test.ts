// The official `openai` npm client drives /v1/chat/completions for a model of each of the five
// providers, with only the base URL and the key changed: what it parses is what real applications get.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { rejectionOf, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld();
let client: OpenAI;

beforeAll(() => {
  client = new OpenAI({ baseURL: `${world().gateway.url}/v1`, apiKey: world().gateway.defaultAdminKey, maxRetries: 0 });
});

const tools: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: { name: 'get_time', description: 'Time in a zone', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
  },
];

const results: Record<string, string> = { get_weather: '18C', get_time: '09:30' };

interface FunctionCall {
  id: string;
  name: string;
  arguments: unknown;
}

function functionCalls(completion: ChatCompletion): FunctionCall[] {
  const calls = completion.choices[0]?.message.tool_calls ?? [];
  return calls.flatMap((toolCall) =>
    toolCall.type === 'function' ? [{ id: toolCall.id, name: toolCall.function.name, arguments: JSON.parse(toolCall.function.arguments) as unknown }] : [],
  );
}

/** The follow-up conversation an application builds from the SDK's own objects. */
function followUp(question: ChatCompletionMessageParam[], completion: ChatCompletion): ChatCompletionMessageParam[] {
  const message = completion.choices[0]?.message;
  if (message === undefined) throw new Error('no message to follow up on');
  const toolMessages: ChatCompletionMessageParam[] = functionCalls(completion).map((call) => ({
    role: 'tool',
    tool_call_id: call.id,
    content: results[call.name] ?? '',
  }));
  return [...question, message, ...toolMessages];
}

describe.each(PROVIDER_DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model] as const))('openai SDK → %s (%s)', (provider, model) => {
  test('a completion, with usage and the provider headers', async () => {
    const { data: completion, response } = await client.chat.completions
      .create({
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello from the SDK' },
        ],
      })
      .withResponse();
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content).toBe('Echo: Hello from the SDK');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-provider-used')).toBe(provider);
    expect(response.headers.get('x-model-used')).toBe(model);
  });

  test('a streamed completion with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream from the SDK' }],
    });
    let text = '';
    const finishReasons: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        if (choice.finish_reason !== null) finishReasons.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Echo: Stream from the SDK');
    expect(finishReasons).toEqual(['stop']);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  test("the stream helper's final completion", async () => {
    const final = await client.chat.completions.stream({ model, messages: [{ role: 'user', content: 'Assemble me' }] }).finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe('Echo: Assemble me');
    expect(final.choices[0]?.finish_reason).toBe('stop');
  });

  test('an image as a data URL', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const completion = await client.chat.completions.create({
      model,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Look' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
          ],
        },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('Echo: Look [images: 1]');
  });

  test('upstream failures surface as the SDK error classes', async () => {
    world().simulator(provider).inject({ kind: 'rate_limit', retryAfterSeconds: 3 });
    const limited = await rejectionOf(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }));
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('3');
    world().simulator(provider).inject({ kind: 'server_error' });
    const failed = await rejectionOf(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }));
    expect(failed).toBeInstanceOf(OpenAI.InternalServerError);
    expect((failed as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(502);
  });
});

describe.each([
  ['anthropic', 'claude-3-opus-20240229'],
  ['google', 'gemini-pro'],
])('openai SDK tool round trip → %s (%s)', (provider, model) => {
  const question: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Please call all tools for Paris' }];

  test('not streamed: parallel calls, then their results', async () => {
    const first = await client.chat.completions.create({ model, tools, messages: question });
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(first);
    expect(calls.map(({ name, arguments: parsed }) => ({ name, arguments: parsed }))).toEqual([
      { name: 'get_weather', arguments: { city: 'sample' } },
      { name: 'get_time', arguments: { zone: 'sample' } },
    ]);
    expect(new Set(calls.map((call) => call.id)).size).toBe(2);
    const second = await client.chat.completions.create({ model, tools, messages: followUp(question, first) });
    expect(second.choices[0]?.message.content).toBe('Tool results: 18C | 09:30');
    expect(world().simulator(provider).inferenceRequests().length).toBe(2);
  });

  test('streamed: the stream helper assembles the calls, and the round trip streams too', async () => {
    const first = await client.chat.completions.stream({ model, tools, messages: question }).finalChatCompletion();
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    expect(functionCalls(first).map((call) => call.name)).toEqual(['get_weather', 'get_time']);
    const runner = client.chat.completions.stream({ model, tools, messages: followUp(question, first) });
    let streamed = '';
    runner.on('content', (delta) => {
      streamed += delta;
    });
    const second = await runner.finalChatCompletion();
    expect(streamed).toBe('Tool results: 18C | 09:30');
    expect(second.choices[0]?.message.content).toBe('Tool results: 18C | 09:30');
    expect(second.choices[0]?.finish_reason).toBe('stop');
  });
});
