// A fallback candidate whose provider cannot serve what the request asks (n: 2, where Anthropic
// returns one choice per request and its translation refuses) is skipped, not the end of the
// request: the next candidate is tried, and when none is left the answer is the upstream failure
// that happened, not the skipped candidate's 400. Only a request that reached no upstream at all keeps
// the 400. Through the official `openai` client, whose view decides whether it retries. QA14 migrator 7.
// A substitute's upstream 400 (a provider the client did not choose refusing the translation), met
// once the request is falling back, is set aside the same way (QA15 F1).

import { beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { addAccountKeys, createAccount, routingSuite, sdkFailureOf as anyFailureOf } from './harness.ts';

const suite = routingSuite('refusals');
let client: OpenAI;
let keyIds: Record<string, string>;

beforeAll(async () => {
  const adminKey = await createAccount(suite.gateway, 'candidate-refusals');
  keyIds = await addAccountKeys(suite.gateway, suite.fleet, ['openai', 'anthropic', 'google', 'cohere'], adminKey);
  client = new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey: adminKey, maxRetries: 0 });
});

const TWO_CHOICES = { model: 'gpt-4o', n: 2, messages: [{ role: 'user' as const, content: 'Two takes, please' }] };
const chain = (...providers: string[]) => ({ routing: { strategy: 'fallback_chain', provider_order: providers } });

interface ListedAttempt {
  provider: string;
  model: string;
  key_id: string;
  reason: string;
  status: number | null;
  skipped?: boolean;
}

/** The SDK's error, with the attempts Keyway lists in its body. */
interface SdkFailure {
  status?: number;
  code?: string | null;
  param?: string | null;
  error?: { attempts?: ListedAttempt[] };
  headers?: Headers;
}

const PROVIDER_HEADERS = ['x-provider-used', 'x-model-used', 'x-byok-used', 'x-key-id'] as const;
const NO_PROVIDER_HEADERS = Object.fromEntries(PROVIDER_HEADERS.map((name) => [name, null]));

function providerHeaders(headers: Headers | undefined): Record<string, string | null> {
  return Object.fromEntries(PROVIDER_HEADERS.map((name) => [name, headers?.get(name) ?? null]));
}

const sdkFailureOf = async (promise: Promise<unknown>): Promise<SdkFailure> => (await anyFailureOf(promise)) as SdkFailure;

describe('a candidate that cannot serve the request is skipped', () => {
  test("OpenAI's 500, Anthropic unable to return two choices: Google serves both, Anthropic never called", async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const { data, response } = await client.chat.completions
      .create({ ...TWO_CHOICES, ...chain('openai', 'anthropic', 'google') } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.choices).toHaveLength(2);
    expect(response.headers.get('x-provider-used')).toBe('google');
    expect(response.headers.get('x-key-id')).toBe(keyIds.google ?? '');
    // The skipped candidate is counted with the failed attempt before the one that served.
    expect(response.headers.get('x-fallback-attempts')).toBe('2');
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 1, anthropic: 0, google: 1, cohere: 0, perplexity: 0 });
    expect(suite.fleet.simulators.google.inferenceRequests()[0]?.body).toMatchObject({ generationConfig: { candidateCount: 2 } });
  });

  test('streamed, the same: Google serves after the skip', async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const stream = await client.chat.completions.create({
      ...TWO_CHOICES,
      ...chain('openai', 'anthropic', 'google'),
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const indexes = new Set<number>();
    for await (const chunk of stream) for (const choice of chunk.choices) indexes.add(choice.index);
    expect([...indexes].sort()).toEqual([0, 1]);
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 1, anthropic: 0, google: 1, cohere: 0, perplexity: 0 });
  });

  test('none left: the answer is the 502 of the upstream failure that happened, listing the skip (a 5xx the SDK may retry)', async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const failure = await sdkFailureOf(
      client.chat.completions.create({ ...TWO_CHOICES, ...chain('openai', 'anthropic') } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 502, code: 'upstream_error', param: null });
    expect(failure.error?.attempts?.map((attempt) => [attempt.provider, attempt.reason, attempt.status, attempt.skipped ?? false])).toEqual([
      ['openai', 'server_error', 500, false],
      ['anthropic', 'unsupported_feature', null, true],
    ]);
    // The headers name the attempt whose failure the answer is.
    expect(failure.headers?.get('x-provider-used')).toBe('openai');
    expect(failure.headers?.get('x-should-retry')).toBeNull();
    expect(suite.fleet.simulators.anthropic.inferenceRequests()).toHaveLength(0);
  });

  test("the candidate the client's model belongs to may be the one skipped: a chain's next provider serves", async () => {
    const { data, response } = await client.chat.completions
      .create({ ...TWO_CHOICES, model: 'claude-opus-4-5', ...chain('anthropic', 'google') } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.choices).toHaveLength(2);
    expect(response.headers.get('x-provider-used')).toBe('google');
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 0, google: 1, cohere: 0, perplexity: 0 });
  });

  test('a retry pass does not try the refusing candidate again', async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    try {
      const failure = await sdkFailureOf(
        client.chat.completions.create({
          ...TWO_CHOICES,
          routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'], retries: 1 },
        } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(failure.status).toBe(502);
      expect(failure.error?.attempts?.map((attempt) => [attempt.provider, attempt.skipped ?? false])).toEqual([
        ['openai', false],
        ['anthropic', true],
        ['openai', false],
      ]);
    } finally {
      suite.fleet.simulators.openai.setSticky(undefined);
    }
  });
});

describe('no upstream tried at all', () => {
  test('the request only Anthropic may serve keeps its 400 unsupported_feature', async () => {
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        ...TWO_CHOICES,
        model: 'claude-opus-4-5',
        routing: { strategy: 'direct' },
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'unsupported_feature', param: 'n' });
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 0, google: 0, cohere: 0, perplexity: 0 });
    // Anthropic was never asked: no header says it answered (QA14 docs N8); the body lists the skip.
    expect(providerHeaders(failure.headers)).toEqual(NO_PROVIDER_HEADERS);
    expect(failure.headers?.get('x-fallback-attempts')).toBe('1');
    expect(failure.error?.attempts?.map((attempt) => [attempt.provider, attempt.skipped ?? false])).toEqual([['anthropic', true]]);
  });

  test("a provider's translation refusing a value (Cohere's sixth stop sequence) names no provider either", async () => {
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        model: 'command-a-03-2025',
        stop: ['a', 'b', 'c', 'd', 'e', 'f'],
        messages: [{ role: 'user', content: 'Hi' }],
        routing: { strategy: 'direct' },
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'stop' });
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 0, google: 0, cohere: 0, perplexity: 0 });
    expect(providerHeaders(failure.headers)).toEqual(NO_PROVIDER_HEADERS);
  });

  test('after an upstream failure, a refusal that ends the chain names no provider: the failure it answers called none', async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        model: 'gpt-4o',
        stop: ['a', 'b', 'c', 'd', 'e', 'f'],
        messages: [{ role: 'user', content: 'Hi' }],
        ...chain('openai', 'cohere'),
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'stop' });
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 1, anthropic: 0, google: 0, cohere: 0, perplexity: 0 });
    expect(providerHeaders(failure.headers)).toEqual(NO_PROVIDER_HEADERS);
  });

  test('every candidate refusing keeps the 400 too', async () => {
    const failure = await sdkFailureOf(
      client.chat.completions.create({ ...TWO_CHOICES, model: 'claude-opus-4-5', ...chain('anthropic') } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 400, code: 'unsupported_feature' });
  });
});

// QA15 F1: OpenAI takes `stop: ["\n\n"]`, Anthropic answers 400 to a stop sequence of whitespace only.
describe('a stop sequence Anthropic refuses', () => {
  const PARAGRAPH_STOP = { stop: ['\n\n'], messages: [{ role: 'user' as const, content: 'Hi' }] };

  test('direct to Anthropic: dropped with a warning, not sent', async () => {
    const { response } = await client.chat.completions
      .create({ ...PARAGRAPH_STOP, model: 'claude-haiku-4-5', routing: { strategy: 'direct' } } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toContain('anthropic: ignored stop sequence "\\n\\n"');
    expect(suite.fleet.simulators.anthropic.inferenceRequests()[0]?.body).not.toHaveProperty('stop_sequences');
  });

  // QA15 re-verification N5: the header is ASCII, and a non-ASCII space read "?" in it.
  test('a stop sequence of non-ASCII spaces is named in the warning by its escapes', async () => {
    const { response } = await client.chat.completions
      .create({
        ...PARAGRAPH_STOP,
        stop: ['\u00a0', '\u3000'],
        model: 'claude-haiku-4-5',
        routing: { strategy: 'direct' },
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-keyway-warnings')).toContain('ignored stop sequence "\\u00a0", "\\u3000"');
  });

  test("the seed's chain: OpenAI's 500, then Anthropic serves the request it used to refuse", async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const { response } = await client.chat.completions
      .create({ ...PARAGRAPH_STOP, model: 'gpt-4o', ...chain('openai', 'anthropic', 'google') } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(response.headers.get('x-keyway-warnings')).toContain('ignored stop sequence');
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 1, anthropic: 1, google: 0, cohere: 0, perplexity: 0 });
  });
});

/** Anthropic's answer to a request it refuses, as its API writes it. */
const ANTHROPIC_400 = {
  kind: 'status' as const,
  status: 400,
  body: { type: 'error', error: { type: 'invalid_request_error', message: 'some.field: a value this model does not take' } },
};

describe("a substitute's upstream 400 does not end the chain", () => {
  test("OpenAI's 500, the Anthropic substitute's 400: Google serves", async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    suite.fleet.simulators.anthropic.inject(ANTHROPIC_400);
    const { response } = await client.chat.completions
      .create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Hi' }],
        ...chain('openai', 'anthropic', 'google'),
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('google');
    expect(response.headers.get('x-fallback-attempts')).toBe('2');
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 1, anthropic: 1, google: 1, cohere: 0, perplexity: 0 });
  });

  test("none left: the answer is OpenAI's failure (502), listing the substitute's 400, and the headers name OpenAI", async () => {
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    suite.fleet.simulators.anthropic.inject(ANTHROPIC_400);
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Hi' }],
        ...chain('openai', 'anthropic'),
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 502, code: 'upstream_error' });
    expect(failure.error?.attempts?.map((attempt) => [attempt.provider, attempt.reason, attempt.status])).toEqual([
      ['openai', 'server_error', 500],
      ['anthropic', 'invalid_request', 400],
    ]);
    expect(failure.headers?.get('x-provider-used')).toBe('openai');
  });

  test("with no fallback under way, a substitute's 400 is returned as is, as any client error", async () => {
    suite.fleet.simulators.anthropic.inject(ANTHROPIC_400);
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Hi' }],
        ...chain('anthropic', 'google'),
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 400, code: 'upstream_invalid_request' });
    expect(failure.headers?.get('x-provider-used')).toBe('anthropic');
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 1, google: 0, cohere: 0, perplexity: 0 });
  });

  test("the client's own model's 400 still ends the chain: the request is what its provider refused", async () => {
    suite.fleet.simulators.anthropic.inject(ANTHROPIC_400);
    const failure = await sdkFailureOf(
      client.chat.completions.create({
        model: 'claude-opus-4-5',
        messages: [{ role: 'user', content: 'Hi' }],
        ...chain('anthropic', 'google'),
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 400, code: 'upstream_invalid_request' });
    expect(suite.fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 1, google: 0, cohere: 0, perplexity: 0 });
  });
});
