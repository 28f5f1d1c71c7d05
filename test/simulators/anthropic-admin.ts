// Anthropic's Admin API over what the simulator served (usage-ledger.ts):
// `GET /v1/organizations/usage_report/messages`, `GET /v1/organizations/cost_report` and
// `GET /v1/organizations/api_keys`, in the shapes of Anthropic's Admin API reference. Only an admin
// key (`sk-ant-admin…` in `x-api-key`, with `anthropic-version`) is accepted.

import { costByKind, dayBuckets, groupByOf, listParameter, pageOfBuckets, redactedKey, type TokenKind, type UsageLedger } from './usage-ledger.ts';

const SUPPORTED_VERSIONS = ['2023-06-01'];

function fail(status: number, type: string, message: string): Response {
  return Response.json({ type: 'error', error: { type, message }, request_id: `req_sim${Date.now()}` }, { status });
}

function authorize(request: Request, adminKeys: ReadonlySet<string>, apiKeys: ReadonlySet<string>): Response | undefined {
  const key = request.headers.get('x-api-key');
  if (key === null) return fail(401, 'authentication_error', 'x-api-key header is required');
  if (apiKeys.has(key)) return fail(403, 'permission_error', 'This endpoint requires an Admin API key (sk-ant-admin...).');
  if (!adminKeys.has(key)) return fail(401, 'authentication_error', 'invalid x-api-key');
  const version = request.headers.get('anthropic-version');
  if (version === null) return fail(400, 'invalid_request_error', 'anthropic-version: header is required');
  if (!SUPPORTED_VERSIONS.includes(version)) return fail(400, 'invalid_request_error', `anthropic-version: invalid version "${version}"`);
  return undefined;
}

interface ReportQuery {
  start: number;
  end: number;
  limit: number;
  page: string | null;
  groupBy: string[];
  /** `workspace_ids[]` (usage report only): only these workspaces, when given. */
  workspaces: string[];
}

function reportQuery(url: URL, allowedGroups: readonly string[]): ReportQuery | Response {
  const startText = url.searchParams.get('starting_at');
  if (startText === null) return fail(400, 'invalid_request_error', 'starting_at: Field required');
  const start = Date.parse(startText);
  if (Number.isNaN(start)) return fail(400, 'invalid_request_error', 'starting_at: Input should be a valid datetime');
  const endText = url.searchParams.get('ending_at');
  const end = endText === null ? Date.now() : Date.parse(endText);
  if (Number.isNaN(end)) return fail(400, 'invalid_request_error', 'ending_at: Input should be a valid datetime');
  const width = url.searchParams.get('bucket_width') ?? '1d';
  if (width !== '1d') return fail(400, 'invalid_request_error', `bucket_width: this simulator supports only '1d', not '${width}'`);
  const limit = Number(url.searchParams.get('limit') ?? '7');
  if (!Number.isInteger(limit) || limit < 1 || limit > 31) return fail(400, 'invalid_request_error', 'limit: Input should be between 1 and 31');
  const groupBy = groupByOf(url);
  const unknown = groupBy.find((group) => !allowedGroups.includes(group));
  if (unknown !== undefined) return fail(400, 'invalid_request_error', `group_by: Input should be one of ${allowedGroups.join(', ')}; got '${unknown}'`);
  return { start, end, limit, page: url.searchParams.get('page'), groupBy, workspaces: listParameter(url, 'workspace_ids') };
}

function inBucket(at: number, bucket: { start: number; end: number }): boolean {
  return at >= bucket.start && at < bucket.end;
}

interface MessageTotals {
  uncached: number;
  cacheRead: number;
  write5m: number;
  write1h: number;
  output: number;
  model: string;
  apiKeyId: string;
  workspace: string | null;
}

function inWorkspaces(ledger: UsageLedger, apiKey: string | undefined, query: ReportQuery): boolean {
  return query.workspaces.length === 0 || query.workspaces.includes(ledger.groupOf(apiKey) ?? '');
}

function usageResults(ledger: UsageLedger, bucket: { start: number; end: number }, query: ReportQuery): unknown[] {
  const { groupBy } = query;
  const totals = new Map<string, MessageTotals>();
  const entryFor = (model: string, apiKey: string): MessageTotals => {
    const apiKeyId = ledger.keyId(apiKey);
    const workspace = ledger.groupOf(apiKey);
    const name = [
      groupBy.includes('model') ? model : '',
      groupBy.includes('api_key_id') ? apiKeyId : '',
      groupBy.includes('workspace_id') ? workspace : '',
    ].join('\u0000');
    let entry = totals.get(name);
    if (entry === undefined) totals.set(name, (entry = { uncached: 0, cacheRead: 0, write5m: 0, write1h: 0, output: 0, model, apiKeyId, workspace }));
    return entry;
  };
  for (const call of ledger.served.filter((served) => inBucket(served.at, bucket) && inWorkspaces(ledger, served.apiKey, query))) {
    const entry = entryFor(call.model, call.apiKey);
    entry.uncached += call.uncachedInputTokens;
    entry.cacheRead += call.cacheReadTokens;
    entry.write5m += call.cacheWrite5mTokens;
    entry.write1h += call.cacheWrite1hTokens;
    entry.output += call.outputTokens;
  }
  for (const charge of ledger.charges.filter(
    (extra) => inBucket(extra.at, bucket) && extra.outputTokens !== undefined && inWorkspaces(ledger, extra.apiKey, query),
  )) {
    entryFor(charge.model, charge.apiKey ?? '').output += charge.outputTokens ?? 0;
  }
  return [...totals.values()].map((entry) => ({
    uncached_input_tokens: entry.uncached,
    cache_creation: { ephemeral_1h_input_tokens: entry.write1h, ephemeral_5m_input_tokens: entry.write5m },
    cache_read_input_tokens: entry.cacheRead,
    output_tokens: entry.output,
    server_tool_use: { web_search_requests: 0 },
    api_key_id: groupBy.includes('api_key_id') ? entry.apiKeyId : null,
    workspace_id: groupBy.includes('workspace_id') ? entry.workspace : null,
    model: groupBy.includes('model') ? entry.model : null,
    service_tier: groupBy.includes('service_tier') ? 'standard' : null,
    context_window: groupBy.includes('context_window') ? '0-200k' : null,
  }));
}

const TOKEN_TYPE: Record<TokenKind, string> = {
  uncached_input: 'uncached_input_tokens',
  cache_read: 'cache_read_input_tokens',
  cache_write_5m: 'cache_creation.ephemeral_5m_input_tokens',
  cache_write_1h: 'cache_creation.ephemeral_1h_input_tokens',
  output: 'output_tokens',
};

const TOKEN_LABEL: Record<string, string> = {
  uncached_input_tokens: 'Input Tokens',
  cache_read_input_tokens: 'Cache Read Input Tokens',
  'cache_creation.ephemeral_5m_input_tokens': '5m Cache Write Input Tokens',
  'cache_creation.ephemeral_1h_input_tokens': '1h Cache Write Input Tokens',
  output_tokens: 'Output Tokens',
};

/** Amounts in cents as decimal strings, as Anthropic reports them ("123.45" USD is $1.2345). */
function cents(usd: number): string {
  return (Math.round(usd * 100 * 1e6) / 1e6).toString();
}

function costResults(ledger: UsageLedger, bucket: { start: number; end: number }, groupBy: string[]): unknown[] {
  const byDescription = groupBy.includes('description');
  const byWorkspace = groupBy.includes('workspace_id');
  const totals = new Map<string, { usd: number; model: string; tokenType: string; workspace: string | null }>();
  const add = (model: string, tokenType: string, workspace: string | null, usd: number): void => {
    const name = `${byDescription ? `${model}\u0000${tokenType}` : ''}\u0000${byWorkspace ? workspace : ''}`;
    const entry = totals.get(name) ?? { usd: 0, model, tokenType, workspace };
    entry.usd += usd;
    totals.set(name, entry);
  };
  for (const call of ledger.served.filter((served) => inBucket(served.at, bucket))) {
    for (const [kind, usd] of Object.entries(costByKind('anthropic', call))) {
      if (usd > 0) add(call.model, TOKEN_TYPE[kind as TokenKind], ledger.groupOf(call.apiKey), usd);
    }
  }
  for (const charge of ledger.charges.filter((extra) => inBucket(extra.at, bucket)))
    add(charge.model, 'output_tokens', ledger.groupOf(charge.apiKey), charge.usd);
  return [...totals.values()].map((entry) => ({
    currency: 'USD',
    amount: cents(entry.usd),
    workspace_id: byWorkspace ? entry.workspace : null,
    description: byDescription ? `${entry.model} Usage - ${TOKEN_LABEL[entry.tokenType] ?? entry.tokenType}` : null,
    cost_type: byDescription ? 'tokens' : null,
    context_window: byDescription ? '0-200k' : null,
    model: byDescription ? entry.model : null,
    service_tier: byDescription ? 'standard' : null,
    token_type: byDescription ? entry.tokenType : null,
  }));
}

function report(query: ReportQuery, results: (bucket: { start: number; end: number }) => unknown[]): Response {
  const buckets = dayBuckets(query.start, query.end).map((bucket) => ({
    starting_at: new Date(bucket.start).toISOString().replace('.000Z', 'Z'),
    ending_at: new Date(bucket.end).toISOString().replace('.000Z', 'Z'),
    results: results(bucket),
  }));
  const page = pageOfBuckets(buckets, query.page, query.limit);
  return Response.json({ data: page.data, has_more: page.hasMore, next_page: page.nextPage });
}

function listKeys(ledger: UsageLedger, apiKeys: ReadonlySet<string>, url: URL): Response {
  const workspace = url.searchParams.get('workspace_id');
  const all = [...apiKeys]
    .filter((apiKey) => workspace === null || ledger.groupOf(apiKey) === workspace)
    .map((apiKey) => ({
      id: ledger.keyId(apiKey),
      type: 'api_key',
      name: 'Keyway simulator key',
      partial_key_hint: redactedKey(apiKey, 'anthropic'),
      status: 'active',
      created_at: '2025-01-01T00:00:00Z',
      created_by: { id: 'user_01KeywaySimulator', type: 'user' },
      workspace_id: ledger.groupOf(apiKey),
    }));
  const after = url.searchParams.get('after_id');
  const limit = Number(url.searchParams.get('limit') ?? '20');
  const from = after === null ? 0 : all.findIndex((key) => key.id === after) + 1;
  const data = all.slice(from, from + limit);
  return Response.json({ data, has_more: from + limit < all.length, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
}

/** Answers an `/v1/organizations/…` request, or undefined when the path is not one of them. */
export function handleAnthropicAdmin(
  request: Request,
  url: URL,
  ledger: UsageLedger,
  adminKeys: ReadonlySet<string>,
  apiKeys: ReadonlySet<string>,
): Response | undefined {
  const path = url.pathname;
  if (!path.startsWith('/v1/organizations/')) return undefined;
  if (request.method !== 'GET') return fail(405, 'invalid_request_error', `Method ${request.method} not allowed`);
  const refused = authorize(request, adminKeys, apiKeys);
  if (refused) return refused;
  ledger.reportCalls.push(`${path}${url.search}`);
  if (path === '/v1/organizations/usage_report/messages') {
    const query = reportQuery(url, ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window']);
    return query instanceof Response ? query : report(query, (bucket) => usageResults(ledger, bucket, query));
  }
  if (path === '/v1/organizations/cost_report') {
    const query = reportQuery(url, ['workspace_id', 'description']);
    return query instanceof Response ? query : report(query, (bucket) => costResults(ledger, bucket, query.groupBy));
  }
  if (path === '/v1/organizations/api_keys') return listKeys(ledger, apiKeys, url);
  return fail(404, 'not_found_error', 'Not Found');
}
