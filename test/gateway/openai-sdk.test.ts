// The official `openai` npm client, pointed at Keyway with only the base URL and key changed.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const UPSTREAM_KEY = 'sk-proj-CanarySdkKey000000000000000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: UPSTREAM_KEY }]);
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('official openai client', () => {
  test('non-streaming completion', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from the SDK' }] });
    expect(completion.choices[0]?.message.content).toBe('Echo: Hello from the SDK');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
  });

  test('raw response headers are reachable through the SDK', async () => {
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'headers' }] }).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-byok-used')).toBe('true');
  });

  test('streaming completion with usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream from the SDK' }],
    });
    let text = '';
    let totalTokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) totalTokens = chunk.usage.total_tokens;
    }
    expect(text).toBe('Echo: Stream from the SDK');
    expect(totalTokens).toBeGreaterThan(0);
  });

  test('streaming tool calls assemble into arguments', async () => {
    const runner = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { term: { type: 'string' } }, required: ['term'] } } }],
      messages: [{ role: 'user', content: 'look it up' }],
    });
    const final = await runner.finalChatCompletion();
    const toolCall = final.choices[0]?.message.tool_calls?.[0];
    expect(toolCall?.type === 'function' ? JSON.parse(toolCall.function.arguments) : undefined).toEqual({ term: 'sample' });
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
  });

  test('errors surface as the SDK error classes', async () => {
    // The SDK's APIPromise is a thenable, not a Promise: capture its rejection explicitly.
    const failure = async (promise: PromiseLike<unknown>) => {
      try {
        await promise;
      } catch (error) {
        return error as { status?: number; constructor: { name: string } };
      }
      throw new Error('the call succeeded');
    };
    const notFound = await failure(client.chat.completions.create({ model: 'gtp-4o', messages: [{ role: 'user', content: 'x' }] }));
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    const unauthenticated = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'kw_ak_wrong0000000000000000000000000000', maxRetries: 0 });
    expect(await failure(unauthenticated.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }))).toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 1 });
    expect(await failure(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }))).toBeInstanceOf(
      OpenAI.RateLimitError,
    );
  });

  test('models and embeddings', async () => {
    const models = await client.models.list();
    expect(models.data.some((model) => model.id === 'gpt-4o-mini')).toBe(true);
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me' });
    expect(embedding.data[0]?.embedding.length).toBeGreaterThan(0);
  });
});
