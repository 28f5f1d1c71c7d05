// When every candidate failed: the answer's status follows the last failure (PRODUCT.md, Errors), and
// a "model not found" stands as a 404 only when it is the client's own model that is missing
// everywhere it was tried. Routing does not plan a substitute a key's own model listing lacks. QA D3.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { call, chat, createAccount, errorOf, startFleet, startRoutingGateway, storeKeys, type RoutingGateway, type SimulatorFleet } from './harness.ts';

const OPENAI_KEYS = ['final-openai-key-one', 'final-openai-key-two'];

let gateway: RoutingGateway;
let fleet: SimulatorFleet;
let openai: SimulatorHandle;
let adminKey: string;

beforeAll(async () => {
  fleet = startFleet('final');
  // Two OpenAI keys, as in the report; the simulator lists gpt-5 and o4-mini but not gpt-5-mini.
  openai = startOpenAISimulator({ apiKeys: OPENAI_KEYS });
  gateway = await startRoutingGateway({ env: { ...fleet.environment(), KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  adminKey = await createAccount(gateway, 'final-failure');
  await storeKeys(
    gateway,
    '/v1/providers/keys',
    [
      ...OPENAI_KEYS.map((api_key) => ({ name: 'openai', api_key })),
      { name: 'anthropic', api_key: fleet.keys.anthropic },
      { name: 'google', api_key: fleet.keys.google },
    ],
    adminKey,
  );
  // Waits for every key's model listing.
  expect((await call(gateway, 'GET', '/v1/providers', undefined, { key: adminKey })).status).toBe(200);
});

afterAll(async () => {
  await gateway.stop();
  await fleet.stop();
  await openai.stop();
});

beforeEach(() => {
  fleet.reset();
  openai.reset();
});

const ask = (body: Record<string, unknown>) => chat(gateway, body, {}, adminKey);

describe('every candidate failed', () => {
  test("Google's 500, then no OpenAI key listing the class's substitute: 502, OpenAI not called", async () => {
    fleet.simulators.google.inject({ kind: 'server_error' });
    openai.inject({ kind: 'model_not_found' }, { kind: 'model_not_found' });
    const response = await ask({ model: 'gemini-2.5-flash', routing: { strategy: 'fallback_chain', provider_order: ['google', 'openai'] } });
    expect(response.status).toBe(502);
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    const error = await errorOf(response);
    expect(error.code).toBe('upstream_error');
    expect(openai.inferenceRequests().length).toBe(0);
  });

  test("a substitute's model not found after another provider's 500 is a 502, not a 404 about the client's model", async () => {
    fleet.simulators.anthropic.inject({ kind: 'server_error' });
    openai.inject({ kind: 'model_not_found' }, { kind: 'model_not_found' });
    const response = await ask({ model: 'claude-opus-4-5', routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] } });
    expect(response.status).toBe(502);
    expect(response.headers.get('x-fallback-attempts')).toBe('3');
    const error = await errorOf(response);
    expect({ type: error.type, code: error.code, param: error.param }).toEqual({ type: 'upstream_error', code: 'upstream_error', param: null });
    expect(error.attempts?.map((attempt) => [attempt.provider, attempt.model, attempt.reason])).toEqual([
      ['anthropic', 'claude-opus-4-5', 'server_error'],
      ['openai', 'gpt-5', 'model_not_available'],
      ['openai', 'gpt-5', 'model_not_available'],
    ]);
  });

  test("the client's own model missing on every key it was tried on stays a 404 model_not_found, naming param 'model'", async () => {
    openai.inject({ kind: 'model_not_found' }, { kind: 'model_not_found' });
    const response = await ask({ model: 'gpt-4' });
    expect(response.status).toBe(404);
    // As Keyway's own unknown-model 404 does (QA14 docs 5: the provider's answered `param: null`).
    expect(await errorOf(response)).toMatchObject({ type: 'not_found_error', code: 'model_not_found', param: 'model' });
  });

  test("through the official openai client: a NotFoundError whose param is 'model', one attempt or several", async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: adminKey, maxRetries: 0 });
    for (const routing of [{ strategy: 'direct' }, { strategy: 'fallback_chain', provider_order: ['openai'] }]) {
      openai.inject({ kind: 'model_not_found' }, { kind: 'model_not_found' });
      const failure = await client.chat.completions
        .create({ model: 'gpt-4', messages: [{ role: 'user', content: 'hi' }], routing } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(failure).toBeInstanceOf(OpenAI.NotFoundError);
      expect({
        code: (failure as InstanceType<typeof OpenAI.NotFoundError>).code,
        param: (failure as InstanceType<typeof OpenAI.NotFoundError>).param,
      }).toEqual({
        code: 'model_not_found',
        param: 'model',
      });
    }
  });

  test("the client's own model, missing after a 500 on another key: 502", async () => {
    openai.inject({ kind: 'server_error' }, { kind: 'model_not_found' });
    const response = await ask({ model: 'gpt-4' });
    expect(response.status).toBe(502);
    expect((await errorOf(response)).code).toBe('upstream_error');
  });

  test('a model the client names is tried even when no key lists it (and is its 404 when the provider lacks it)', async () => {
    const response = await ask({ model: 'gpt-5-mini' });
    expect(response.status).toBe(404);
    expect((await errorOf(response)).code).toBe('model_not_found');
    expect(openai.inferenceRequests().length).toBe(2);
  });
});
