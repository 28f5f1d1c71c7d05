// Every in-tree policy plugin through the policy conformance suite (policy.ts), each in its own
// gateway in front of the OpenAI simulator.

import refuseModelPlugin from '../plugins/refuse-model/index.ts';
import requireHeaderPlugin from '../plugins/require-header/index.ts';
import requireUserPlugin from '../plugins/require-user/index.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { contentBlockingPolicy } from '../../policies/content-blocking/index.ts';
import { rateLimitsPolicy } from '../../policies/rate-limits/index.ts';
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

// A policy on a body field: the allowed request carries the field in each dialect's own place.
describePolicyConformance('require-user (auth stage, a body field)', requireUserPlugin, {
  allowed: { model: 'gpt-4o-mini', body: { user: 'user-42' }, messagesBody: { metadata: { user_id: 'user-42' } } },
  refused: { model: 'gpt-4o-mini', code: 'invalid_field' },
});

// The team policies, loaded a second time under another name (the built-in copy stays, a no-op for
// the operator's key), with a team lookup that stands in for POST /v1/teams: the operator's requests
// act for a team with the control on (content-blocking), or, with the header, for an exhausted team.
const CONFORMANCE_TEAM = { id: 'team_conformance', accountId: 'default', name: 'Conformance' };

describePolicyConformance(
  'content-blocking (call stage)',
  contentBlockingPolicy({
    name: 'content-blocking-conformance',
    lookup: () => ({ ...CONFORMANCE_TEAM, permissions: { usage_controls: { block_sensitive_content: true } } }),
  }),
  {
    allowed: { model: 'gpt-4o-mini', text: 'Summarise order 1234567890123456, please.' },
    refused: { model: 'gpt-4o-mini', text: 'Charge my card 4111 1111 1111 1111 today.', code: 'sensitive_content_blocked' },
  },
);

describePolicyConformance(
  'rate-limits (call stage, tokens)',
  rateLimitsPolicy({
    name: 'rate-limits-conformance',
    lookup: (_snapshot, context) =>
      context.headers.get('x-conformance-team') === 'exhausted' ? { ...CONFORMANCE_TEAM, permissions: { rate_limits: { tokens_per_minute: 1 } } } : undefined,
  }),
  {
    allowed: { model: 'gpt-4o-mini' },
    refused: { model: 'gpt-4o-mini', code: 'rate_limited', headers: { 'x-conformance-team': 'exhausted' } },
  },
);
