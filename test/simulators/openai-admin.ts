// OpenAI's organisation admin endpoints, over what the simulator served (usage-ledger.ts):
// `GET /v1/organization/costs`, `GET /v1/organization/usage/completions`, `GET /v1/organization/projects`
// and `GET /v1/organization/projects/{id}/api_keys`, in the shapes of OpenAI's API reference. Only an
// admin key (`sk-admin-…`, as a bearer token) is accepted; a project key is refused as OpenAI does.

import { openAIErrorBody, type OpenAIError } from './openai-errors.ts';
import { handleServiceAccounts } from './openai-service-accounts.ts';
import { costByKind, dayBuckets, groupByOf, listParameter, pageOfBuckets, redactedKey, type ServedCall, type UsageLedger } from './usage-ledger.ts';

export const OPENAI_SIM_PROJECT = 'proj_keywaysimulator';
const PROJECT_CREATED = 1_711_471_533;

export function fail(status: number, message: string, type: string, code: string | null, param: string | null = null): Response {
  const error: OpenAIError = { status, message, type, code, param };
  return Response.json(openAIErrorBody(error), { status });
}

export function authorize(request: Request, adminKeys: ReadonlySet<string>, apiKeys: ReadonlySet<string>): Response | undefined {
  const key = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1]?.trim();
  if (!key)
    return fail(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      'invalid_request_error',
      null,
    );
  if (adminKeys.has(key)) return undefined;
  if (apiKeys.has(key))
    return fail(
      403,
      'You have insufficient permissions for this operation. Missing scopes: api.usage.read.',
      'invalid_request_error',
      'insufficient_permissions',
    );
  return fail(401, `Incorrect API key provided: ${key.slice(0, 3)}*****${key.slice(-4)}.`, 'invalid_request_error', 'invalid_api_key');
}

interface TimeQuery {
  start: number;
  end: number;
  limit: number;
  page: string | null;
  groupBy: string[];
  /** `project_ids`: only these projects' usage, when given. */
  projects: string[];
}

function timeQuery(url: URL, allowedGroups: readonly string[], maximumLimit: number): TimeQuery | Response {
  const startText = url.searchParams.get('start_time');
  if (startText === null) return fail(400, "Missing required parameter: 'start_time'.", 'invalid_request_error', 'missing_required_parameter', 'start_time');
  const start = Number(startText);
  if (!Number.isInteger(start)) return fail(400, "Invalid 'start_time': expected an integer.", 'invalid_request_error', 'invalid_type', 'start_time');
  const endText = url.searchParams.get('end_time');
  const end = endText === null ? Math.floor(Date.now() / 1000) : Number(endText);
  if (!Number.isInteger(end)) return fail(400, "Invalid 'end_time': expected an integer.", 'invalid_request_error', 'invalid_type', 'end_time');
  const width = url.searchParams.get('bucket_width') ?? '1d';
  if (width !== '1d')
    return fail(400, `Invalid value: '${width}'. This simulator supports only '1d'.`, 'invalid_request_error', 'invalid_value', 'bucket_width');
  const limit = Number(url.searchParams.get('limit') ?? '7');
  if (!Number.isInteger(limit) || limit < 1 || limit > maximumLimit)
    return fail(400, `Invalid 'limit': must be between 1 and ${maximumLimit}.`, 'invalid_request_error', 'invalid_value', 'limit');
  const groupBy = groupByOf(url);
  const unknown = groupBy.find((group) => !allowedGroups.includes(group));
  if (unknown !== undefined) return fail(400, `Invalid value: '${unknown}'.`, 'invalid_request_error', 'invalid_value', 'group_by');
  return { start: start * 1000, end: end * 1000, limit, page: url.searchParams.get('page'), groupBy, projects: listParameter(url, 'project_ids') };
}

function inBucket(at: number, bucket: { start: number; end: number }): boolean {
  return at >= bucket.start && at < bucket.end;
}

const LINE_ITEM_KIND = { uncached_input: 'input', cache_read: 'cached input', cache_write_5m: 'input', cache_write_1h: 'input', output: 'output' } as const;

function inProjects(ledger: UsageLedger, apiKey: string | undefined, query: TimeQuery): boolean {
  return query.projects.length === 0 || query.projects.includes(ledger.groupOf(apiKey) ?? '');
}

function costResults(ledger: UsageLedger, bucket: { start: number; end: number }, query: TimeQuery): unknown[] {
  const { groupBy } = query;
  const totals = new Map<string, { usd: number; lineItem: string; project: string | null }>();
  const add = (lineItem: string, project: string | null, usd: number): void => {
    const name = `${groupBy.includes('line_item') ? lineItem : ''}\u0000${groupBy.includes('project_id') ? project : ''}`;
    const entry = totals.get(name) ?? { usd: 0, lineItem, project };
    entry.usd += usd;
    totals.set(name, entry);
  };
  for (const call of ledger.served.filter((served) => inBucket(served.at, bucket) && inProjects(ledger, served.apiKey, query))) {
    for (const [kind, usd] of Object.entries(costByKind('openai', call))) {
      if (usd > 0) add(`${call.model}, ${LINE_ITEM_KIND[kind as keyof typeof LINE_ITEM_KIND]}`, ledger.groupOf(call.apiKey), usd);
    }
  }
  for (const charge of ledger.charges.filter((extra) => inBucket(extra.at, bucket) && inProjects(ledger, extra.apiKey, query))) {
    add(`${charge.model}, output`, ledger.groupOf(charge.apiKey), charge.usd);
  }
  return [...totals.values()].map((entry) => ({
    object: 'organization.costs.result',
    amount: { value: entry.usd, currency: 'usd' },
    line_item: groupBy.includes('line_item') ? entry.lineItem : null,
    project_id: groupBy.includes('project_id') ? entry.project : null,
  }));
}

interface CompletionTotals {
  input: number;
  cached: number;
  output: number;
  requests: number;
  model: string;
  apiKeyId: string;
  project: string | null;
}

function completionResults(ledger: UsageLedger, bucket: { start: number; end: number }, query: TimeQuery): unknown[] {
  const { groupBy } = query;
  const totals = new Map<string, CompletionTotals>();
  const add = (call: Pick<ServedCall, 'model' | 'apiKey'>, input: number, cached: number, output: number, requests: number): void => {
    const apiKeyId = ledger.keyId(call.apiKey);
    const project = ledger.groupOf(call.apiKey);
    const name = [
      groupBy.includes('model') ? call.model : '',
      groupBy.includes('api_key_id') ? apiKeyId : '',
      groupBy.includes('project_id') ? project : '',
    ].join('\u0000');
    const entry = totals.get(name) ?? { input: 0, cached: 0, output: 0, requests: 0, model: call.model, apiKeyId, project };
    entry.input += input;
    entry.cached += cached;
    entry.output += output;
    entry.requests += requests;
    totals.set(name, entry);
  };
  for (const call of ledger.served.filter((served) => inBucket(served.at, bucket) && inProjects(ledger, served.apiKey, query))) {
    // OpenAI's input_tokens include the cached ones.
    add(call, call.uncachedInputTokens + call.cacheReadTokens, call.cacheReadTokens, call.outputTokens, 1);
  }
  for (const charge of ledger.charges.filter(
    (extra) => inBucket(extra.at, bucket) && extra.outputTokens !== undefined && inProjects(ledger, extra.apiKey, query),
  )) {
    add({ model: charge.model, apiKey: charge.apiKey ?? '' }, 0, 0, charge.outputTokens ?? 0, 0);
  }
  return [...totals.values()].map((entry) => ({
    object: 'organization.usage.completions.result',
    input_tokens: entry.input,
    output_tokens: entry.output,
    input_cached_tokens: entry.cached,
    input_audio_tokens: 0,
    output_audio_tokens: 0,
    num_model_requests: entry.requests,
    project_id: groupBy.includes('project_id') ? entry.project : null,
    user_id: null,
    api_key_id: groupBy.includes('api_key_id') ? entry.apiKeyId : null,
    model: groupBy.includes('model') ? entry.model : null,
    batch: groupBy.includes('batch') ? false : null,
    service_tier: groupBy.includes('service_tier') ? 'default' : null,
  }));
}

function bucketPage(query: TimeQuery, results: (bucket: { start: number; end: number }) => unknown[]): Response {
  const buckets = dayBuckets(query.start, query.end).map((bucket) => ({
    object: 'bucket',
    start_time: bucket.start / 1000,
    end_time: bucket.end / 1000,
    results: results(bucket),
  }));
  const page = pageOfBuckets(buckets, query.page, query.limit);
  return Response.json({ object: 'page', data: page.data, has_more: page.hasMore, next_page: page.nextPage });
}

function projectKeys(ledger: UsageLedger, apiKeys: ReadonlySet<string>, project: string, url: URL): Response {
  const all = [...apiKeys]
    .filter((apiKey) => ledger.groupOf(apiKey) === project)
    .map((apiKey) => ({
      object: 'organization.project.api_key',
      redacted_value: redactedKey(apiKey, 'openai'),
      name: 'Keyway simulator key',
      created_at: PROJECT_CREATED,
      last_used_at: null,
      id: ledger.keyId(apiKey),
      owner: {
        type: 'service_account',
        service_account: { object: 'organization.project.service_account', id: 'svc_acct_sim', name: 'keyway', role: 'member' },
      },
    }));
  const after = url.searchParams.get('after');
  const limit = Number(url.searchParams.get('limit') ?? '20');
  const from = after === null ? 0 : all.findIndex((key) => key.id === after) + 1;
  const data = all.slice(from, from + limit);
  return Response.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: from + limit < all.length });
}

/** Answers an `/v1/organization/…` request, or undefined when the path is not one of them. */
export function handleOpenAIAdmin(
  request: Request,
  url: URL,
  ledger: UsageLedger,
  adminKeys: ReadonlySet<string>,
  apiKeys: Set<string>,
): Response | Promise<Response> | undefined {
  const path = url.pathname;
  if (!path.startsWith('/v1/organization/')) return undefined;
  const serviceAccounts = handleServiceAccounts(request, url, ledger, adminKeys, apiKeys);
  if (serviceAccounts !== undefined) return serviceAccounts;
  if (request.method !== 'GET') return fail(405, `Invalid method for URL (${request.method} ${path})`, 'invalid_request_error', null);
  const refused = authorize(request, adminKeys, apiKeys);
  if (refused) return refused;
  ledger.reportCalls.push(`${path}${url.search}`);
  if (path === '/v1/organization/costs') {
    const query = timeQuery(url, ['project_id', 'line_item'], 180);
    return query instanceof Response ? query : bucketPage(query, (bucket) => costResults(ledger, bucket, query));
  }
  if (path === '/v1/organization/usage/completions') {
    const query = timeQuery(url, ['project_id', 'user_id', 'api_key_id', 'model', 'batch', 'service_tier'], 31);
    return query instanceof Response ? query : bucketPage(query, (bucket) => completionResults(ledger, bucket, query));
  }
  const projects = [...new Set([OPENAI_SIM_PROJECT, ...ledger.groups.values()])];
  if (path === '/v1/organization/projects') {
    const data = projects.map((id) => ({ id, object: 'organization.project', name: id, created_at: PROJECT_CREATED, archived_at: null, status: 'active' }));
    return Response.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
  }
  const keysOf = /^\/v1\/organization\/projects\/([^/]+)\/api_keys$/.exec(path);
  if (keysOf?.[1] !== undefined && projects.includes(decodeURIComponent(keysOf[1]))) return projectKeys(ledger, apiKeys, decodeURIComponent(keysOf[1]), url);
  return fail(404, `Invalid URL (GET ${path})`, 'invalid_request_error', null);
}
