// openai's model of each provider-neutral tier (core/routing/model-classes.json), and the other
// names that belong to the tier: fallback_chain and cost_optimized send these models.

import type { ProviderModelClasses } from '../../core/spec/provider.ts';

export const OPENAI_MODEL_CLASSES: ProviderModelClasses = {
  flagship: { model: 'gpt-5', members: ['gpt-4', 'gpt-4-0613', 'gpt-4-turbo', 'gpt-4-turbo-preview', 'gpt-4o', 'gpt-4.1', 'gpt-5', 'o3'] },
  mid: { model: 'gpt-5-mini', members: ['gpt-4.1-mini', 'gpt-5-mini', 'o4-mini'] },
  small: { model: 'gpt-4o-mini', members: ['gpt-3.5-turbo', 'gpt-4o-mini', 'gpt-4.1-nano', 'gpt-5-nano'] },
};
