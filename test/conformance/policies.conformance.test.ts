// Every in-tree policy plugin through the policy conformance suite (policy.ts), each in its own
// gateway in front of the OpenAI simulator.

import refuseModelPlugin from '../plugins/refuse-model/index.ts';
import requireHeaderPlugin from '../plugins/require-header/index.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { describePolicyConformance } from './policy.ts';

describePolicyConformance('refuse-model (route stage)', refuseModelPlugin as PluginDefinition, {
  allowed: { model: 'gpt-4o-mini' },
  // A model the upstream serves, so only the policy stands between it and the simulator.
  refused: { model: 'refused-model-x', code: 'model_not_allowed' },
  models: ['refused-model-x'],
});

describePolicyConformance('require-header (auth stage)', requireHeaderPlugin, {
  allowed: { model: 'gpt-4o-mini', headers: { 'x-project-tag': 'conformance' } },
  refused: { model: 'gpt-4o-mini', code: 'project_tag_required' },
});
