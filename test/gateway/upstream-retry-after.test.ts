// An upstream's Retry-After on its way to the client (QA14, finding 8): a far-future HTTP date used to
// be passed on as about 73 years of seconds (and cooled the key for as long); it is held to a day. One
// that says nothing usable is not passed on at all.

import { beforeEach, describe, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { openAIGatewaySuite } from '../helpers/openai-gateway.ts';

const UPSTREAM_KEY = 'sk-proj-RetryAfterUpstreamKey00000000001';
const DAY_SECONDS = 86_400;
const suite = openAIGatewaySuite(UPSTREAM_KEY);

beforeEach(() => suite.simulator.reset());

const RATE_LIMITED = { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } };

async function rateLimitedWith(retryAfter: string): Promise<Response> {
  suite.simulator.inject({ kind: 'status', status: 429, body: RATE_LIMITED, headers: { 'retry-after': retryAfter } });
  const response = await call(suite.gateway, 'POST', '/v1/chat/completions', {
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'hi' }],
    routing: { strategy: 'direct' },
  });
  await response.text();
  return response;
}

describe("an upstream 429's Retry-After", () => {
  test('a date in 2099 reaches the client as one day, and cools the key for no longer', async () => {
    const before = Date.now();
    const response = await rateLimitedWith('Wed, 21 Oct 2099 07:28:00 GMT');
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe(String(DAY_SECONDS));
    const health = (await (await call(suite.gateway, 'GET', '/v1/providers/health')).json()) as {
      providers: Array<{ name: string; keys: Array<{ cooldown_until: string | null }> }>;
    };
    const cooldown = health.providers.find((provider) => provider.name === 'openai')?.keys[0]?.cooldown_until;
    expect(cooldown).toBeString();
    expect(Date.parse(cooldown as string)).toBeLessThanOrEqual(Date.now() + DAY_SECONDS * 1000 + 1_000);
    expect(Date.parse(cooldown as string)).toBeGreaterThanOrEqual(before + (DAY_SECONDS - 5) * 1000);
  });

  test('seconds within a day pass as sent', async () => {
    expect((await rateLimitedWith('7')).headers.get('retry-after')).toBe('7');
  });

  test('a value that is neither seconds nor a date is not passed on', async () => {
    for (const value of ['soon', '-5', '0x10']) {
      const response = await rateLimitedWith(value);
      expect(response.status).toBe(429);
      expect([value, response.headers.get('retry-after')]).toEqual([value, null]);
    }
  });
});
