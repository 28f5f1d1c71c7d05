// perplexity's model of each provider-neutral tier (core/routing/model-classes.json), and the other
// names that belong to the tier: fallback_chain and cost_optimized send these models.

import type { ProviderModelClasses } from '../../core/spec/provider.ts';

export const PERPLEXITY_MODEL_CLASSES: ProviderModelClasses = {
  flagship: { model: 'sonar-pro', members: ['sonar-pro', 'sonar-reasoning-pro'] },
  mid: { model: 'sonar', members: ['sonar'] },
  small: { model: 'sonar', members: [] },
};
