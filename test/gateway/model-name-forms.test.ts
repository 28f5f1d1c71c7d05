// Model names in the shapes providers' own tools write them, declared by each provider's manifest:
// an OpenAI fine-tune (`ft:<base>:…`) made after the key's model list was read, and Gemini's `models/`
// prefix (Google's SDKs and docs); and the 404's way out for a name nothing knows. Also the Anthropic
// error type of a configuration failure on `/v1/messages`, which must not read as a transient overload.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { nextRequestId, rowOf } from '../accounting/booking.ts';

const OPENAI_KEY = 'sk-proj-NameFormsOpenAIKey00000000000000001';
const GOOGLE_KEY = 'AIzaSyNameFormsGoogleKey000123456789abcd';
const ANTHROPIC_KEY = 'sk-ant-api03-NameFormsAnthropicKey000000001';
const REJECTED_ANTHROPIC_KEY = 'sk-ant-api03-NameFormsRevokedKey0000000001';
const FINE_TUNE = 'ft:gpt-4o-mini-2024-07-18:org-name:custom-suffix:abc123';
const hello = [{ role: 'user', content: 'hi' }];

let openai: SimulatorHandle;
let google: SimulatorHandle;
let anthropic: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  // The fine-tune is callable but not in the key's model list yet, as within the models cache's life.
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY], unlistedModels: [FINE_TUNE] });
  google = startGoogleSimulator({ apiKeys: [GOOGLE_KEY] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_GOOGLE_BASE_URL: google.url, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url },
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'google', api_key: GOOGLE_KEY },
    { name: 'anthropic', api_key: REJECTED_ANTHROPIC_KEY },
  ]);
  // Waits for every key's model listing, so the fine-tune is known to be missing from it.
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await google.stop();
  await anthropic.stop();
});

async function chat(model: string): Promise<{ response: Response; requestId: string }> {
  const requestId = nextRequestId();
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model, messages: hello }, { headers: { 'x-request-id': requestId } });
  return { response, requestId };
}

describe('model names in their providers’ own shapes', () => {
  test('a bare fine-tune id no list names yet reaches OpenAI, sent as it is', async () => {
    openai.reset();
    const { response, requestId } = await chat(FINE_TUNE);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(openai.inferenceRequests()).toHaveLength(1);
    expect(JSON.stringify(openai.inferenceRequests()[0])).toContain(`"model":"${FINE_TUNE}"`);
    expect((await rowOf(gateway, requestId)).provider).toBe('openai');
  });

  test("a fine-tune of a model OpenAI does not serve is not guessed to be OpenAI's", async () => {
    openai.reset();
    const { response } = await chat('ft:claude-haiku-4-5:org:suffix:abc');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(response.status).toBe(404);
    expect(body.error.code).toBe('model_not_found');
    expect(openai.inferenceRequests()).toHaveLength(0);
  });

  test("Gemini's models/ prefix is Google's: the bare name goes upstream and into the books, as google/… does", async () => {
    const prefixed = await chat('models/gemini-2.5-flash');
    const named = await chat('google/gemini-2.5-flash');
    expect([prefixed.response.status, named.response.status]).toEqual([200, 200]);
    for (const header of ['x-provider-used', 'x-model-used']) expect(prefixed.response.headers.get(header)).toBe(named.response.headers.get(header));
    expect(prefixed.response.headers.get('x-model-used')).toBe('gemini-2.5-flash');
    const [prefixedRow, namedRow] = [await rowOf(gateway, prefixed.requestId), await rowOf(gateway, named.requestId)];
    expect({ provider: prefixedRow.provider, model: prefixedRow.model }).toEqual({ provider: namedRow.provider, model: namedRow.model });
    expect(JSON.stringify(google.inferenceRequests())).not.toContain('models/models/');
  });

  test('the provider field and google/ take the prefixed name too', async () => {
    google.reset();
    const field = await call(gateway, 'POST', '/v1/chat/completions', { model: 'models/gemini-2.5-flash', provider: 'google', messages: hello });
    const named = await call(gateway, 'POST', '/v1/chat/completions', { model: 'google/models/gemini-2.5-flash', messages: hello });
    expect([field.status, named.status]).toEqual([200, 200]);
    expect(named.headers.get('x-model-used')).toBe('gemini-2.5-flash');
  });

  test('a name nothing knows is a 404 that says how to name its provider', async () => {
    const { response } = await chat('zq-private-model-99');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(response.status).toBe(404);
    expect(body.error.message).toContain('provider/zq-private-model-99');
    expect(body.error.message).toContain('X-Provider');
  });
});

describe('Anthropic error types on /v1/messages', () => {
  const message = { model: 'claude-haiku-4-5', max_tokens: 50, messages: hello };

  test('no usable key (every key rejected) is api_error, never the transient overloaded_error', async () => {
    // The key's model listing already met the 401 and put the key aside.
    const response = await call(gateway, 'POST', '/v1/messages', message);
    const body = (await response.json()) as { error: { type: string; code: string } };
    expect({ status: response.status, code: body.error.code, type: body.error.type }).toEqual({
      status: 503,
      code: 'no_provider_available',
      type: 'api_error',
    });
  });

  test("a provider's own overload stays overloaded_error", async () => {
    openai.setSticky({ kind: 'overloaded' });
    try {
      const response = await call(gateway, 'POST', '/v1/messages', { ...message, model: 'gpt-4o-mini' });
      const body = (await response.json()) as { error: { type: string; upstream_status?: number } };
      expect({ status: response.status, type: body.error.type }).toEqual({ status: 502, type: 'overloaded_error' });
    } finally {
      openai.setSticky(undefined);
    }
  });
});
