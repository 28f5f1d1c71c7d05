// The routing-strategy conformance suite: a strategy plugin, set up the way the gateway sets it up,
// planned over a few hundred synthetic worlds (keys, availability, routing options, model
// resolutions) and checked against the rules every strategy must keep whatever order it chooses.
// A third-party author runs it from a test file of their own:
//
//   describeStrategyConformance('my strategy', myStrategyPlugin);

import { beforeAll, describe, expect, test } from 'bun:test';
import { tmpdir } from 'node:os';
import { createLogger } from '../../core/logger.ts';
import { loadPlugins } from '../../core/registry.ts';
import { standaloneServices } from '../../core/services.ts';
import type {
  KeyOwner,
  ModelResolution,
  PluginDefinition,
  ProviderKeyRecord,
  RouteCandidate,
  RoutePlanInput,
  RoutingStrategy,
} from '../../core/spec/plugin.ts';
import { PLATFORM_NAMES } from '../../core/spec/strategy.ts';
import type { RoutingOptions } from '../../core/spec/vocabulary.ts';

/** One synthetic situation a strategy is planned in; keys are referred to by id. */
export interface StrategyWorld {
  name: string;
  routing: RoutingOptions;
  resolution: ModelResolution;
  accountKeys: readonly ProviderKeyRecord[];
  platformKeys: readonly ProviderKeyRecord[];
  unavailable: ReadonlySet<string>;
  coolingDown: ReadonlySet<string>;
  stickyKey: string | undefined;
  equivalents: ReadonlyMap<string, string> | undefined;
}

export interface StrategyConformanceOptions {
  /** The plugin's configuration, as the `plugins` section of KEYWAY_CONFIG would give it. */
  config?: Record<string, unknown>;
  /** Worlds of the author's own, checked against the same rules as the suite's. */
  worlds?: readonly StrategyWorld[];
}

export function keyRecord(id: string, provider: string, owner: KeyOwner, weight = 1): ProviderKeyRecord {
  return {
    id,
    provider,
    owner,
    accountId: owner === 'account' ? 'account-conformance' : null,
    organizationId: undefined,
    settings: {},
    status: 'active',
    weight,
  };
}

const ACCOUNT_KEYS: readonly ProviderKeyRecord[] = [
  keyRecord('account-openai-1', 'openai', 'account'),
  keyRecord('account-openai-2', 'openai', 'account', 2),
  keyRecord('account-openai-3', 'openai', 'account'),
  keyRecord('account-anthropic-1', 'anthropic', 'account'),
  keyRecord('account-anthropic-2', 'anthropic', 'account', 3),
  keyRecord('account-google-1', 'google', 'account'),
];

// Cohere has platform keys only: a strategy must not reach for them to fill an empty account pool.
const PLATFORM_KEYS: readonly ProviderKeyRecord[] = [
  keyRecord('platform-openai-1', 'openai', 'platform'),
  keyRecord('platform-openai-2', 'openai', 'platform'),
  keyRecord('platform-anthropic-1', 'anthropic', 'platform'),
  keyRecord('platform-google-1', 'google', 'platform'),
  keyRecord('platform-cohere-1', 'cohere', 'platform'),
];

const EQUIVALENTS: ReadonlyMap<string, string> = new Map([
  ['openai', 'gpt-4o'],
  ['anthropic', 'claude-sonnet-4'],
  ['google', 'gemini-2.5-pro'],
  ['cohere', 'command-a'],
]);

/** List prices per token; Cohere's model is unpriced on purpose (cost strategies must still cope). */
const PRICES: ReadonlyMap<string, number> = new Map([
  ['openai/gpt-4o', 0.0000125],
  ['anthropic/claude-sonnet-4', 0.000018],
  ['google/gemini-2.5-pro', 0.00001125],
]);

const ROUTINGS: ReadonlyArray<readonly [string, RoutingOptions]> = [
  ['no routing options', {}],
  ['fallback_to_parrotrouter', { fallback_to_parrotrouter: true }],
  ['fallback_to_parrotrouter under use_byok_only', { fallback_to_parrotrouter: true, use_byok_only: true }],
  ['use_byok_only', { use_byok_only: true }],
  ['provider_order with parrotrouter', { provider_order: ['anthropic', 'openai', 'parrotrouter'] }],
  ['provider_order with platform under use_byok_only', { provider_order: ['openai', 'platform'], use_byok_only: true }],
  ['provider_order of account providers', { provider_order: ['google', 'openai'] }],
  ['cost weights, prefer_byok false, platform allowed', { prefer_byok: false, fallback_to_parrotrouter: true, cost_weights: { openai: 0.5, google: 2 } }],
];

const RESOLUTIONS: ReadonlyArray<readonly [string, ModelResolution]> = [
  ['openai/gpt-4o', { provider: 'openai', model: 'gpt-4o', explicit: true }],
  ['claude-sonnet-4', { provider: 'anthropic', model: 'claude-sonnet-4', explicit: false }],
  ['parrotrouter/gpt-4o', { provider: undefined, model: 'gpt-4o', explicit: false }],
  ['cohere/command-a (platform keys only)', { provider: 'cohere', model: 'command-a', explicit: true }],
];

const AVAILABILITIES: ReadonlyArray<readonly [string, ReadonlySet<string>, ReadonlySet<string>]> = [
  ['all keys available', new Set(), new Set()],
  [
    'some keys unavailable or cooling',
    new Set(['account-openai-1', 'account-anthropic-2', 'platform-openai-1']),
    new Set(['account-openai-2', 'platform-openai-2']),
  ],
  ['no key available', new Set([...ACCOUNT_KEYS, ...PLATFORM_KEYS].map((key) => key.id)), new Set()],
];

/** Every combination of the tables above: 384 worlds. */
export function conformanceWorlds(): StrategyWorld[] {
  const worlds: StrategyWorld[] = [];
  for (const [routingName, routing] of ROUTINGS) {
    for (const [resolutionName, resolution] of RESOLUTIONS) {
      for (const [availabilityName, unavailable, coolingDown] of AVAILABILITIES) {
        for (const equivalents of [EQUIVALENTS, undefined]) {
          for (const stickyKey of ['session-42', undefined]) {
            const name = `${resolutionName}, ${routingName}, ${availabilityName}, ${equivalents ? 'with' : 'no'} equivalents, ${stickyKey ? 'sticky' : 'not sticky'}`;
            worlds.push({
              name,
              routing,
              resolution,
              accountKeys: ACCOUNT_KEYS,
              platformKeys: PLATFORM_KEYS,
              unavailable,
              coolingDown,
              stickyKey,
              equivalents,
            });
          }
        }
      }
    }
  }
  return worlds;
}

function deepFreeze<Value>(value: Value): Value {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  for (const field of Object.values(value)) deepFreeze(field);
  return Object.freeze(value);
}

function poolsByProvider(keys: readonly ProviderKeyRecord[]): Map<string, readonly ProviderKeyRecord[]> {
  const pools = new Map<string, ProviderKeyRecord[]>();
  for (const key of keys) pools.set(key.provider, [...(pools.get(key.provider) ?? []), key]);
  return new Map([...pools].map(([provider, pool]) => [provider, deepFreeze(pool)]));
}

/**
 * A fresh, frozen RoutePlanInput for a world: records, arrays and options are frozen so a strategy
 * that writes to them throws; Maps cannot be frozen, so `snapshotInput` catches writes to those.
 */
export function planInputOf(world: StrategyWorld): RoutePlanInput {
  const routing = deepFreeze(structuredClone(world.routing));
  const request = deepFreeze({ model: world.resolution.model, messages: [{ role: 'user' as const, content: 'Hello from the strategy suite' }], routing });
  return {
    request,
    resolution: deepFreeze({ ...world.resolution }),
    routing,
    keys: {
      account: poolsByProvider(world.accountKeys.map((key) => structuredClone(key))),
      platform: poolsByProvider(world.platformKeys.map((key) => structuredClone(key))),
    },
    isAvailable: (key) => !world.unavailable.has(key.id),
    isCoolingDown: (key) => world.coolingDown.has(key.id),
    stickyKey: world.stickyKey,
    equivalents: world.equivalents === undefined ? undefined : new Map(world.equivalents),
    price: (provider, model) => PRICES.get(`${provider}/${model}`),
    platformMarkupPercent: 5,
  };
}

function snapshotInput(input: RoutePlanInput): string {
  const pools = (map: RoutePlanInput['keys']['account']) => [...map].map(([provider, keys]) => [provider, keys]);
  return JSON.stringify({
    request: input.request,
    resolution: input.resolution,
    routing: input.routing,
    account: pools(input.keys.account),
    platform: pools(input.keys.platform),
    equivalents: input.equivalents === undefined ? null : [...input.equivalents],
  });
}

/** The request's documented permission to use platform keys (docs/routing.md, "Platform keys"). */
function platformPermitted(routing: RoutingOptions): boolean {
  if (routing.use_byok_only === true) return false;
  return routing.fallback_to_parrotrouter === true || (routing.provider_order ?? []).some((entry) => PLATFORM_NAMES.has(entry));
}

function describeCandidate(candidate: RouteCandidate): string {
  return `${String(candidate.provider)}/${String(candidate.model)}@${String(candidate.key?.id)}`;
}

type Planned = { input: RoutePlanInput; candidates: RouteCandidate[] } | { failure: string };

/** Plans once on a fresh input; a throw, a promise or a non-array is a failure, not an exception. */
function planIn(strategy: RoutingStrategy, world: StrategyWorld): Planned {
  const input = planInputOf(world);
  let result: unknown;
  try {
    result = strategy.plan(input);
  } catch (error) {
    return { failure: `${world.name}: plan threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` };
  }
  if (!Array.isArray(result))
    return {
      failure: `${world.name}: plan returned ${typeof (result as { then?: unknown })?.then === 'function' ? 'a promise' : typeof result}, not an array`,
    };
  return { input, candidates: result as RouteCandidate[] };
}

/** A rule: the problems it finds in one world's plan, or none. */
type Rule = (world: StrategyWorld, input: RoutePlanInput, candidates: RouteCandidate[]) => string[];

const onlyInputKeys: Rule = (world, input, candidates) => {
  const given = new Set([...input.keys.account.values(), ...input.keys.platform.values()].flat());
  return candidates
    .filter((candidate) => !given.has(candidate.key))
    .map((candidate) => `${world.name}: ${describeCandidate(candidate)} is not a key record of input.keys`);
};

const onlyAvailableKeys: Rule = (world, input, candidates) =>
  candidates
    .filter((candidate) => candidate.key !== undefined && !input.isAvailable(candidate.key))
    .map((candidate) => `${world.name}: ${describeCandidate(candidate)} is unavailable`);

const platformOnlyWithPermission: Rule = (world, input, candidates) => {
  if (platformPermitted(input.routing)) return [];
  const platform = new Set([...input.keys.platform.values()].flat());
  return candidates
    .filter((candidate) => platform.has(candidate.key))
    .map((candidate) => `${world.name}: ${describeCandidate(candidate)} is a platform key the request did not allow`);
};

const wellFormed: Rule = (world, _input, candidates) =>
  candidates
    .filter(
      (candidate) =>
        typeof candidate.provider !== 'string' ||
        typeof candidate.model !== 'string' ||
        candidate.model.length === 0 ||
        candidate.key?.provider !== candidate.provider,
    )
    .map((candidate) => `${world.name}: ${describeCandidate(candidate)} needs a string provider, a non-empty model and a key of that provider`);

const noDuplicates: Rule = (world, _input, candidates) => {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const candidate of candidates) {
    const pair = `${candidate.provider}\u0000${candidate.key?.id}`;
    if (seen.has(pair)) problems.push(`${world.name}: ${describeCandidate(candidate)} appears twice`);
    seen.add(pair);
  }
  return problems;
};

/** Runs a rule over every world, collecting all violations so a failure lists each world it broke in. */
function violationsOf(strategy: RoutingStrategy, worlds: readonly StrategyWorld[], rule: Rule): string[] {
  return worlds.flatMap((world) => {
    const planned = planIn(strategy, world);
    return 'failure' in planned ? [planned.failure] : rule(world, planned.input, planned.candidates);
  });
}

/** `loadPlugins` over the one plugin, with standalone services: the path the gateway takes. */
async function setUpStrategy(plugin: PluginDefinition, config: Record<string, unknown> | undefined): Promise<RoutingStrategy[]> {
  const logger = createLogger('silent');
  const set = await loadPlugins([{ definition: plugin, source: 'conformance' }], {
    logger,
    fetch: globalThis.fetch,
    env: {},
    dataDirectory: tmpdir(),
    config: config === undefined ? {} : { [plugin.name]: config },
    services: standaloneServices({ logger }),
  });
  return [...set.strategies.values()];
}

export function describeStrategyConformance(name: string, plugin: PluginDefinition, options: StrategyConformanceOptions = {}): void {
  describe(`strategy conformance: ${name}`, () => {
    const worlds = [...conformanceWorlds(), ...(options.worlds ?? [])];
    let strategies: RoutingStrategy[] = [];
    const strategy = (): RoutingStrategy => {
      const [only] = strategies;
      if (only === undefined) throw new Error(`plugin '${plugin.name}' contributed no strategy`);
      return only;
    };
    beforeAll(async () => {
      strategies = await setUpStrategy(plugin, options.config);
    });

    test('loads as a strategy plugin contributing exactly one named strategy with a plan function', () => {
      expect(plugin.kind).toBe('strategy');
      expect(strategies.length).toBe(1);
      expect(strategy().name).toMatch(/^\S+$/);
      expect(typeof strategy().plan).toBe('function');
    });

    test('plan is synchronous: it returns an array, never a promise, and never throws', () => {
      expect(violationsOf(strategy(), worlds, () => [])).toEqual([]);
    });

    test('returns only key records given in input.keys', () => {
      expect(violationsOf(strategy(), worlds, onlyInputKeys)).toEqual([]);
    });

    test('never returns a key isAvailable() refuses', () => {
      expect(violationsOf(strategy(), worlds, onlyAvailableKeys)).toEqual([]);
    });

    test('returns platform keys only with the request’s permission, never under use_byok_only', () => {
      expect(violationsOf(strategy(), worlds, platformOnlyWithPermission)).toEqual([]);
    });

    test('each candidate names a provider, a model and a key of that provider', () => {
      expect(violationsOf(strategy(), worlds, wellFormed)).toEqual([]);
    });

    test('no (provider, key) pair is returned twice', () => {
      expect(violationsOf(strategy(), worlds, noDuplicates)).toEqual([]);
    });

    test('does not change its input', () => {
      const problems = worlds.flatMap((world) => {
        const input = planInputOf(world);
        const before = snapshotInput(input);
        try {
          strategy().plan(input);
        } catch (error) {
          return [`${world.name}: plan threw ${String(error)}`];
        }
        return snapshotInput(input) === before ? [] : [`${world.name}: the input changed during plan`];
      });
      expect(problems).toEqual([]);
    });

    test('is deterministic: with a sticky key the same plan twice; without one as many candidates', () => {
      // Without a session to stick to, spreading load at random over a pool is intended (weighted
      // keys; `direct` even picks its one key that way), so only the plan's size must hold then.
      const problems = worlds.flatMap((world) => {
        const first = planIn(strategy(), world);
        const second = planIn(strategy(), world);
        if ('failure' in first) return [first.failure];
        if ('failure' in second) return [second.failure];
        const [left, right] = [first.candidates.map(describeCandidate), second.candidates.map(describeCandidate)];
        const same = world.stickyKey === undefined ? left.length === right.length : left.join() === right.join();
        return same ? [] : [`${world.name}: ${left.join(', ')} then ${right.join(', ')}`];
      });
      expect(problems).toEqual([]);
    });

    test('returns [] when the account has no keys and platform keys are not allowed, or when there are no keys at all', () => {
      const empty = worlds.flatMap((world) => [
        ...(platformPermitted(world.routing) ? [] : [{ ...world, name: `${world.name}, no account keys`, accountKeys: [] }]),
        { ...world, name: `${world.name}, no keys at all`, accountKeys: [], platformKeys: [] },
      ]);
      const problems = empty.flatMap((world) => {
        const planned = planIn(strategy(), world);
        if ('failure' in planned) return [planned.failure];
        return planned.candidates.length === 0 ? [] : [`${world.name}: got ${planned.candidates.map(describeCandidate).join(', ')}`];
      });
      expect(problems).toEqual([]);
    });
  });
}
