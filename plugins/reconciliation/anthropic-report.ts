// Anthropic's Admin API reports (`x-api-key: sk-ant-admin…`, `anthropic-version: 2023-06-01`):
// `GET /v1/organizations/cost_report` grouped by description (amounts in cents, as decimal strings,
// each with its model and token type), `GET /v1/organizations/usage_report/messages` grouped by model
// and API key, and `GET /v1/organizations/api_keys` with each key's `partial_key_hint`.

import type { Services } from '../../core/spec/services.ts';
import { dayOf, getList, getPages, numberOf, recordOf, ReportBuilder, type ProviderApiKey, type ProviderReport } from './report-fetch.ts';

const LABEL = 'Anthropic';
const DEFAULT_BASE_URL = 'https://api.anthropic.com';
const VERSION = '2023-06-01';

/** The operator's Anthropic address (KEYWAY_ANTHROPIC_BASE_URL is a bare host), never an account's choice. */
export function anthropicBaseUrl(services: Services): string {
  const base = services.env.KEYWAY_ANTHROPIC_BASE_URL ?? DEFAULT_BASE_URL;
  return base.endsWith('/') ? base.slice(0, -1) : base;
}

function headersFor(adminKey: string): Record<string, string> {
  return { 'x-api-key': adminKey, 'anthropic-version': VERSION };
}

function reportUrl(services: Services, path: string, from: Date, to: Date, groupBy: string[]): URL {
  const url = new URL(`${anthropicBaseUrl(services)}${path}`);
  url.searchParams.set('starting_at', from.toISOString());
  url.searchParams.set('ending_at', to.toISOString());
  url.searchParams.set('bucket_width', '1d');
  for (const group of groupBy) url.searchParams.append('group_by[]', group);
  url.searchParams.set('limit', '31');
  return url;
}

/** One cheap call that needs the admin scope: for checking a key before it is stored. */
export async function verifyAnthropicAdminKey(services: Services, adminKey: string): Promise<void> {
  const url = new URL(`${anthropicBaseUrl(services)}/v1/organizations/api_keys`);
  url.searchParams.set('limit', '1');
  await getList(services, LABEL, url, headersFor(adminKey), 'after_id');
}

/**
 * `scope`: the workspace ids to narrow the reports to; empty for the whole organisation. The usage
 * report filters by workspace itself; the cost report has no such filter, so it is grouped by
 * workspace and the others are left out here.
 */
export async function fetchAnthropicReport(services: Services, adminKey: string, from: Date, to: Date, scope: readonly string[] = []): Promise<ProviderReport> {
  const builder = new ReportBuilder();
  const inScope = (workspace: unknown): boolean => scope.length === 0 || (typeof workspace === 'string' && scope.includes(workspace));
  const costGroups = scope.length === 0 ? ['description'] : ['description', 'workspace_id'];
  const costBuckets = await getPages(services, LABEL, reportUrl(services, '/v1/organizations/cost_report', from, to, costGroups), headersFor(adminKey));
  for (const bucket of costBuckets.map(recordOf)) {
    const day = dayOf(Date.parse(String(bucket.starting_at)));
    for (const result of (Array.isArray(bucket.results) ? bucket.results : []).map(recordOf)) {
      if (!inScope(result.workspace_id)) continue;
      // Cents as a decimal string: "123.45" is $1.2345.
      const usd = numberOf(result.amount) / 100;
      const model = typeof result.model === 'string' ? result.model : `(${typeof result.cost_type === 'string' ? result.cost_type : 'unattributed'})`;
      builder.addCost(day, model, usd);
    }
  }
  const usageUrl = reportUrl(services, '/v1/organizations/usage_report/messages', from, to, ['model', 'api_key_id']);
  for (const workspace of scope) usageUrl.searchParams.append('workspace_ids[]', workspace);
  const usageBuckets = await getPages(services, LABEL, usageUrl, headersFor(adminKey));
  for (const bucket of usageBuckets.map(recordOf)) {
    const day = dayOf(Date.parse(String(bucket.starting_at)));
    for (const result of (Array.isArray(bucket.results) ? bucket.results : []).map(recordOf)) {
      const creation = recordOf(result.cache_creation);
      const cacheWrite = numberOf(creation.ephemeral_5m_input_tokens) + numberOf(creation.ephemeral_1h_input_tokens);
      const cacheRead = numberOf(result.cache_read_input_tokens);
      const tokens = {
        input: numberOf(result.uncached_input_tokens) + cacheRead + cacheWrite,
        output: numberOf(result.output_tokens),
        cachedInput: cacheRead,
        cacheWrite,
      };
      const apiKeyId = typeof result.api_key_id === 'string' ? result.api_key_id : undefined;
      // The usage report counts tokens, not requests.
      builder.addUsage(day, typeof result.model === 'string' ? result.model : '(unattributed)', apiKeyId, tokens, null);
    }
  }
  const keysUrl = new URL(`${anthropicBaseUrl(services)}/v1/organizations/api_keys`);
  keysUrl.searchParams.set('limit', '1000');
  const apiKeys = await getList(services, LABEL, keysUrl, headersFor(adminKey), 'after_id')
    .then((keys) =>
      keys
        .map(recordOf)
        .filter((key) => typeof key.id === 'string' && typeof key.partial_key_hint === 'string' && inScope(key.workspace_id))
        .map((key): ProviderApiKey => ({ id: String(key.id), hint: String(key.partial_key_hint) })),
    )
    .catch(() => undefined);
  return builder.build(apiKeys);
}
