// `/v1/messages` streams report the prompt's tokens in message_start whenever the upstream knows them
// before any content (Anthropic's message_start, Gemini's first chunk), as clients such as LangChain's
// ChatAnthropic read input tokens only there; Anthropic's ping events are kept when Anthropic serves.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { anthropicDescriptor, googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, readSse } from '../helpers/gateway.ts';

let world: ClientWorld;

beforeAll(async () => {
  world = await startClientWorld([anthropicDescriptor, googleDescriptor, openAIDescriptor]);
});

afterAll(async () => {
  await world.stop();
});

type Json = Record<string, unknown>;

async function streamEvents(model: string): Promise<Json[]> {
  const response = await call(
    world.gateway,
    'POST',
    '/v1/messages',
    { model, max_tokens: 256, stream: true, messages: [{ role: 'user', content: 'Count my prompt before answering, please' }] },
    { key: world.gateway.defaultAdminKey, headers: { 'anthropic-version': '2023-06-01' } },
  );
  expect(response.status).toBe(200);
  return (await readSse(response)).map((payload) => JSON.parse(payload) as Json);
}

function startUsage(events: Json[]): Json {
  return ((events[0]?.message as Json | undefined)?.usage ?? {}) as Json;
}

function finalUsage(events: Json[]): Json {
  return (events.find((event) => event.type === 'message_delta')?.usage ?? {}) as Json;
}

describe.each([
  ['anthropic', anthropicDescriptor.model],
  ['google', googleDescriptor.model],
])('message_start carries the real input tokens when %s serves', (provider, model) => {
  test('the count in message_start is the one the stream closes with', async () => {
    const events = await streamEvents(model);
    expect(events[0]?.type).toBe('message_start');
    const inputTokens = startUsage(events).input_tokens as number;
    expect(inputTokens).toBeGreaterThan(0);
    expect(inputTokens).toBe(finalUsage(events).input_tokens as number);
    expect(startUsage(events).output_tokens).toBe(0);
    const pings = events.filter((event) => event.type === 'ping').length;
    // Anthropic's own keep-alives go on to the client; no other provider has them.
    if (provider === 'anthropic') expect(pings).toBeGreaterThan(0);
    else expect(pings).toBe(0);
    expect(events.findIndex((event) => event.type === 'ping')).not.toBe(0);
  });

  test('the Anthropic SDK reads the count from message_start', async () => {
    const client = new Anthropic({ baseURL: world.gateway.url, apiKey: world.gateway.defaultAdminKey, maxRetries: 0 });
    const stream = client.messages.stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Count my prompt before answering, please' }] });
    let startTokens = -1;
    stream.on('streamEvent', (event) => {
      if (event.type === 'message_start') startTokens = event.message.usage.input_tokens;
    });
    const final = await stream.finalMessage();
    expect(startTokens).toBeGreaterThan(0);
    expect(final.usage.input_tokens).toBe(startTokens);
  });
});

test('an OpenAI-served stream has no count before the end: message_start says 0, message_delta the total, no ping', async () => {
  const events = await streamEvents(openAIDescriptor.model);
  expect(startUsage(events).input_tokens).toBe(0);
  expect(finalUsage(events).input_tokens as number).toBeGreaterThan(0);
  expect(events.some((event) => event.type === 'ping')).toBe(false);
});
