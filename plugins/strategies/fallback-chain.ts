import { definePlugin, PLUGIN_API_VERSION, type RouteCandidate, type RoutePlanInput } from '../../core/spec/plugin.ts';
import { orderPool, PLATFORM_NAMES, platformAllowed } from './keys.ts';

/** The providers to try when the request gives no `provider_order`: the model's own, then the class's. */
function defaultOrder(input: RoutePlanInput): string[] {
  const order: string[] = [];
  if (input.resolution.provider !== undefined) order.push(input.resolution.provider);
  for (const provider of input.equivalents?.keys() ?? [])
    if (!order.includes(provider) && (input.keys.account.get(provider)?.length ?? 0) > 0) order.push(provider);
  return order;
}

function modelFor(provider: string, input: RoutePlanInput): string | undefined {
  if (provider === input.resolution.provider) return input.resolution.model;
  return input.equivalents?.get(provider);
}

/**
 * `provider_order` in turn: a provider name means that provider's account keys, each with the
 * equivalent model of the requested class; `parrotrouter`/`platform` means the operator's keys
 * for the providers of the chain, in the same order. A provider without an equivalent is skipped.
 */
export function planFallbackChain(input: RoutePlanInput): RouteCandidate[] {
  const requested = input.routing.provider_order ?? defaultOrder(input);
  // fallback_to_parrotrouter (which X-Use-BYOK: false also sets) means the platform keys after the chain's own.
  const order = platformAllowed(input) && !requested.some((entry) => PLATFORM_NAMES.has(entry)) ? [...requested, 'parrotrouter'] : requested;
  const chainProviders = order.filter((entry) => !PLATFORM_NAMES.has(entry));
  const candidates: RouteCandidate[] = [];
  const seen = new Set<string>();
  for (const entry of order) {
    const platform = PLATFORM_NAMES.has(entry);
    if (platform && input.routing.use_byok_only === true) continue;
    const providers = platform ? (chainProviders.length > 0 ? chainProviders : defaultOrder(input)) : [entry];
    for (const provider of providers) {
      const model = modelFor(provider, input);
      if (model === undefined) continue;
      const pool = platform ? input.keys.platform.get(provider) : input.keys.account.get(provider);
      for (const key of orderPool(pool, input)) {
        if (seen.has(key.id)) continue;
        seen.add(key.id);
        candidates.push({ provider, model, key });
      }
    }
  }
  return candidates;
}

export const fallbackChainStrategyPlugin = definePlugin({
  name: 'strategy-fallback-chain',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'strategy',
  description: 'provider_order in turn, each with the equivalent model of the requested class',
  setup: () => ({ strategy: { name: 'fallback_chain', plan: planFallbackChain } }),
});
