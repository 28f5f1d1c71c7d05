// A 504 after Keyway's own fallbacks or retry passes, each of which waited out its deadline, says
// `x-should-retry: false` (QA14, finding 11): the official SDKs, at their default two retries, used
// to run the whole plan three times (3 upstream calls and 7.3 s for one client call). A single
// attempt's timeout, a rate limit and a quick 502 are still left to the SDKs.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { rejectionOf } from './client-fixtures.ts';

const OPENAI_KEY = 'sk-proj-TimeoutNoRetryUpstreamKey00000001';
const ANTHROPIC_KEY = 'sk-ant-api03-TimeoutNoRetryUpstreamKey001';
const FIRST_BYTE_MS = 150;
/** Longer than the first-byte deadline: every delayed attempt times out. */
const SLOW = { kind: 'delay', delayMs: 1_000 } as const;

let openai: SimulatorHandle;
let anthropic: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  gateway = await startTestGateway({
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_ANTHROPIC_BASE_URL: anthropic.url, KEYWAY_FIRST_BYTE_TIMEOUT_MS: String(FIRST_BYTE_MS) },
    probes: false,
  });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  await anthropic.stop();
});

beforeEach(() => {
  openai.reset();
  anthropic.reset();
});

interface SdkError {
  status?: number;
  headers?: Headers | Record<string, string>;
  code?: string;
}

function headerOf(error: SdkError, name: string): string | null | undefined {
  const headers = error.headers;
  return headers instanceof Headers ? headers.get(name) : headers?.[name];
}

const CHAIN = { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] };
const upstreamCalls = (): number => openai.inferenceRequests().length + anthropic.inferenceRequests().length;

function openaiClient(maxRetries?: number): OpenAI {
  return new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.defaultAdminKey, ...(maxRetries === undefined ? {} : { maxRetries }) });
}

/** Keyway's `routing` rides in the body beside the SDK's own parameters. */
function chatWith(client: OpenAI, routing: Record<string, unknown>): Promise<unknown> {
  return client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], routing } as never);
}

describe('a timeout after Keyway already fell back or retried', () => {
  test('the OpenAI SDK, at its default retries, makes one call: 504 with x-should-retry: false', async () => {
    openai.setSticky(SLOW);
    anthropic.setSticky(SLOW);
    const error = (await rejectionOf(chatWith(openaiClient(), CHAIN))) as SdkError;
    expect(error.status).toBe(504);
    expect(error.code).toBe('upstream_timeout');
    expect(headerOf(error, 'x-should-retry')).toBe('false');
    expect(headerOf(error, 'x-fallback-attempts')).toBe('2');
    // One pass of the plan: OpenAI, then Anthropic. The SDK's two retries would have made it six.
    expect(upstreamCalls()).toBe(2);
  });

  test('the Anthropic SDK makes one call too', async () => {
    openai.setSticky(SLOW);
    anthropic.setSticky(SLOW);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: gateway.defaultAdminKey });
    const error = (await rejectionOf(
      client.messages.create({ model: 'gpt-4o', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], routing: CHAIN } as never),
    )) as SdkError;
    expect(error.status).toBe(504);
    expect(headerOf(error, 'x-should-retry')).toBe('false');
    expect(upstreamCalls()).toBe(2);
  });

  test("routing.retries' passes over one key count the same", async () => {
    openai.setSticky(SLOW);
    const error = (await rejectionOf(chatWith(openaiClient(), { strategy: 'direct', retries: 1 }))) as SdkError;
    expect(error.status).toBe(504);
    expect(headerOf(error, 'x-should-retry')).toBe('false');
    expect(upstreamCalls()).toBe(2);
  });

  test('a chain that ends on a timeout after a quick failure says so too', async () => {
    openai.inject({ kind: 'server_error' });
    anthropic.setSticky(SLOW);
    const error = (await rejectionOf(chatWith(openaiClient(), CHAIN))) as SdkError;
    expect(error.status).toBe(504);
    expect(headerOf(error, 'x-should-retry')).toBe('false');
  });
});

describe('left to the SDKs', () => {
  test("a single attempt's timeout: no x-should-retry, and the SDK retries it", async () => {
    openai.setSticky(SLOW);
    const error = (await rejectionOf(chatWith(openaiClient(1), { strategy: 'direct' }))) as SdkError;
    expect(error.status).toBe(504);
    expect(headerOf(error, 'x-should-retry')).toBeNull();
    expect(upstreamCalls()).toBe(2);
  });

  test('a 502 after the whole chain failed quickly', async () => {
    openai.setSticky({ kind: 'server_error' });
    anthropic.setSticky({ kind: 'server_error' });
    const error = (await rejectionOf(chatWith(openaiClient(0), CHAIN))) as SdkError;
    expect(error.status).toBe(502);
    expect(headerOf(error, 'x-should-retry')).toBeNull();
  });

  test('a rate limit at the end of the chain keeps its Retry-After for the SDK', async () => {
    openai.setSticky(SLOW);
    anthropic.inject({ kind: 'rate_limit', retryAfterSeconds: 3 });
    const error = (await rejectionOf(chatWith(openaiClient(0), CHAIN))) as SdkError;
    expect(error.status).toBe(429);
    expect(headerOf(error, 'retry-after')).toBe('3');
    expect(headerOf(error, 'x-should-retry')).toBeNull();
  });
});
