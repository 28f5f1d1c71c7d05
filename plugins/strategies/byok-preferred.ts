import { definePlugin, PLUGIN_API_VERSION, type RouteCandidate } from '../../core/spec/plugin.ts';
import { platformAllowed, orderPool } from './keys.ts';

/**
 * The default: every usable account key of the model's provider, then — only when the request
 * allows it — the operator's platform keys for that provider.
 */
export const byokPreferredStrategyPlugin = definePlugin({
  name: 'strategy-byok-preferred',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'strategy',
  description: "The account's own keys first; platform keys only when routing allows it",
  setup: () => ({
    strategy: {
      name: 'byok_preferred',
      plan(input): RouteCandidate[] {
        const provider = input.resolution.provider;
        if (provider === undefined) return [];
        const model = input.resolution.model;
        const candidates: RouteCandidate[] = orderPool(input.keys.account.get(provider), input).map((key) => ({ provider, model, key }));
        if (platformAllowed(input)) for (const key of orderPool(input.keys.platform.get(provider), input)) candidates.push({ provider, model, key });
        return candidates;
      },
    },
  }),
});
