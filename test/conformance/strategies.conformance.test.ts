// Every in-tree routing strategy through the strategy conformance suite (strategy.ts): the four
// built-in ones and the third-party example, which is held to the same rules as the built-ins.

import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { byokPreferredStrategyPlugin } from '../../plugins/strategies/byok-preferred.ts';
import { costOptimizedStrategyPlugin } from '../../plugins/strategies/cost-optimized.ts';
import { directStrategyPlugin } from '../../plugins/strategies/direct.ts';
import { fallbackChainStrategyPlugin } from '../../plugins/strategies/fallback-chain.ts';
import { reverseStrategyPlugin } from '../plugins/reverse-strategy/index.ts';
import { describeStrategyConformance } from './strategy.ts';

const STRATEGY_PLUGINS: ReadonlyArray<readonly [string, PluginDefinition]> = [
  ['direct', directStrategyPlugin as PluginDefinition],
  ['byok_preferred', byokPreferredStrategyPlugin as PluginDefinition],
  ['fallback_chain', fallbackChainStrategyPlugin as PluginDefinition],
  ['cost_optimized', costOptimizedStrategyPlugin as PluginDefinition],
  ['last_key_first (test/plugins/reverse-strategy)', reverseStrategyPlugin],
];

for (const [name, plugin] of STRATEGY_PLUGINS) describeStrategyConformance(name, plugin);
