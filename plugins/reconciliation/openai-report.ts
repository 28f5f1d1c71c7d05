// OpenAI's organisation reports (admin key, `Authorization: Bearer sk-admin-…`):
// `GET /organization/costs` grouped by line item ("gpt-4o-2024-08-06, input"), whose model part
// names the row; `GET /organization/usage/completions` grouped by model and API key; and the
// projects' API keys with their `redacted_value`, for matching Keyway's keys.

import type { Services } from '../../core/spec/services.ts';
import { dayOf, getList, getPages, numberOf, recordOf, ReportBuilder, type ProviderApiKey, type ProviderReport } from './report-fetch.ts';

const LABEL = 'OpenAI';
const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/** The operator's OpenAI address (KEYWAY_OPENAI_BASE_URL includes /v1), never an account's choice. */
export function openAIBaseUrl(services: Services): string {
  const base = services.env.KEYWAY_OPENAI_BASE_URL ?? DEFAULT_BASE_URL;
  return base.endsWith('/') ? base.slice(0, -1) : base;
}

function headersFor(adminKey: string): Record<string, string> {
  return { authorization: `Bearer ${adminKey}` };
}

function reportUrl(services: Services, path: string, from: Date, to: Date, groupBy: string[], projects: readonly string[] = []): URL {
  const url = new URL(`${openAIBaseUrl(services)}${path}`);
  url.searchParams.set('start_time', String(Math.floor(from.getTime() / 1000)));
  url.searchParams.set('end_time', String(Math.ceil(to.getTime() / 1000)));
  url.searchParams.set('bucket_width', '1d');
  for (const group of groupBy) url.searchParams.append('group_by', group);
  for (const project of projects) url.searchParams.append('project_ids', project);
  url.searchParams.set('limit', '31');
  return url;
}

/** "gpt-4o-2024-08-06, cached input" → "gpt-4o-2024-08-06"; a line item without a model stays whole. */
export function modelOfLineItem(lineItem: unknown): string {
  if (typeof lineItem !== 'string' || lineItem === '') return '(unattributed)';
  const comma = lineItem.indexOf(', ');
  return comma > 0 ? lineItem.slice(0, comma) : lineItem;
}

async function projectKeys(services: Services, adminKey: string, scope: readonly string[]): Promise<ProviderApiKey[]> {
  const projectsUrl = new URL(`${openAIBaseUrl(services)}/organization/projects`);
  projectsUrl.searchParams.set('limit', '100');
  const projects = await getList(services, LABEL, projectsUrl, headersFor(adminKey), 'after');
  const keys: ProviderApiKey[] = [];
  for (const project of projects.map(recordOf)) {
    if (typeof project.id !== 'string' || (scope.length > 0 && !scope.includes(project.id))) continue;
    const url = new URL(`${openAIBaseUrl(services)}/organization/projects/${encodeURIComponent(project.id)}/api_keys`);
    url.searchParams.set('limit', '100');
    for (const key of (await getList(services, LABEL, url, headersFor(adminKey), 'after')).map(recordOf)) {
      if (typeof key.id === 'string' && typeof key.redacted_value === 'string') keys.push({ id: key.id, hint: key.redacted_value });
    }
  }
  return keys;
}

/** One cheap call that needs the admin scope: for checking a key before it is stored. */
export async function verifyOpenAIAdminKey(services: Services, adminKey: string): Promise<void> {
  const url = reportUrl(services, '/organization/costs', new Date(services.clock.now() - 86_400_000), new Date(services.clock.now()), []);
  url.searchParams.set('limit', '1');
  await getPages(services, LABEL, url, headersFor(adminKey));
}

/** `scope`: the project ids to narrow the reports to; empty for the whole organisation. */
export async function fetchOpenAIReport(services: Services, adminKey: string, from: Date, to: Date, scope: readonly string[] = []): Promise<ProviderReport> {
  const builder = new ReportBuilder();
  const costBuckets = await getPages(services, LABEL, reportUrl(services, '/organization/costs', from, to, ['line_item'], scope), headersFor(adminKey));
  for (const bucket of costBuckets.map(recordOf)) {
    const day = dayOf(numberOf(bucket.start_time) * 1000);
    for (const result of (Array.isArray(bucket.results) ? bucket.results : []).map(recordOf)) {
      builder.addCost(day, modelOfLineItem(result.line_item), numberOf(recordOf(result.amount).value));
    }
  }
  const usageBuckets = await getPages(
    services,
    LABEL,
    reportUrl(services, '/organization/usage/completions', from, to, ['model', 'api_key_id'], scope),
    headersFor(adminKey),
  );
  for (const bucket of usageBuckets.map(recordOf)) {
    const day = dayOf(numberOf(bucket.start_time) * 1000);
    for (const result of (Array.isArray(bucket.results) ? bucket.results : []).map(recordOf)) {
      const tokens = {
        input: numberOf(result.input_tokens),
        output: numberOf(result.output_tokens),
        cachedInput: numberOf(result.input_cached_tokens),
        cacheWrite: 0,
      };
      const apiKeyId = typeof result.api_key_id === 'string' ? result.api_key_id : undefined;
      builder.addUsage(day, typeof result.model === 'string' ? result.model : '(unattributed)', apiKeyId, tokens, numberOf(result.num_model_requests));
    }
  }
  // The key list only serves the per-key view: a key without that permission still reconciles by model.
  const apiKeys = await projectKeys(services, adminKey, scope).catch(() => undefined);
  return builder.build(apiKeys);
}
