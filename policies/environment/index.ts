// Environment-specific keys: a gateway key with an `environment` uses only provider keys of that
// environment, plus provider keys that carry none (shared keys). It never uses a provider key of
// another environment, for the first attempt or any fallback, account and platform keys alike.
// A gateway key without an environment uses every key, as before environments existed.

import { definePlugin, PLUGIN_API_VERSION, type ResolvedKeys } from '../../core/spec/plugin.ts';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';

export const ENVIRONMENT_POLICY = 'environment';

/** A provider key's environment, or undefined when it is shared. */
export function keyEnvironment(key: ProviderKeyRecord): string | undefined {
  const value = key.settings.environment;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The rule: may a gateway key of `environment` use `key`? */
export function usableBy(environment: string | undefined, key: ProviderKeyRecord): boolean {
  if (environment === undefined) return true;
  const own = keyEnvironment(key);
  return own === undefined || own === environment;
}

function narrowMap(map: ReadonlyMap<string, readonly ProviderKeyRecord[]>, environment: string): ReadonlyMap<string, readonly ProviderKeyRecord[]> {
  let narrowed: Map<string, readonly ProviderKeyRecord[]> | undefined;
  for (const [provider, keys] of map) {
    if (keys.every((key) => usableBy(environment, key))) continue;
    narrowed ??= new Map(map);
    const kept = keys.filter((key) => usableBy(environment, key));
    if (kept.length === 0) narrowed.delete(provider);
    else narrowed.set(provider, kept);
  }
  return narrowed ?? map;
}

/** Narrowed maps, cached per snapshot map and environment: the request path rebuilds nothing. */
const cache = new WeakMap<ReadonlyMap<string, readonly ProviderKeyRecord[]>, Map<string, ReadonlyMap<string, readonly ProviderKeyRecord[]>>>();

function cachedNarrow(map: ReadonlyMap<string, readonly ProviderKeyRecord[]>, environment: string): ReadonlyMap<string, readonly ProviderKeyRecord[]> {
  let byEnvironment = cache.get(map);
  if (byEnvironment === undefined) cache.set(map, (byEnvironment = new Map()));
  let narrowed = byEnvironment.get(environment);
  if (narrowed === undefined) {
    narrowed = narrowMap(map, environment);
    if (byEnvironment.size < 1000) byEnvironment.set(environment, narrowed);
  }
  return narrowed;
}

export function keysForEnvironment(keys: ResolvedKeys, environment: string | undefined): ResolvedKeys {
  if (environment === undefined) return keys;
  const account = cachedNarrow(keys.account, environment);
  const platform = cachedNarrow(keys.platform, environment);
  return account === keys.account && platform === keys.platform ? keys : { account, platform };
}

/** How many of the provider's keys in one pool the narrowing passed over. */
function passedOverIn(
  provider: string,
  before: ReadonlyMap<string, readonly ProviderKeyRecord[]>,
  after: ReadonlyMap<string, readonly ProviderKeyRecord[]>,
): number {
  return (before.get(provider)?.length ?? 0) - (after.get(provider)?.length ?? 0);
}

/** Which of the provider's keys were passed over for their environment, by pool, naming no key: undefined when none. */
export function passedOverNote(provider: string, before: ResolvedKeys, after: ResolvedKeys, environment: string): string | undefined {
  const pools: string[] = [];
  if (passedOverIn(provider, before.account, after.account) > 0) pools.push("this account's");
  if (passedOverIn(provider, before.platform, after.platform) > 0) pools.push("the platform's");
  if (pools.length === 0) return undefined;
  const whose = pools.join(' and ');
  return `${whose.charAt(0).toUpperCase()}${whose.slice(1)} ${provider} keys of another environment than this API key's ('${environment}') were passed over: keys of other environments are never used.`;
}

/** The keys before and after this policy narrowed them, for its route hook. */
interface EnvironmentKeys {
  before: ResolvedKeys;
  after: ResolvedKeys;
}

export const environmentPolicy = definePlugin({
  name: ENVIRONMENT_POLICY,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: 'A gateway key of one environment never uses a provider key of another',
  setup({ services }) {
    return {
      hooks: {
        keyResolve(context) {
          if (context.keys === undefined) return;
          const narrowed = keysForEnvironment(context.keys, context.principal.environment);
          if (narrowed === context.keys) return;
          const keys: EnvironmentKeys = { before: context.keys, after: narrowed };
          context.state.set(ENVIRONMENT_POLICY, keys);
          context.keys = narrowed;
        },
        // Nothing left to plan because every key of the provider belongs to another environment: say
        // so, instead of the core's "no key configured", which would be wrong. When keys of the provider
        // are left but none was planned (routing asked for the platform's keys only, and those were all
        // of another environment), the core's 503 says which were passed over (QA qa-teams L3).
        route(context) {
          if (context.candidates.length > 0) return;
          const provider = context.resolution?.provider;
          const keys = context.state.get(ENVIRONMENT_POLICY) as EnvironmentKeys | undefined;
          if (provider === undefined || keys === undefined || context.keys === undefined) return;
          const { before, after } = keys;
          const had = (before.account.get(provider)?.length ?? 0) + (before.platform.get(provider)?.length ?? 0);
          // What this policy's own narrowing left, not what every key-resolve hook left: a provider a
          // team's list emptied (provider-access) is no environment's doing, and its refusal says so (QA20).
          const has = (after.account.get(provider)?.length ?? 0) + (after.platform.get(provider)?.length ?? 0);
          if (had === 0) return;
          if (has > 0) {
            const note = passedOverNote(provider, before, after, context.principal.environment ?? '');
            if (note !== undefined) (context.passedOver ??= []).push(note);
            return;
          }
          throw services.errors.create(
            'provider_not_allowed',
            {
              detail: `Every ${provider} provider key belongs to another environment than this API key's ('${context.principal.environment ?? ''}'); keys of other environments are never used. Add a ${provider} key for this environment, or one without an environment.`,
            },
            { extra: { provider } },
          );
        },
      },
    };
  },
});

export default environmentPolicy;
