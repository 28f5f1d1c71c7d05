// POST /v1/embeddings through the gateway to each provider that has embeddings, in OpenAI's shape.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let openai: SimulatorHandle;
let google: SimulatorHandle;
let cohere: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: ['sk-proj-EmbeddingsOpenAI000000000000001'] });
  google = startGoogleSimulator({ apiKeys: ['AIzaEmbeddingsGoogleKey0000000000000001'] });
  cohere = startCohereSimulator({ apiKeys: ['cohere-embeddings-key-0000000000001'] });
  gateway = await startTestGateway({
    // The refusal test's key points at a closed loopback port, which only an operator allow-list opens.
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_GOOGLE_BASE_URL: google.url,
      KEYWAY_COHERE_BASE_URL: cohere.url,
      KEYWAY_UPSTREAM_ALLOW: '127.0.0.1:9',
    },
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: 'sk-proj-EmbeddingsOpenAI000000000000001' },
    { name: 'google', api_key: 'AIzaEmbeddingsGoogleKey0000000000000001' },
    { name: 'cohere', api_key: 'cohere-embeddings-key-0000000000001' },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await Promise.all([openai.stop(), google.stop(), cohere.stop()]);
});

interface EmbeddingsAnswer {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

describe.each([
  ['openai', 'text-embedding-3-small'],
  ['google', 'google/gemini-embedding-001'],
  ['cohere', 'embed-english-v3.0'],
])('embeddings through %s', (provider, model) => {
  test('float vectors in the OpenAI shape, one per input, in order, accounted', async () => {
    const response = await call(gateway, 'POST', '/v1/embeddings', { model, input: ['first text', 'second text', 'third'] });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe(provider);
    const body = (await response.json()) as EmbeddingsAnswer;
    expect(body.object).toBe('list');
    expect(body.data.map((item) => item.index)).toEqual([0, 1, 2]);
    for (const item of body.data) {
      expect(item.object).toBe('embedding');
      expect(Array.isArray(item.embedding) && item.embedding.length > 0).toBe(true);
    }
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    await flushUsage(gateway);
    const row = (await gateway.runtime.store.listUsage('default')).find((usage) => usage.requestId === response.headers.get('x-request-id'));
    expect(row?.endpoint).toBe('embeddings');
    expect(row?.provider).toBe(provider);
    expect(row?.inputTokens).toBe(body.usage.prompt_tokens);
  });

  test('base64 encoding decodes to the same float32 vector', async () => {
    const [floats, encoded] = await Promise.all([
      call(gateway, 'POST', '/v1/embeddings', { model, input: 'same text' }).then((response) => response.json() as Promise<EmbeddingsAnswer>),
      call(gateway, 'POST', '/v1/embeddings', { model, input: 'same text', encoding_format: 'base64' }).then(
        (response) => response.json() as Promise<EmbeddingsAnswer>,
      ),
    ]);
    const vector = floats.data[0]?.embedding as number[];
    const bytes = Buffer.from(encoded.data[0]?.embedding as string, 'base64');
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    expect(decoded.length).toBe(vector.length);
    decoded.forEach((value, index) => expect(value).toBeCloseTo(vector[index] as number, 5));
  });
});

// QA20: Gemini's batchEmbedContents takes at most 100 requests, and the adapter sent every input in
// one call: 150 texts (LangChain's OpenAIEmbeddings sends up to 1000 at once) were Gemini's 400. Cohere's
// adapter already sent its 96 a call.
describe('more inputs than Gemini takes in one batch', () => {
  test('are sent 100 a call and answered as one list, in order, with the usage of every call', async () => {
    const client = new OpenAI({ apiKey: gateway.defaultAdminKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const texts = Array.from({ length: 250 }, (_, index) => `text number ${index}`);
    const before = google.inferenceRequests().length;
    const answer = await client.embeddings.create({ model: 'text-embedding-004', input: texts, encoding_format: 'float' });
    const calls = google.inferenceRequests().slice(before);
    expect(calls.map((request) => (request.body as { requests: unknown[] }).requests.length)).toEqual([100, 100, 50]);
    expect(answer.data.map((item) => item.index)).toEqual(texts.map((_, index) => index));
    const single = await client.embeddings.create({ model: 'text-embedding-004', input: texts[234] as string, encoding_format: 'float' });
    expect(answer.data[234]?.embedding).toEqual(single.data[0]?.embedding as number[]);
    const perText = await client.embeddings.create({ model: 'text-embedding-004', input: texts.slice(0, 100), encoding_format: 'float' });
    expect(answer.usage.prompt_tokens).toBeGreaterThan(perText.usage.prompt_tokens);
  });
});

// QA D2: OpenAI's name pattern for embeddings matched Google's model too, so the bare name was
// "served by several providers" (suggesting openai/text-embedding-004, which does not exist) while
// GET /v1/models listed it as Google's alone.
describe("Google's text-embedding-004 by its bare name", () => {
  test('goes to Google, as GET /v1/models lists it', async () => {
    const embed = () => call(gateway, 'POST', '/v1/embeddings', { model: 'text-embedding-004', input: ['a'] });
    const first = await embed();
    expect(first.status).toBe(200);
    expect(first.headers.get('x-provider-used')).toBe('google');
    // Once every key has reported its models, the exact listing decides, and agrees.
    expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
    const listed = (await (await call(gateway, 'GET', '/v1/models')).json()) as { data: Array<{ id: string; provider: string }> };
    expect(listed.data.filter((model) => model.id.endsWith('text-embedding-004'))).toEqual([
      expect.objectContaining({ id: 'text-embedding-004', provider: 'google' }),
    ]);
    const again = await embed();
    expect(again.status).toBe(200);
    expect(again.headers.get('x-provider-used')).toBe('google');
  });
});

describe('embeddings refusals', () => {
  test('a provider without embeddings says so, without calling it', async () => {
    await addProviderKeys(gateway, [{ name: 'anthropic', api_key: 'sk-ant-api03-NoEmbeddingsHere0000000001', settings: { base_url: 'http://127.0.0.1:9' } }]);
    const response = await call(gateway, 'POST', '/v1/embeddings', { model: 'claude-3-opus-20240229', input: 'x' });
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    expect({ status: response.status, code: error.code }).toEqual({ status: 400, code: 'unsupported_feature' });
    expect(error.message).toContain('anthropic');
  });

  test('bad input names the field', async () => {
    const response = await call(gateway, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: 42 });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('input');
  });

  test('an empty string, alone or in an array, is refused as OpenAI refuses it, before any upstream call', async () => {
    const asked = openai.inferenceRequests().length + google.inferenceRequests().length;
    for (const [model, input] of [
      ['text-embedding-004', ''],
      ['text-embedding-3-small', ''],
      ['text-embedding-3-small', ['hello', '']],
      ['text-embedding-004', [''] as unknown],
      ['text-embedding-3-small', []],
    ] as const) {
      const response = await call(gateway, 'POST', '/v1/embeddings', { model, input });
      const error = ((await response.json()) as { error: { code: string; param: string; message: string } }).error;
      expect({ status: response.status, code: error.code, param: error.param }).toEqual({ status: 400, code: 'invalid_field', param: 'input' });
      expect(error.message).toContain('input');
    }
    expect(openai.inferenceRequests().length + google.inferenceRequests().length).toBe(asked);
  });
});
