// What a provider ignores, the client is told: an `X-Keyway-Warnings` entry, read through the
// official `openai` client's raw response, for every parameter Perplexity or Cohere does not honour
// (QA14 migrator 14: Perplexity's forced tool choice and logprobs, Cohere's user and metadata went
// without a word, while Gemini warned for the same fields).

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const KEYS = { perplexity: 'pplx-ignored-parameters-key', cohere: 'cohere-ignored-parameters-key', google: 'google-ignored-parameters-key' };
let perplexity: SimulatorHandle;
let cohere: SimulatorHandle;
let google: SimulatorHandle;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  perplexity = startPerplexitySimulator({ apiKeys: [KEYS.perplexity] });
  cohere = startCohereSimulator({ apiKeys: [KEYS.cohere] });
  google = startGoogleSimulator({ apiKeys: [KEYS.google] });
  gateway = await startTestGateway({
    env: { KEYWAY_PERPLEXITY_BASE_URL: perplexity.url, KEYWAY_COHERE_BASE_URL: cohere.url, KEYWAY_GOOGLE_BASE_URL: google.url },
  });
  await addProviderKeys(gateway, [
    { name: 'perplexity', api_key: KEYS.perplexity },
    { name: 'cohere', api_key: KEYS.cohere },
    { name: 'google', api_key: KEYS.google },
  ]);
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await Promise.all([perplexity.stop(), cohere.stop(), google.stop()]);
});

beforeEach(() => {
  for (const simulator of [perplexity, cohere, google]) simulator.reset();
});

const hello = [{ role: 'user' as const, content: 'hi' }];
const lookup: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
};

async function warningsOf(body: OpenAI.ChatCompletionCreateParamsNonStreaming): Promise<string | null> {
  const { response } = await client.chat.completions.create(body).withResponse();
  return response.headers.get('x-keyway-warnings');
}

function lastBody(simulator: SimulatorHandle): Record<string, unknown> {
  return simulator.inferenceRequests().at(-1)?.body as Record<string, unknown>;
}

describe('perplexity', () => {
  test("tool_choice 'required' is passed on, with a warning that Sonar may answer in text", async () => {
    const warnings = await warningsOf({ model: 'sonar', messages: hello, tools: [lookup], tool_choice: 'required' });
    expect(warnings).toContain('perplexity: tool_choice that forces a tool call is not enforced');
    expect(lastBody(perplexity).tool_choice).toBe('required');
  });

  test('logprobs and top_logprobs are dropped, with a warning each', async () => {
    const warnings = await warningsOf({ model: 'sonar', messages: hello, logprobs: true, top_logprobs: 2 });
    expect(warnings).toContain("perplexity: 'logprobs' is not supported by Sonar and was dropped");
    expect(warnings).toContain("perplexity: 'top_logprobs' is not supported by Sonar and was dropped");
    expect(lastBody(perplexity)).not.toHaveProperty('logprobs');
  });

  test('OpenAI-only features Sonar ignores are dropped, with a warning each, as Gemini and Cohere warn (QA18: forwarded silently)', async () => {
    const body = {
      model: 'sonar',
      messages: hello,
      modalities: ['text', 'audio'],
      audio: { voice: 'alloy', format: 'wav' },
      prediction: { type: 'content', content: 'hi' },
      store: true,
      metadata: { team: 'search' },
      service_tier: 'flex',
      seed: 7,
      user: 'user-123',
    } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const warnings = await warningsOf(body);
    const sent = lastBody(perplexity);
    for (const field of ['modalities', 'audio', 'prediction', 'store', 'metadata', 'service_tier', 'seed', 'user']) {
      expect({ field, warned: warnings?.includes(`perplexity: '${field}' is not supported by Sonar and was dropped`) }).toEqual({ field, warned: true });
      expect(sent).not.toHaveProperty(field);
    }
  });

  test('a plain request has no warning', async () => {
    expect(await warningsOf({ model: 'sonar', messages: hello, tools: [lookup], tool_choice: 'auto', logprobs: false, store: false })).toBeNull();
  });
});

describe('cohere', () => {
  test('user and metadata are dropped with a warning each, as Gemini warns for them', async () => {
    const body = { messages: hello, user: 'user-123', metadata: { team: 'search' } };
    const cohereWarnings = await warningsOf({ model: 'command-r', ...body });
    expect(cohereWarnings).toContain("cohere: 'user' is not supported and was dropped");
    expect(cohereWarnings).toContain("cohere: 'metadata' is not supported and was dropped");
    const geminiWarnings = await warningsOf({ model: 'gemini-2.5-flash', ...body });
    expect(geminiWarnings).toContain("google: 'user' is not supported by Gemini and was ignored");
    expect(geminiWarnings).toContain("google: 'metadata' is not supported by Gemini and was ignored");
  });

  test('store: false asks for nothing, and gets no warning', async () => {
    expect(await warningsOf({ model: 'command-r', messages: hello, store: false })).toBeNull();
  });
});
