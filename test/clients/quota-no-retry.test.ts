// An exhausted quota or billing limit (OpenAI insufficient_quota, Anthropic's credit balance, Cohere's
// 402…) cannot succeed on a retry. The official SDKs, left at their default retries, retry every 429
// without Retry-After unless `x-should-retry: false` says not to: one client call, one upstream call.

import { describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { rejectionOf, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld();

interface SdkError {
  status?: number;
  headers?: Headers | Record<string, string>;
}

function headerOf(error: SdkError, name: string): string | null | undefined {
  const headers = error.headers;
  return headers instanceof Headers ? headers.get(name) : headers?.[name];
}

describe.each(PROVIDER_DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model] as const))(
  'a quota fault at %s (%s), through the official SDKs at their default retries',
  (provider, model) => {
    test('the OpenAI SDK makes one call: 429 upstream_quota_exceeded with x-should-retry: false', async () => {
      const simulator = world().simulator(provider);
      simulator.setSticky({ kind: 'quota' });
      const client = new OpenAI({ baseURL: `${world().gateway.url}/v1`, apiKey: world().gateway.defaultAdminKey });
      const error = (await rejectionOf(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }))) as SdkError & {
        code?: string;
      };
      expect(error.status).toBe(429);
      expect(error.code).toBe('upstream_quota_exceeded');
      expect(headerOf(error, 'x-should-retry')).toBe('false');
      expect(simulator.inferenceRequests()).toHaveLength(1);
    });

    test('the Anthropic SDK makes one call too', async () => {
      const simulator = world().simulator(provider);
      simulator.setSticky({ kind: 'quota' });
      const client = new Anthropic({ baseURL: world().gateway.url, apiKey: world().gateway.defaultAdminKey });
      const error = (await rejectionOf(client.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }))) as SdkError;
      expect(error.status).toBe(429);
      expect(headerOf(error, 'x-should-retry')).toBe('false');
      expect(simulator.inferenceRequests()).toHaveLength(1);
    });
  },
);

test('a rate limit without Retry-After is still left to the SDKs to retry (no x-should-retry)', async () => {
  const simulator = world().simulator('openai');
  simulator.inject({ kind: 'rate_limit' });
  const client = new OpenAI({ baseURL: `${world().gateway.url}/v1`, apiKey: world().gateway.defaultAdminKey, maxRetries: 0 });
  const error = (await rejectionOf(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }))) as SdkError;
  expect(error.status).toBe(429);
  expect(headerOf(error, 'x-should-retry')).toBeNull();
});
