import { definePlugin, PLUGIN_API_VERSION, type RouteCandidate } from '../../core/spec/plugin.ts';
import { platformAllowed, orderPool } from './keys.ts';

/** One provider, one key, no fallback: the provider the request or its model names. */
export const directStrategyPlugin = definePlugin({
  name: 'strategy-direct',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'strategy',
  description: 'One provider and one key, no fallback',
  setup: () => ({
    strategy: {
      name: 'direct',
      plan(input): RouteCandidate[] {
        const provider = input.resolution.provider;
        if (provider === undefined) return [];
        const key =
          orderPool(input.keys.account.get(provider), input)[0] ??
          (platformAllowed(input) ? orderPool(input.keys.platform.get(provider), input)[0] : undefined);
        return key === undefined ? [] : [{ provider, model: input.resolution.model, key }];
      },
    },
  }),
});
