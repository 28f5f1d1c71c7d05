// Errors on `/v1/messages` in the terms of the client's own API: Anthropic's overload inside a stream
// (an `error` event of type `overloaded_error`, which has no HTTP status) stays `overloaded_error`,
// before the first byte and after it, as an upstream 529 already does; and a refusal of the stop
// sequences, Keyway's own (Cohere takes at most 5) or a provider's (OpenAI at most 4), names the
// field the client sent, `stop_sequences`, not the chat field the translation filled, `stop`.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { rejectionOf } from '../clients/client-fixtures.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-ErrorTermsAnthropicKey0000000001';
const OPENAI_KEY = 'sk-proj-ErrorTermsOpenAIKey000000000000001';
const COHERE_KEY = 'co-ErrorTermsCohereKey0000000000000000001';
let anthropic: SimulatorHandle;
let openai: SimulatorHandle;
let cohere: SimulatorHandle;
let gateway: TestGateway;
let client: Anthropic;

beforeAll(async () => {
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  cohere = startCohereSimulator({ apiKeys: [COHERE_KEY] });
  gateway = await startTestGateway({
    env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_COHERE_BASE_URL: cohere.url },
  });
  await addProviderKeys(gateway, [
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'cohere', api_key: COHERE_KEY },
  ]);
  client = new Anthropic({ baseURL: gateway.url, apiKey: gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  for (const simulator of [anthropic, openai, cohere]) await simulator.stop();
});

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const OVERLOADED = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
const question = { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user' as const, content: 'hi' }] };

describe("Anthropic's overload inside a stream is overloaded_error on /v1/messages", () => {
  test('as the first event: the 502 before the first byte is overloaded_error, as for an upstream 529', async () => {
    anthropic.inject({ kind: 'status', status: 200, body: sse('error', OVERLOADED), headers: { 'content-type': 'text/event-stream' } });
    const response = await call(gateway, 'POST', '/v1/messages', { ...question, stream: true });
    const body = (await response.json()) as { error: { type: string; upstream_type: string } };
    expect({ status: response.status, type: body.error.type, upstream_type: body.error.upstream_type }).toEqual({
      status: 502,
      type: 'overloaded_error',
      upstream_type: 'overloaded_error',
    });
  });

  test('after the first byte: the error event is overloaded_error, which the SDK raises as such', async () => {
    anthropic.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const response = await call(gateway, 'POST', '/v1/messages', { ...question, stream: true });
    expect(response.status).toBe(200);
    const events = (await readSse(response)).map((data) => JSON.parse(data) as { type: string; error?: { type: string } });
    expect(events.at(-1)).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });

    anthropic.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const error = await rejectionOf(client.messages.stream({ ...question, messages: [{ role: 'user', content: 'again' }] }).finalMessage());
    expect((error as { error?: { error?: { type?: string } } }).error?.error?.type).toBe('overloaded_error');
  });

  test("another failure inside Anthropic's stream stays api_error", async () => {
    const failure = { type: 'error', error: { type: 'api_error', message: 'Internal server error' } };
    anthropic.inject({ kind: 'status', status: 200, body: sse('error', failure), headers: { 'content-type': 'text/event-stream' } });
    const response = await call(gateway, 'POST', '/v1/messages', { ...question, stream: true });
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe('api_error');
  });
});

describe('a refusal of the stop sequences names stop_sequences, the field the client sent', () => {
  const sixStops = ['a', 'b', 'c', 'd', 'e', 'f'];

  for (const [provider, model, says] of [
    ['openai', 'gpt-4o-mini', "Invalid 'stop_sequences': array too long"],
    ['cohere', 'command-r-plus', "Invalid value for 'stop_sequences': cohere accepts at most 5 stop sequences"],
  ] as const) {
    test(`${provider}: ${says}`, async () => {
      const error = await rejectionOf(client.messages.create({ ...question, model, stop_sequences: sixStops }));
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      const message = (error as { error: { error: { message: string } } }).error.error.message;
      expect(message).toContain(says);
      expect(message).not.toContain("'stop'");
    });
  }

  test('on chat the same refusal still names stop, the field a chat client sends', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'command-r-plus', stop: sixStops, messages: question.messages });
    const body = (await response.json()) as { error: { message: string; param: string } };
    expect(body.error.param).toBe('stop');
    expect(body.error.message).toContain("Invalid value for 'stop'");
  });
});

describe('a bad key on /v1/messages is told the header Anthropic clients send', () => {
  test('the 401 names x-api-key, and chat still names Authorization: Bearer', async () => {
    const bad = new Anthropic({ baseURL: gateway.url, apiKey: 'bad', maxRetries: 0 });
    const error = await rejectionOf(bad.messages.create({ ...question, model: 'claude-haiku-4-5' }));
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    const message = (error as { error: { error: { message: string } } }).error.error.message;
    expect(message).toContain('Send it as "x-api-key: <key>"');
    const chat = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: question.messages }, { key: 'bad' });
    expect(chat.status).toBe(401);
    expect(((await chat.json()) as { error: { message: string } }).error.message).toContain('Send it as "Authorization: Bearer <key>"');
  });
});
