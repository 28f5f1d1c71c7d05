// anthropic's model of each provider-neutral tier (core/routing/model-classes.json), and the other
// names that belong to the tier: fallback_chain and cost_optimized send these models.

import type { ProviderModelClasses } from '../../core/spec/provider.ts';

export const ANTHROPIC_MODEL_CLASSES: ProviderModelClasses = {
  flagship: { model: 'claude-opus-4-5', members: ['claude-3-opus-20240229', 'claude-opus-4-1', 'claude-opus-4-5', 'claude-opus-4-6', 'claude-opus-4-7'] },
  mid: {
    model: 'claude-sonnet-4-5',
    members: ['claude-3-sonnet-20240229', 'claude-3-7-sonnet-20250219', 'claude-sonnet-4-20250514', 'claude-sonnet-4-5', 'claude-sonnet-4-6'],
  },
  small: { model: 'claude-haiku-4-5', members: ['claude-3-haiku-20240307', 'claude-haiku-4-5'] },
};
