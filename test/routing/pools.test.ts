// Several keys of one provider: weighted balancing, session stickiness, removal of a key its
// provider refuses (and its return once it works again), and the cooldown after a 429.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { attemptsOf, call, chat, errorOf, servedBy, startFleet, startRoutingGateway, storeKeys, type RoutingGateway, type SimulatorFleet } from './harness.ts';

const clock = new ManualClock(Date.now());
let gateway: RoutingGateway;
let fleet: SimulatorFleet;
/** key id → the upstream key it holds, per provider. */
const pools: Record<'openai' | 'anthropic' | 'google', Map<string, string>> = { openai: new Map(), anthropic: new Map(), google: new Map() };

async function addPool(provider: 'openai' | 'anthropic' | 'google', entries: Array<{ apiKey: string; weight: number }>): Promise<string[]> {
  const simulator = fleet.simulators[provider];
  simulator.state.apiKeys.clear();
  for (const entry of entries) simulator.state.apiKeys.add(entry.apiKey);
  const ids: string[] = [];
  // One at a time, so each answer maps a key id to the upstream key it stores.
  for (const entry of entries) {
    const [stored] = await storeKeys(gateway, '/v1/providers/keys', [{ name: provider, api_key: entry.apiKey, weight: entry.weight }]);
    pools[provider].set(stored?.key_id ?? '', entry.apiKey);
    ids.push(stored?.key_id ?? '');
  }
  return ids;
}

/** The upstream key a recorded request carried, whatever the provider's auth header. */
function sentKey(request: SimulatorHandle['state']['requests'][number]): string | undefined {
  return request.headers['x-api-key'] ?? request.headers['x-goog-api-key'] ?? request.headers.authorization?.replace(/^Bearer /, '');
}

let openaiHeavy: string;
let openaiLight: string;
let anthropicKeys: string[];
let googleKeys: string[];

beforeAll(async () => {
  fleet = startFleet('pool');
  gateway = await startRoutingGateway({ env: fleet.environment(), clock });
  [openaiHeavy = '', openaiLight = ''] = await addPool('openai', [
    { apiKey: 'pool-openai-heavy', weight: 3 },
    { apiKey: 'pool-openai-light', weight: 1 },
  ]);
  anthropicKeys = await addPool('anthropic', [
    { apiKey: 'pool-anthropic-one', weight: 1 },
    { apiKey: 'pool-anthropic-two', weight: 1 },
  ]);
  googleKeys = await addPool('google', [
    { apiKey: 'pool-google-one', weight: 1 },
    { apiKey: 'pool-google-two', weight: 1 },
  ]);
});

afterAll(async () => {
  await gateway.stop();
  await fleet.stop();
});

beforeEach(() => fleet.reset());

/** Runs requests a batch at a time (the pool decision is per request, so order does not matter). */
async function servedKeys(count: number, request: (index: number) => Promise<Response>): Promise<string[]> {
  const keys: string[] = [];
  for (let start = 0; start < count; start += 25) {
    const batch = await Promise.all(Array.from({ length: Math.min(25, count - start) }, (_unused, offset) => request(start + offset)));
    for (const response of batch) {
      expect(response.status).toBe(200);
      keys.push(servedBy(response).keyId ?? 'none');
      await response.arrayBuffer();
    }
  }
  return keys;
}

const share = (keys: readonly string[], keyId: string): number => (100 * keys.filter((key) => key === keyId).length) / keys.length;

describe('weights', () => {
  test('weights 3 and 1 over 400 sessions split about 75/25 (±10 points)', async () => {
    const keys = await servedKeys(400, (index) => chat(gateway, { model: 'gpt-4o' }, { 'X-Session-Id': `session-${index}` }));
    expect(Math.abs(share(keys, openaiHeavy) - 75)).toBeLessThanOrEqual(10);
    expect(share(keys, openaiHeavy) + share(keys, openaiLight)).toBe(100);
  });

  test('without a session, weighted random gives the same split (±10 points)', async () => {
    const keys = await servedKeys(400, () => chat(gateway, { model: 'gpt-4o' }));
    expect(Math.abs(share(keys, openaiHeavy) - 75)).toBeLessThanOrEqual(10);
  });

  test('X-Key-Id names the credential that was really sent upstream', async () => {
    const keys = await servedKeys(20, (index) => chat(gateway, { model: 'gpt-4o' }, { 'X-Session-Id': `which-${index}` }));
    const sent = fleet.simulators.openai.inferenceRequests().map(sentKey);
    // Concurrent batches reach the simulator in any order: compare as multisets.
    expect([...sent].sort()).toEqual(keys.map((keyId) => pools.openai.get(keyId)).sort());
  });
});

describe('stickiness', () => {
  test('the same `user` always lands on one key (50 requests)', async () => {
    const keys = await servedKeys(50, () => chat(gateway, { model: 'gpt-4o', user: 'user-alice' }));
    expect(new Set(keys).size).toBe(1);
    expect(new Set(fleet.simulators.openai.inferenceRequests().map(sentKey)).size).toBe(1);
  });

  test('the same X-Session-Id always lands on one key (50 requests)', async () => {
    const keys = await servedKeys(50, () => chat(gateway, { model: 'gpt-4o' }, { 'X-Session-Id': 'conversation-42' }));
    expect(new Set(keys).size).toBe(1);
  });

  test('different sessions do spread over the pool', async () => {
    const keys = await servedKeys(40, (index) => chat(gateway, { model: 'gpt-4o', user: `user-${index}` }));
    expect(new Set(keys).size).toBe(2);
  });
});

describe('a key its provider refuses', () => {
  const [oneApiKey, twoApiKey] = ['pool-anthropic-one', 'pool-anthropic-two'];
  const model = 'claude-sonnet-4-5';

  async function providerStatus(keyId: string): Promise<string | undefined> {
    const listing = (await (await call(gateway, 'GET', '/v1/providers')).json()) as { providers: Array<{ key_id: string; status: string }> };
    return listing.providers.find((entry) => entry.key_id === keyId)?.status;
  }

  test('is taken out of rotation (502 provider_key_rejected, never 401), listed invalid, and comes back once it works', async () => {
    const [one = '', two = ''] = anthropicKeys;
    fleet.simulators.anthropic.state.apiKeys.delete(oneApiKey);
    // Find a session whose first choice is the revoked key.
    let rejected: Response | undefined;
    for (let index = 0; index < 40 && rejected === undefined; index++) {
      const response = await chat(gateway, { model }, { 'X-Session-Id': `revoked-${index}` });
      if (response.status !== 200) rejected = response;
      else await response.arrayBuffer();
    }
    expect(rejected?.status).toBe(502);
    const error = await errorOf(rejected as Response);
    expect(error.code).toBe('provider_key_rejected');
    expect(error.message).not.toContain(oneApiKey);

    expect(await providerStatus(one)).toBe('invalid');
    const health = (await (await call(gateway, 'GET', '/v1/providers/health')).json()) as {
      providers: Array<{ name: string; issues: string[]; keys: Array<{ key_id: string; status: string }> }>;
    };
    const anthropic = health.providers.find((entry) => entry.name === 'anthropic');
    expect(anthropic?.issues.some((issue) => issue.includes(one) && issue.includes('rejected'))).toBe(true);
    expect(anthropic?.keys.find((key) => key.key_id === one)?.status).toBe('invalid');

    fleet.simulators.anthropic.reset();
    const keys = await servedKeys(40, (index) => chat(gateway, { model }, { 'X-Session-Id': `after-${index}` }));
    expect(new Set(keys)).toEqual(new Set([two]));
    expect(new Set(fleet.simulators.anthropic.inferenceRequests().map(sentKey))).toEqual(new Set([twoApiKey]));

    // The key works again: the listing (GET /v1/providers re-checks flagged keys) restores it.
    fleet.simulators.anthropic.state.apiKeys.add(oneApiKey);
    expect(await providerStatus(one)).toBe('active');
    let back = false;
    for (let index = 0; index < 40 && !back; index++) {
      const response = await chat(gateway, { model }, { 'X-Session-Id': `restored-${index}` });
      back = servedBy(response).keyId === one;
      await response.arrayBuffer();
      if (!back) await Bun.sleep(10);
    }
    expect(back).toBe(true);
  });

  test('with auth_error among fallback_reasons the next key of the pool serves the same request', async () => {
    const [one = '', two = ''] = anthropicKeys;
    fleet.simulators.anthropic.state.apiKeys.delete(oneApiKey);
    try {
      let served: Response | undefined;
      for (let index = 0; index < 40 && served === undefined; index++) {
        const response = await chat(
          gateway,
          { model, routing: { strategy: 'byok_preferred', fallback_reasons: ['auth_error', 'server_error'] } },
          { 'X-Session-Id': `listed-${index}` },
        );
        if (servedBy(response).fallbackAttempts === '1') served = response;
        else await response.arrayBuffer();
      }
      expect(served?.status).toBe(200);
      expect(servedBy(served as Response).keyId).toBe(two);
      expect(fleet.simulators.anthropic.inferenceRequests().filter((request) => sentKey(request) === oneApiKey)).toHaveLength(1);
    } finally {
      fleet.simulators.anthropic.state.apiKeys.add(oneApiKey);
      expect(
        await (async () => {
          for (let tries = 0; tries < 20; tries++) if ((await providerStatus(one)) === 'active') return true;
          return false;
        })(),
      ).toBe(true);
    }
  });
});

describe('a 429 with Retry-After', () => {
  test('puts the key last for exactly that long, without taking it out', async () => {
    const session = { 'X-Session-Id': 'cooldown-session' };
    const before = await chat(gateway, { model: 'gemini-2.5-flash' }, session);
    const first = servedBy(before).keyId ?? '';
    const second = googleKeys.find((key) => key !== first) ?? '';
    fleet.reset();

    fleet.simulators.google.inject({ kind: 'rate_limit', retryAfterSeconds: 30 });
    const limited = await chat(gateway, { model: 'gemini-2.5-flash' }, session);
    expect(servedBy(limited)).toMatchObject({ keyId: second, fallbackAttempts: '1' });
    expect(fleet.upstreamCounts()).toEqual(attemptsOf({ google: 2 }));

    const health = (await (await call(gateway, 'GET', '/v1/providers/health')).json()) as {
      providers: Array<{ name: string; keys: Array<{ key_id: string; status: string; cooldown_until: string | null }> }>;
    };
    const cooling = health.providers.find((entry) => entry.name === 'google')?.keys.find((key) => key.key_id === first);
    expect(cooling?.status).toBe('rate_limited');
    expect(cooling?.cooldown_until).toBe(new Date(clock.now() + 30_000).toISOString());

    // Every session now starts on the other key, with no failed attempt first.
    const during = await servedKeys(30, (index) =>
      chat(gateway, { model: 'gemini-2.5-flash' }, { 'X-Session-Id': index === 0 ? 'cooldown-session' : `cooling-${index}` }),
    );
    expect(new Set(during)).toEqual(new Set([second]));

    // Last, not out: when the other key fails too, the cooling key is still tried.
    fleet.simulators.google.inject({ kind: 'server_error' });
    const stillTried = await chat(gateway, { model: 'gemini-2.5-flash' }, session);
    expect(servedBy(stillTried)).toMatchObject({ keyId: first, fallbackAttempts: '1' });

    clock.advance(29_000);
    expect(servedBy(await chat(gateway, { model: 'gemini-2.5-flash' }, session)).keyId).toBe(second);
    clock.advance(2_000);
    expect(servedBy(await chat(gateway, { model: 'gemini-2.5-flash' }, session)).keyId).toBe(first);
  });
});
