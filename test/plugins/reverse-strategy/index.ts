// A third-party routing strategy: the account's keys of the model's provider, last one first.
// It exists to prove a strategy needs no core change: load it, name it in `routing.strategy`.
// Like every out-of-tree plugin it imports only types from core, so the single binary can load it.

import type { PluginDefinition, RouteCandidate, RoutingStrategy } from '../../../core/spec/plugin.ts';

export const STRATEGY_NAME = 'last_key_first';

const strategy: RoutingStrategy = {
  name: STRATEGY_NAME,
  plan(input): RouteCandidate[] {
    const provider = input.resolution.provider;
    if (provider === undefined) return [];
    const keys = input.keys.account.get(provider) ?? [];
    const candidates: RouteCandidate[] = [];
    // A plain backwards loop: plan() runs on every request, so no copies or sorts.
    for (let position = keys.length - 1; position >= 0; position--) {
      const key = keys[position];
      if (key !== undefined && input.isAvailable(key)) candidates.push({ provider, model: input.resolution.model, key });
    }
    return candidates;
  },
};

export const reverseStrategyPlugin: PluginDefinition = {
  name: 'example-reverse-strategy',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'strategy',
  description: "Tries the account's keys of the provider in reverse order",
  setup: () => ({ strategy }),
};

export default reverseStrategyPlugin;
