// cohere's model of each provider-neutral tier (core/routing/model-classes.json), and the other
// names that belong to the tier: fallback_chain and cost_optimized send these models.

import type { ProviderModelClasses } from '../../core/spec/provider.ts';

export const COHERE_MODEL_CLASSES: ProviderModelClasses = {
  flagship: { model: 'command-a-03-2025', members: ['command-r-plus', 'command-a-03-2025'] },
  mid: { model: 'command-r', members: ['command-r'] },
  small: { model: 'command-r7b-12-2024', members: ['command-r7b-12-2024'] },
};
