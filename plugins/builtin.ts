// The built-in plugins, in one list: the composition root. Adding a provider, strategy, policy,
// store or dialect means one line here; the core never names one.

import type { PluginSource } from '../core/registry.ts';
import type { PluginDefinition } from '../core/spec/plugin.ts';
import { anthropicProviderPlugin } from '../providers/anthropic/index.ts';
import { cohereProviderPlugin } from '../providers/cohere/index.ts';
import { googleProviderPlugin } from '../providers/google/index.ts';
import { perplexityProviderPlugin } from '../providers/perplexity/index.ts';
import { openAICompatibleProviderPlugins } from '../providers/openai-compatible/index.ts';
import { openAIProviderPlugin } from '../providers/openai/index.ts';
import { analyticsPlugin } from './analytics/index.ts';
import { auditPlugin } from './audit/index.ts';
import { anthropicMessagesPlugin } from './anthropic-messages/index.ts';
import { responsesPlugin } from './responses/index.ts';
import { cryptoLocalPlugin } from './crypto-local/index.ts';
import { vaultTransitPlugin } from './crypto-vault-transit/index.ts';
import { sqliteStorePlugin } from './store-sqlite/index.ts';
import { redisCountersPlugin } from './counters-redis/index.ts';
import { postgresStorePlugin } from './store-postgres/index.ts';
import { byokPreferredStrategyPlugin } from './strategies/byok-preferred.ts';
import { costOptimizedStrategyPlugin } from './strategies/cost-optimized.ts';
import { directStrategyPlugin } from './strategies/direct.ts';
import { fallbackChainStrategyPlugin } from './strategies/fallback-chain.ts';
import { teamsPlugin } from './teams/index.ts';
import { metricsPlugin } from './metrics/index.ts';
import { otelTracesPlugin } from './otel-traces/index.ts';
import { reconciliationPlugin } from './reconciliation/index.ts';
import { environmentPolicy } from '../policies/environment/index.ts';
import { hostedToolsPolicy } from '../policies/hosted-tools/index.ts';
import { ipAllowlistPolicy } from '../policies/ip-allowlist/index.ts';
import { projectTagsPolicy } from '../policies/project-tags/index.ts';
import { providerAccessPolicy } from '../policies/provider-access/index.ts';
import { approvalsPolicyPlugin } from '../policies/approvals/index.ts';
import { costCapPolicyPlugin } from '../policies/cost-cap/index.ts';
import { contentBlockingPlugin } from '../policies/content-blocking/index.ts';
import { rateLimitsPlugin } from '../policies/rate-limits/index.ts';
import { alertsPlugin } from './alerts/index.ts';
import { alertEmailPlugin } from './alert-email/index.ts';
import { alertSlackPlugin } from './alert-slack/index.ts';
import { alertWebhookPlugin } from './alert-webhook/index.ts';
import { webhooksPlugin } from './webhooks/index.ts';
import { rotationPlugin } from './rotation/index.ts';
import { keySourceEnvPlugin } from './key-source-env/index.ts';
import { keySourceFilePlugin } from './key-source-file/index.ts';
import { keySourceCommandPlugin } from './key-source-command/index.ts';
import { keySourceVaultKvPlugin } from './key-source-vault-kv/index.ts';
import { keySourceOpenAIAdminPlugin } from './key-source-openai-admin/index.ts';
import { dashboardPlugin } from './dashboard/index.ts';

export const builtinPluginDefinitions: PluginDefinition[] = [
  sqliteStorePlugin as PluginDefinition,
  redisCountersPlugin as PluginDefinition,
  postgresStorePlugin as PluginDefinition,
  cryptoLocalPlugin as PluginDefinition,
  vaultTransitPlugin as PluginDefinition,
  openAIProviderPlugin as PluginDefinition,
  anthropicProviderPlugin as PluginDefinition,
  googleProviderPlugin as PluginDefinition,
  cohereProviderPlugin as PluginDefinition,
  perplexityProviderPlugin as PluginDefinition,
  ...(openAICompatibleProviderPlugins as PluginDefinition[]),
  directStrategyPlugin as PluginDefinition,
  byokPreferredStrategyPlugin as PluginDefinition,
  fallbackChainStrategyPlugin as PluginDefinition,
  costOptimizedStrategyPlugin as PluginDefinition,
  anthropicMessagesPlugin as PluginDefinition,
  responsesPlugin as PluginDefinition,
  teamsPlugin as PluginDefinition,
  analyticsPlugin as PluginDefinition,
  reconciliationPlugin as PluginDefinition,
  ipAllowlistPolicy as PluginDefinition,
  projectTagsPolicy as PluginDefinition,
  hostedToolsPolicy as PluginDefinition,
  environmentPolicy as PluginDefinition,
  providerAccessPolicy as PluginDefinition,
  // Before approvals and cost-cap, whose `call` hooks run after its own: a request it refuses whatever
  // an admin decides must not be held for approval (stored, the admins paged) first (QA20).
  contentBlockingPlugin,
  approvalsPolicyPlugin as PluginDefinition,
  costCapPolicyPlugin as PluginDefinition,
  rateLimitsPlugin,
  metricsPlugin as PluginDefinition,
  otelTracesPlugin as PluginDefinition,
  auditPlugin as PluginDefinition,
  webhooksPlugin as PluginDefinition,
  alertsPlugin as PluginDefinition,
  // Slack before the generic webhook channel: the first channel that accepts a target delivers it.
  alertSlackPlugin as PluginDefinition,
  alertWebhookPlugin as PluginDefinition,
  alertEmailPlugin as PluginDefinition,
  rotationPlugin as PluginDefinition,
  keySourceEnvPlugin as PluginDefinition,
  keySourceFilePlugin as PluginDefinition,
  keySourceCommandPlugin as PluginDefinition,
  keySourceVaultKvPlugin as PluginDefinition,
  keySourceOpenAIAdminPlugin as PluginDefinition,
  dashboardPlugin as PluginDefinition,
];

export function builtinPlugins(): PluginSource[] {
  return builtinPluginDefinitions.map((definition) => ({ definition, source: 'builtin' }));
}
