// google's model of each provider-neutral tier (core/routing/model-classes.json), and the other
// names that belong to the tier: fallback_chain and cost_optimized send these models.

import type { ProviderModelClasses } from '../../core/spec/provider.ts';

export const GOOGLE_MODEL_CLASSES: ProviderModelClasses = {
  flagship: { model: 'gemini-2.5-pro', members: ['gemini-pro', 'gemini-1.5-pro', 'gemini-2.5-pro', 'gemini-3-pro-preview'] },
  mid: { model: 'gemini-2.5-flash', members: ['gemini-1.5-flash', 'gemini-2.5-flash', 'gemini-3-flash-preview'] },
  small: { model: 'gemini-2.5-flash-lite', members: ['gemini-2.0-flash-lite', 'gemini-2.5-flash-lite'] },
};
