// Pure unit tests of key pools and the two planning strategies, on hand-built RoutePlanInput
// objects: no gateway, no simulators.

import { describe, expect, test } from 'bun:test';
import type { ProviderKeyRecord, RoutePlanInput } from '../../core/spec/plugin.ts';
import type { RoutingOptions } from '../../core/spec/vocabulary.ts';
import { planCostOptimized } from '../../plugins/strategies/cost-optimized.ts';
import { planFallbackChain } from '../../plugins/strategies/fallback-chain.ts';
import { orderPool } from '../../plugins/strategies/keys.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const key = (id: string, provider: string, owner: 'account' | 'platform' = 'account', weight = 1): ProviderKeyRecord => ({
  id,
  provider,
  owner,
  accountId: owner === 'account' ? 'acme' : null,
  organizationId: undefined,
  settings: {},
  status: 'active',
  weight,
});

interface InputOptions {
  routing?: RoutingOptions;
  account?: ProviderKeyRecord[];
  platform?: ProviderKeyRecord[];
  unavailable?: string[];
  cooling?: string[];
  stickyKey?: string;
  provider?: string;
  model?: string;
  equivalents?: Record<string, string>;
  prices?: Record<string, number>;
  markup?: number;
}

function group(keys: readonly ProviderKeyRecord[]): Map<string, ProviderKeyRecord[]> {
  const byProvider = new Map<string, ProviderKeyRecord[]>();
  for (const record of keys) byProvider.set(record.provider, [...(byProvider.get(record.provider) ?? []), record]);
  return byProvider;
}

function input(options: InputOptions = {}): RoutePlanInput {
  const model = options.model ?? 'gpt-4';
  return {
    request: { model, messages: [{ role: 'user', content: 'hi' }] },
    resolution: { provider: options.provider ?? 'openai', model, explicit: false },
    routing: options.routing ?? {},
    keys: { account: group(options.account ?? []), platform: group(options.platform ?? []) },
    isAvailable: (record) => !(options.unavailable ?? []).includes(record.id),
    isCoolingDown: (record) => (options.cooling ?? []).includes(record.id),
    stickyKey: options.stickyKey,
    equivalents: options.equivalents === undefined ? undefined : new Map(Object.entries(options.equivalents)),
    price: (provider, priced) => options.prices?.[`${provider}/${priced}`],
    platformMarkupPercent: options.markup ?? 5,
  };
}

const ids = (records: ReadonlyArray<{ id: string } | { key: { id: string } }>): string[] =>
  records.map((record) => ('key' in record ? record.key.id : record.id));

describe('orderPool', () => {
  const heavy = key('heavy', 'openai', 'account', 3);
  const light = key('light', 'openai', 'account', 1);

  test('no keys, no order; unavailable keys are left out', () => {
    expect(orderPool(undefined, input())).toEqual([]);
    expect(orderPool([], input())).toEqual([]);
    expect(ids(orderPool([heavy, light], input({ unavailable: ['heavy'] })))).toEqual(['light']);
  });

  test('weights 3 and 1: the heavy key leads about 75% of the time', () => {
    const random = seededRandom(7);
    let leads = 0;
    for (let round = 0; round < 10_000; round++) if (orderPool([heavy, light], input(), random)[0]?.id === 'heavy') leads++;
    expect(leads / 10_000).toBeGreaterThan(0.73);
    expect(leads / 10_000).toBeLessThan(0.77);
  });

  test('sticky: a session always gets the same order, without using randomness', () => {
    const noRandom = () => {
      throw new Error('a sticky order must not use randomness');
    };
    const first = ids(orderPool([heavy, light], input({ stickyKey: 'session-1' }), noRandom));
    for (let round = 0; round < 50; round++) expect(ids(orderPool([light, heavy], input({ stickyKey: 'session-1' }), noRandom))).toEqual(first);
  });

  test('sticky across sessions still honours the weights', () => {
    let leads = 0;
    for (let session = 0; session < 4_000; session++) if (orderPool([heavy, light], input({ stickyKey: `session-${session}` }))[0]?.id === 'heavy') leads++;
    expect(leads / 4_000).toBeGreaterThan(0.72);
    expect(leads / 4_000).toBeLessThan(0.78);
  });

  test('a cooling key goes last, whatever its weight or the session', () => {
    for (let session = 0; session < 50; session++) {
      expect(ids(orderPool([heavy, light], input({ stickyKey: `s${session}`, cooling: ['heavy'] })))).toEqual(['light', 'heavy']);
    }
  });
});

const FLAGSHIP = { openai: 'gpt-5', anthropic: 'claude-opus-4-5', google: 'gemini-2.5-pro' };
const ACCOUNT = [key('acct-openai', 'openai'), key('acct-anthropic', 'anthropic'), key('acct-google', 'google')];
const PLATFORM = [
  key('plat-openai', 'openai', 'platform'),
  key('plat-anthropic', 'anthropic', 'platform'),
  key('plat-google', 'google', 'platform'),
  key('plat-cohere', 'cohere', 'platform'),
];

describe('planFallbackChain', () => {
  const seed: RoutingOptions = { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic', 'google', 'parrotrouter'] };

  test("the seed's order: account keys in turn with each provider's equivalent, then platform keys in the chain's order", () => {
    const plan = planFallbackChain(input({ routing: seed, account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP }));
    expect(plan.map((candidate) => [candidate.provider, candidate.model, candidate.key.id])).toEqual([
      ['openai', 'gpt-4', 'acct-openai'],
      ['anthropic', 'claude-opus-4-5', 'acct-anthropic'],
      ['google', 'gemini-2.5-pro', 'acct-google'],
      ['openai', 'gpt-4', 'plat-openai'],
      ['anthropic', 'claude-opus-4-5', 'plat-anthropic'],
      ['google', 'gemini-2.5-pro', 'plat-google'],
    ]);
  });

  test('no platform key without a platform entry, nor under use_byok_only', () => {
    const withoutEntry = planFallbackChain(
      input({ routing: { provider_order: ['openai', 'anthropic'] }, account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP }),
    );
    expect(withoutEntry.every((candidate) => candidate.key.owner === 'account')).toBe(true);
    const byokOnly = planFallbackChain(input({ routing: { ...seed, use_byok_only: true }, account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP }));
    expect(ids(byokOnly)).toEqual(['acct-openai', 'acct-anthropic', 'acct-google']);
  });

  test('"platform" works like "parrotrouter"; alone it means the platform keys of the default order', () => {
    const alone = planFallbackChain(input({ routing: { provider_order: ['platform'] }, account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP }));
    expect(ids(alone)).toEqual(['plat-openai', 'plat-anthropic', 'plat-google']);
  });

  test('providers without an equivalent, or without usable keys, are skipped; keys appear once', () => {
    const plan = planFallbackChain(
      input({ routing: { provider_order: ['mistral', 'google', 'openai', 'google'] }, account: ACCOUNT, equivalents: FLAGSHIP, unavailable: ['acct-openai'] }),
    );
    expect(ids(plan)).toEqual(['acct-google']);
  });

  test("without provider_order: the model's provider, then the class's providers the account holds keys for", () => {
    const plan = planFallbackChain(
      input({
        account: [ACCOUNT[2] as ProviderKeyRecord, ACCOUNT[0] as ProviderKeyRecord],
        platform: PLATFORM,
        equivalents: { ...FLAGSHIP, cohere: 'command-a-03-2025' },
      }),
    );
    expect(plan.map((candidate) => candidate.provider)).toEqual(['openai', 'google']);
  });
});

describe('planCostOptimized', () => {
  // Per-token list prices, chosen so weights decide the order.
  const prices = { 'openai/gpt-4': 90, 'openai/gpt-5': 11, 'anthropic/claude-opus-4-5': 30, 'google/gemini-2.5-pro': 12 };

  test('cheapest effective price (list × weight) first', () => {
    const plain = planCostOptimized(input({ account: ACCOUNT, equivalents: FLAGSHIP, prices, model: 'gpt-5' }));
    expect(ids(plain)).toEqual(['acct-openai', 'acct-google', 'acct-anthropic']);
    const weighted = planCostOptimized(
      input({ routing: { cost_weights: { openai: 2, anthropic: 0.3 } }, account: ACCOUNT, equivalents: FLAGSHIP, prices, model: 'gpt-5' }),
    );
    expect(ids(weighted)).toEqual(['acct-anthropic', 'acct-google', 'acct-openai']);
  });

  test('a weight stored as null (an Infinity written before they were refused) is the default 1, not the cheapest', () => {
    const weights = { google: null } as unknown as Record<string, number>;
    const plan = planCostOptimized(input({ routing: { cost_weights: weights }, account: ACCOUNT, equivalents: FLAGSHIP, prices, model: 'gpt-5' }));
    expect(ids(plan)).toEqual(['acct-openai', 'acct-google', 'acct-anthropic']);
  });

  test('the requested provider keeps the requested model (and its price)', () => {
    const plan = planCostOptimized(input({ account: ACCOUNT, equivalents: FLAGSHIP, prices, model: 'gpt-4' }));
    expect(plan.map((candidate) => `${candidate.provider}/${candidate.model}`)).toEqual(['google/gemini-2.5-pro', 'anthropic/claude-opus-4-5', 'openai/gpt-4']);
  });

  test('platform keys only with fallback_to_parrotrouter (not under use_byok_only), at list × (1 + markup)', () => {
    expect(
      planCostOptimized(input({ account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP, prices, model: 'gpt-5' })).every(
        (candidate) => candidate.key.owner === 'account',
      ),
    ).toBe(true);
    const denied = planCostOptimized(
      input({
        routing: { fallback_to_parrotrouter: true, use_byok_only: true },
        account: ACCOUNT,
        platform: PLATFORM,
        equivalents: FLAGSHIP,
        prices,
        model: 'gpt-5',
      }),
    );
    expect(denied.every((candidate) => candidate.key.owner === 'account')).toBe(true);
    const allowed = planCostOptimized(
      input({ routing: { fallback_to_parrotrouter: true }, account: ACCOUNT, platform: PLATFORM, equivalents: FLAGSHIP, prices, model: 'gpt-5', markup: 10 }),
    );
    // openai 11, platform openai 12.1, google 12, platform google 13.2, anthropic 30, platform anthropic 33.
    expect(ids(allowed)).toEqual(['acct-openai', 'acct-google', 'plat-openai', 'plat-google', 'acct-anthropic', 'plat-anthropic']);
  });

  test('prefer_byok breaks a tie in favour of the account key', () => {
    const tie = {
      routing: { fallback_to_parrotrouter: true, cost_weights: { google: 0.5 } },
      account: [ACCOUNT[2] as ProviderKeyRecord],
      platform: [PLATFORM[0] as ProviderKeyRecord],
      equivalents: FLAGSHIP,
      prices: { 'openai/gpt-5': 10, 'google/gemini-2.5-pro': 20 },
      model: 'gpt-5',
      markup: 0,
    };
    expect(ids(planCostOptimized(input(tie)))).toEqual(['acct-google', 'plat-openai']);
    expect(ids(planCostOptimized(input({ ...tie, routing: { ...tie.routing, prefer_byok: false } })))).toEqual(['plat-openai', 'acct-google']);
  });

  test('models without a list price go last', () => {
    const plan = planCostOptimized(input({ account: ACCOUNT, equivalents: FLAGSHIP, prices: { 'anthropic/claude-opus-4-5': 30 }, model: 'gpt-5' }));
    expect(ids(plan)[0]).toBe('acct-anthropic');
  });
});
