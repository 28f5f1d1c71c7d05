import { definePlugin, PLUGIN_API_VERSION, type RouteCandidate, type RoutePlanInput } from '../../core/spec/plugin.ts';
import { orderPool, platformAllowed } from './keys.ts';

interface PricedCandidate extends RouteCandidate {
  effectivePrice: number;
  byok: boolean;
}

/**
 * Among the providers that serve the requested model's class (the named provider alone when the request
 * names one), the cheapest effective price first:
 * list price (input + output per token) × `cost_weights[provider]` for account keys; platform keys,
 * when allowed, at list price × (1 + the platform markup). `prefer_byok` breaks ties for the
 * account's keys. Models without a list price go last, in their provider's key order.
 */
export function planCostOptimized(input: RoutePlanInput): RouteCandidate[] {
  const platformMarkupPercent = input.platformMarkupPercent;
  // A provider the client named (`provider`, or `google/…`) is a choice, not a hint: the price order
  // is among that provider's keys only. Only a bare model name opens its class's other providers.
  const providers = new Map<string, string>(input.resolution.explicit === true ? [] : (input.equivalents ?? []));
  if (input.resolution.provider !== undefined) providers.set(input.resolution.provider, input.resolution.model);
  const weights = input.routing.cost_weights ?? {};
  const preferByok = input.routing.prefer_byok !== false;
  const priced: PricedCandidate[] = [];
  for (const [provider, model] of providers) {
    const listPrice = input.price(provider, model) ?? Number.POSITIVE_INFINITY;
    for (const key of orderPool(input.keys.account.get(provider), input)) {
      priced.push({ provider, model, key, effectivePrice: listPrice * weightOf(weights, provider), byok: true });
    }
    if (platformAllowed(input)) {
      for (const key of orderPool(input.keys.platform.get(provider), input)) {
        priced.push({ provider, model, key, effectivePrice: listPrice * (1 + platformMarkupPercent / 100), byok: false });
      }
    }
  }
  // Stable sort: equal prices keep key-pool order.
  priced.sort((left, right) => left.effectivePrice - right.effectivePrice || (preferByok ? Number(right.byok) - Number(left.byok) : 0));
  return priced.map(({ provider, model, key }) => ({ provider, model, key }));
}

/**
 * A weight stored before non-finite weights were refused reads back as null (JSON has no Infinity);
 * null × price would rank that provider cheapest, so anything but a finite non-negative number is the
 * default 1, as the cost comparison reads it (plugins/analytics/cost-comparison.ts).
 */
function weightOf(weights: Readonly<Record<string, unknown>>, provider: string): number {
  const weight = weights[provider];
  return typeof weight === 'number' && Number.isFinite(weight) && weight >= 0 ? weight : 1;
}

export const costOptimizedStrategyPlugin = definePlugin({
  name: 'strategy-cost-optimized',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'strategy',
  description: 'Cheapest effective price first among equivalent models',
  setup: () => ({ strategy: { name: 'cost_optimized', plan: planCostOptimized } }),
});
