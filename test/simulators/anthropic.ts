// Anthropic Messages API simulator: /v1/messages (plain and SSE), /v1/messages/count_tokens and
// /v1/models, with the real API's headers, error bodies, prompt caching and thinking signatures.
// Validation lives in anthropic-validation.ts; the shared answer rules in native-helpers.ts.
import type { Fault, HandlerContext, SimulatorHandle, SimulatorOptions, SimulatorState } from './common.ts';
import { countTokens, splitForStream, startSimulator } from './common.ts';
import type { AnthropicModel, ValidatedAnthropicRequest } from './anthropic-validation.ts';
import { AnthropicRejection, findAnthropicModel, thinkingSignature, validateAnthropicRequest } from './anthropic-validation.ts';
import type { ConversationFacts, JsonObject, StreamFrame } from './native-helpers.ts';
import {
  digest,
  faultedStream,
  isObject,
  isString,
  jsonResponse,
  planReply,
  randomId,
  readBody,
  rfc3339,
  runMemory,
  sseEvent,
  streamHeaders,
  toolCallTokens,
} from './native-helpers.ts';
import { commonFaultResponse, keyEcho } from './common.ts';
import { handleAnthropicAdmin } from './anthropic-admin.ts';
import { answerCitations } from './anthropic-citations.ts';
import { UsageLedger } from './usage-ledger.ts';

export type { AnthropicModel } from './anthropic-validation.ts';

export interface AnthropicSimulatorOptions extends SimulatorOptions {
  models?: AnthropicModel[];
  /** Keys the Admin API (`/v1/organizations/…`) accepts. Default: `ANTHROPIC_SIM_ADMIN_KEY`. */
  adminKeys?: string[];
}

export const ANTHROPIC_SIM_ADMIN_KEY = 'sk-ant-admin01-KeywaySimulatorAdminKey0123456789abcdef-AA';

export interface AnthropicSimulatorHandle extends SimulatorHandle {
  /** What was served, for the Admin API's usage and cost reports; `ledger.addCharge` injects drift. */
  ledger: UsageLedger;
}

const claude = (id: string, displayName: string, createdAt: string, maxTokens: number, thinking: boolean): AnthropicModel => ({
  id,
  displayName,
  createdAt,
  maxInputTokens: 200_000,
  maxTokens,
  thinking,
});

export const defaultAnthropicModels: AnthropicModel[] = [
  claude('claude-opus-4-5-20251101', 'Claude Opus 4.5', '2025-11-01T00:00:00Z', 64_000, true),
  claude('claude-haiku-4-5-20251001', 'Claude Haiku 4.5', '2025-10-01T00:00:00Z', 64_000, true),
  claude('claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5', '2025-09-29T00:00:00Z', 64_000, true),
  claude('claude-opus-4-1-20250805', 'Claude Opus 4.1', '2025-08-05T00:00:00Z', 32_000, true),
  claude('claude-sonnet-4-20250514', 'Claude Sonnet 4', '2025-05-14T00:00:00Z', 64_000, true),
  claude('claude-3-7-sonnet-20250219', 'Claude Sonnet 3.7', '2025-02-19T00:00:00Z', 64_000, true),
  claude('claude-3-haiku-20240307', 'Claude Haiku 3', '2024-03-07T00:00:00Z', 4_096, false),
  claude('claude-3-sonnet-20240229', 'Claude Sonnet 3', '2024-02-29T00:00:00Z', 4_096, false),
  claude('claude-3-opus-20240229', 'Claude Opus 3', '2024-02-29T00:00:00Z', 4_096, false),
];

const supportedVersions = ['2023-06-01', '2023-01-01'];
const requestsPerMinute = 1_000;
const tokensPerMinute = 400_000;

export function startAnthropicSimulator(options: AnthropicSimulatorOptions = {}): AnthropicSimulatorHandle {
  const models = options.models ?? defaultAnthropicModels;
  const ledger = new UsageLedger('apikey_01', null);
  const adminKeys = new Set(options.adminKeys ?? [ANTHROPIC_SIM_ADMIN_KEY]);
  const handle = startSimulator(
    'anthropic',
    (request, context) => handleAnthropicAdmin(request, context.url, ledger, adminKeys, context.state.apiKeys) ?? route(request, context, models, ledger),
    options,
  );
  return {
    ...handle,
    ledger,
    reset() {
      handle.reset();
      ledger.clear();
    },
  };
}

async function route(request: Request, context: HandlerContext, models: AnthropicModel[], ledger: UsageLedger): Promise<Response> {
  const { pathname } = context.url;
  const headers = rateLimitHeaders(context.state);
  if (request.method === 'POST' && (pathname === '/v1/messages' || pathname === '/v1/messages/count_tokens')) {
    return inference(request, context, models, headers, pathname.endsWith('count_tokens') ? 'count_tokens' : 'messages', ledger);
  }
  context.record(undefined);
  const problem = checkHeaders(request, context.state);
  if (problem) return rejection(problem, headers);
  if (request.method === 'GET' && pathname === '/v1/models') return listModels(context.url, models, headers);
  if (request.method === 'GET' && pathname.startsWith('/v1/models/')) {
    const model = findAnthropicModel(decodeURIComponent(pathname.slice('/v1/models/'.length)), models);
    return model ? jsonResponse(modelInfo(model), 200, headers) : errorResponse(404, 'not_found_error', `model: ${pathname.slice(11)}`, headers);
  }
  return errorResponse(404, 'not_found_error', 'Not Found', headers);
}

async function inference(
  request: Request,
  context: HandlerContext,
  models: AnthropicModel[],
  headers: Record<string, string>,
  endpoint: 'messages' | 'count_tokens',
  ledger: UsageLedger,
): Promise<Response> {
  const parsed = await readBody(request, context);
  const fault = context.takeFault();
  const faulted = await applyFault(fault, parsed.ok ? parsed.value : undefined, models, headers, request.headers.get('x-api-key') ?? '');
  if (faulted) return faulted;
  const problem = checkHeaders(request, context.state);
  if (problem) return rejection(problem, headers);
  if (!parsed.ok) return errorResponse(400, 'invalid_request_error', 'There was an error parsing the body of your request: it is not valid JSON.', headers);
  let validated: ValidatedAnthropicRequest;
  try {
    validated = validateAnthropicRequest(parsed.value, models, endpoint);
  } catch (error) {
    if (error instanceof AnthropicRejection) return rejection(error, headers);
    throw error;
  }
  const prompt = accountPrompt(validated);
  if (prompt.totalTokens > validated.model.maxInputTokens) {
    return errorResponse(400, 'invalid_request_error', `prompt is too long: ${prompt.totalTokens} tokens > ${validated.model.maxInputTokens} maximum`, headers);
  }
  if (endpoint === 'count_tokens') return jsonResponse({ input_tokens: prompt.totalTokens }, 200, headers);
  const memory = runMemory(context.state);
  const cacheHit = prompt.cacheKey !== undefined && memory.has(prompt.cacheKey);
  if (prompt.cacheKey !== undefined) memory.add(prompt.cacheKey);
  const message = buildMessage(validated, prompt, cacheHit);
  recordServed(ledger, request, message);
  if (!validated.stream) return jsonResponse(message, 200, headers);
  const errorFrame = sseEvent({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error');
  return new Response(faultedStream(streamFrames(message), fault, [errorFrame]), { status: 200, headers: { ...headers, ...streamHeaders } });
}

/** What the Admin API's reports will say this call used. */
function recordServed(ledger: UsageLedger, request: Request, message: JsonObject): void {
  const usage = message.usage as { input_tokens: number; cache_read_input_tokens: number; output_tokens: number; cache_creation: Record<string, number> };
  ledger.record({
    at: Date.now(),
    apiKey: request.headers.get('x-api-key') ?? '',
    model: String(message.model),
    uncachedInputTokens: usage.input_tokens,
    cacheReadTokens: usage.cache_read_input_tokens,
    cacheWrite5mTokens: usage.cache_creation.ephemeral_5m_input_tokens ?? 0,
    cacheWrite1hTokens: usage.cache_creation.ephemeral_1h_input_tokens ?? 0,
    outputTokens: usage.output_tokens,
  });
}

function checkHeaders(request: Request, state: SimulatorState): AnthropicRejection | undefined {
  const key = request.headers.get('x-api-key');
  if (key === null) {
    // The real API reads a bearer token as OAuth, which API keys are not.
    if (request.headers.get('authorization') !== null)
      return new AnthropicRejection(401, 'authentication_error', 'OAuth authentication is currently not supported.');
    return new AnthropicRejection(401, 'authentication_error', 'x-api-key header is required');
  }
  if (!state.apiKeys.has(key)) return new AnthropicRejection(401, 'authentication_error', 'invalid x-api-key');
  const version = request.headers.get('anthropic-version');
  if (version === null) return new AnthropicRejection(400, 'invalid_request_error', 'anthropic-version: header is required');
  if (!supportedVersions.includes(version)) return new AnthropicRejection(400, 'invalid_request_error', `anthropic-version: invalid version "${version}"`);
  return undefined;
}

async function applyFault(
  fault: Fault | undefined,
  body: unknown,
  models: AnthropicModel[],
  headers: Record<string, string>,
  sentKey: string,
): Promise<Response | undefined> {
  const modelName = isObject(body) && isString(body.model) ? body.model : 'unknown-model';
  switch (fault?.kind) {
    case 'rate_limit':
      return errorResponse(
        429,
        'rate_limit_error',
        `This request would exceed the rate limit for your organization of ${requestsPerMinute} requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.`,
        { ...headers, 'anthropic-ratelimit-requests-remaining': '0' },
        { 'retry-after': String(fault.retryAfterSeconds ?? 1) },
      );
    case 'quota':
      return errorResponse(
        402,
        'billing_error',
        'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
        headers,
      );
    case 'server_error':
      return errorResponse(500, 'api_error', 'Internal server error', headers);
    case 'overloaded':
      return errorResponse(529, 'overloaded_error', 'Overloaded', headers);
    case 'auth':
      return errorResponse(
        401,
        'authentication_error',
        fault.echo === undefined ? 'invalid x-api-key' : `invalid x-api-key: ${keyEcho(fault.echo, sentKey)}`,
        headers,
      );
    case 'model_not_found':
      return errorResponse(404, 'not_found_error', `model: ${modelName}`, headers);
    case 'context_length': {
      const maximum = findAnthropicModel(modelName, models)?.maxInputTokens ?? 200_000;
      return errorResponse(
        400,
        'invalid_request_error',
        `prompt is too long: ${maximum + 1 + countTokens(JSON.stringify(body ?? ''))} tokens > ${maximum} maximum`,
        headers,
      );
    }
    default:
      return commonFaultResponse(fault, headers);
  }
}

interface PromptAccount {
  totalTokens: number;
  prefixTokens: number;
  cacheKey: string | undefined;
  cacheTtl: '5m' | '1h';
}

/**
 * Prompt tokens over tools, system and messages in the real API's caching order. The cached prefix
 * runs to the last block carrying `cache_control`; its key includes the model, as real caches do.
 */
function accountPrompt(validated: ValidatedAnthropicRequest): PromptAccount {
  const segments: string[] = [];
  let breakEnd = 0;
  let cacheTtl: '5m' | '1h' = '5m';
  const add = (text: string, cacheControl: unknown): void => {
    segments.push(text);
    if (isObject(cacheControl)) {
      breakEnd = segments.length;
      cacheTtl = cacheControl.ttl === '1h' ? '1h' : '5m';
    }
  };
  for (const tool of validated.tools)
    add(JSON.stringify({ name: tool.name, description: tool.description, input_schema: tool.input_schema }), tool.cache_control);
  for (const { block } of validated.system) add(block.text as string, block.cache_control);
  for (const turn of validated.turns) for (const { block } of turn.blocks) add(blockText(block), block.cache_control);
  if (validated.cacheEverything) breakEnd = segments.length;
  const totalTokens = countTokens(segments.join('\n'));
  if (breakEnd === 0) return { totalTokens, prefixTokens: 0, cacheKey: undefined, cacheTtl };
  const prefix = segments.slice(0, breakEnd).join('\n');
  return { totalTokens, prefixTokens: countTokens(prefix), cacheKey: digest(`${validated.model.id}\n${prefix}`), cacheTtl };
}

function blockText(block: JsonObject): string {
  switch (block.type) {
    case 'text':
      return block.text as string;
    case 'image':
      return '[image]';
    case 'document':
      return documentText(block);
    case 'search_result':
      return [block.title, block.source, ...(block.content as JsonObject[]).map(blockText)].join(' ');
    case 'tool_use':
      return `${String(block.name)} ${JSON.stringify(block.input)}`;
    case 'tool_result':
      return toolResultText(block);
    case 'thinking':
      return block.thinking as string;
    default:
      return '';
  }
}

/** A document's words as the model reads them (title, context, text); a PDF, a URL or a file stands as one token. */
function documentText(block: JsonObject): string {
  const source = block.source as JsonObject;
  const heading = [block.title, block.context].filter(isString);
  if (source.type === 'text') return [...heading, source.data].join(' ');
  if (source.type === 'content' && isString(source.content)) return [...heading, source.content].join(' ');
  if (source.type === 'content') return [...heading, ...(source.content as JsonObject[]).map(blockText)].join(' ');
  return [...heading, '[document]'].join(' ');
}

function toolResultText(block: JsonObject): string {
  if (isString(block.content)) return block.content;
  if (!Array.isArray(block.content)) return '';
  return block.content.map((inner) => (isObject(inner) ? blockText(inner) : '')).join(' ');
}

function conversationFacts(validated: ValidatedAnthropicRequest, thinkingTokens: number): ConversationFacts {
  const last = validated.turns[validated.turns.length - 1];
  const lastUser = [...validated.turns].reverse().find((turn) => turn.role === 'user');
  const userBlocks = lastUser?.blocks.map(({ block }) => block) ?? [];
  const lastBlocks = last?.role === 'user' ? last.blocks.map(({ block }) => block) : [];
  const results = lastBlocks.filter((block) => block.type === 'tool_result');
  const choice = validated.toolChoice;
  return {
    lastUserText: userBlocks
      .filter((block) => block.type === 'text')
      .map((block) => block.text as string)
      .join('\n'),
    imageCount: userBlocks.filter((block) => block.type === 'image').length,
    toolResults: results.length > 0 ? results.map(toolResultText) : undefined,
    tools: validated.tools.filter((tool) => isObject(tool.input_schema)).map((tool) => ({ name: tool.name as string, schema: tool.input_schema })),
    // A final assistant turn is a prefill to continue, never a moment to call tools.
    toolsDisabled: choice?.type === 'none' || last?.role === 'assistant',
    forcedTool: choice?.type === 'tool' ? (choice.name as string) : undefined,
    parallelToolCalls: choice?.disable_parallel_tool_use !== true,
    jsonMode: validated.jsonMode,
    maxTokens: validated.maxTokens === undefined ? undefined : Math.max(0, validated.maxTokens - thinkingTokens),
    stopSequences: validated.stopSequences,
  };
}

function buildMessage(validated: ValidatedAnthropicRequest, prompt: PromptAccount, cacheHit: boolean): JsonObject {
  const lastUserText = conversationFacts(validated, 0).lastUserText;
  const thinking = validated.thinkingBudget === undefined ? undefined : `Thinking about: ${lastUserText}`.slice(0, validated.thinkingBudget * 4);
  const thinkingTokens = thinking === undefined ? 0 : countTokens(thinking);
  const plan = planReply(conversationFacts(validated, thinkingTokens));
  // A web search tool is run once before a text answer, as the real API's server tool would.
  const searches = plan.kind === 'text' && validated.tools.some((tool) => String(tool.type).startsWith('web_search_'));
  const content: JsonObject[] = thinking === undefined ? [] : [{ type: 'thinking', thinking, signature: thinkingSignature(thinking) }];
  let stopReason: string;
  let stopSequence: string | null = null;
  let outputTokens = thinkingTokens;
  if (plan.kind === 'tool_calls') {
    for (const call of plan.calls) content.push({ type: 'tool_use', id: randomId('toolu_'), name: call.name, input: call.arguments });
    stopReason = 'tool_use';
    outputTokens += toolCallTokens(plan.calls);
  } else {
    if (searches) content.push(...webSearchBlocks(lastUserText));
    content.push(textBlock(plan.text, answerCitations(validated.turns)));
    stopReason = plan.finish === 'length' ? 'max_tokens' : plan.finish === 'stop_sequence' ? 'stop_sequence' : 'end_turn';
    stopSequence = plan.stopSequence ?? null;
    outputTokens += countTokens(plan.text);
  }
  const creation = cacheHit ? 0 : prompt.prefixTokens;
  const usage = {
    input_tokens: prompt.totalTokens - prompt.prefixTokens,
    cache_creation_input_tokens: creation,
    cache_read_input_tokens: cacheHit ? prompt.prefixTokens : 0,
    cache_creation: {
      ephemeral_5m_input_tokens: prompt.cacheTtl === '5m' ? creation : 0,
      ephemeral_1h_input_tokens: prompt.cacheTtl === '1h' ? creation : 0,
    },
    output_tokens: outputTokens,
    service_tier: 'standard',
    ...(searches ? { server_tool_use: { web_search_requests: 1, web_fetch_requests: 0 } } : {}),
  };
  return {
    id: randomId('msg_'),
    type: 'message',
    role: 'assistant',
    model: validated.model.id,
    content,
    stop_reason: stopReason,
    stop_sequence: stopSequence,
    usage,
  };
}

/** The answer's text; with the sources it cites when the request enabled citations, as the real API answers then. */
function textBlock(text: string, citations: JsonObject[]): JsonObject {
  return citations.length === 0 ? { type: 'text', text } : { type: 'text', text, citations };
}

/** The blocks of one web search, as the real API returns them: the server tool call, then its results. */
function webSearchBlocks(query: string): JsonObject[] {
  const id = randomId('srvtoolu_');
  const result = {
    type: 'web_search_result',
    url: 'https://example.com/search-result',
    title: `About ${query}`.slice(0, 80),
    encrypted_content: 'EqgfCioIARgB',
    page_age: null,
  };
  return [
    { type: 'server_tool_use', id, name: 'web_search', input: { query } },
    { type: 'web_search_tool_result', tool_use_id: id, content: [result] },
  ];
}

function streamFrames(message: JsonObject): StreamFrame[] {
  const frames: StreamFrame[] = [];
  const emit = (type: string, data: JsonObject, content = false): void => {
    frames.push({ text: sseEvent({ type, ...data }, type), content });
  };
  const usage = message.usage as JsonObject;
  emit('message_start', { message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
  (message.content as JsonObject[]).forEach((block, index) => {
    emit('content_block_start', { index, content_block: blockStart(block) });
    if (index === 0) emit('ping', {});
    for (const delta of blockDeltas(block)) emit('content_block_delta', { index, delta }, true);
    emit('content_block_stop', { index });
  });
  const finalUsage = {
    input_tokens: usage.input_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
    output_tokens: usage.output_tokens,
    ...(usage.server_tool_use === undefined ? {} : { server_tool_use: usage.server_tool_use }),
  };
  emit('message_delta', { delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence }, usage: finalUsage });
  emit('message_stop', {});
  return frames;
}

function blockStart(block: JsonObject): JsonObject {
  if (block.type === 'tool_use' || block.type === 'server_tool_use') return { type: block.type, id: block.id, name: block.name, input: {} };
  // A server tool's result arrives whole in its start event.
  if (block.type === 'web_search_tool_result') return block;
  if (block.type === 'thinking') return { type: 'thinking', thinking: '', signature: '' };
  return { type: 'text', text: '' };
}

function blockDeltas(block: JsonObject): JsonObject[] {
  if (block.type === 'web_search_tool_result') return [];
  if (block.type === 'tool_use' || block.type === 'server_tool_use') {
    // The real API opens every tool input with an empty fragment; parsers must cope.
    const pieces = ['', ...splitForStream(JSON.stringify(block.input))];
    return pieces.map((partial_json) => ({ type: 'input_json_delta', partial_json }));
  }
  if (block.type === 'thinking') {
    const pieces = splitForStream(block.thinking as string).map((thinking) => ({ type: 'thinking_delta', thinking }));
    return [...pieces, { type: 'signature_delta', signature: block.signature }];
  }
  const text = splitForStream(block.text as string).map((text) => ({ type: 'text_delta', text }));
  // Each citation is a `citations_delta` event of its own, which the SDK appends to the block's `citations`.
  const citations = Array.isArray(block.citations) ? block.citations.map((citation) => ({ type: 'citations_delta', citation })) : [];
  return [...text, ...citations];
}

function listModels(url: URL, models: AnthropicModel[], headers: Record<string, string>): Response {
  const limitText = url.searchParams.get('limit');
  const limit = limitText === null ? 20 : Number(limitText);
  if (!Number.isInteger(limit)) return errorResponse(400, 'invalid_request_error', 'limit: Input should be a valid integer', headers);
  if (limit < 1) return errorResponse(400, 'invalid_request_error', 'limit: Input should be greater than or equal to 1', headers);
  if (limit > 1000) return errorResponse(400, 'invalid_request_error', 'limit: Input should be less than or equal to 1000', headers);
  const ordered = [...models].sort((left, right) => right.createdAt.localeCompare(left.createdAt));
  const afterId = url.searchParams.get('after_id');
  const beforeId = url.searchParams.get('before_id');
  const anchorId = afterId ?? beforeId;
  const anchor = anchorId === null ? -1 : ordered.findIndex((model) => model.id === anchorId);
  if (anchorId !== null && anchor < 0)
    return errorResponse(400, 'invalid_request_error', `${afterId !== null ? 'after_id' : 'before_id'}: unknown model id "${anchorId}"`, headers);
  let page: AnthropicModel[];
  let hasMore: boolean;
  if (beforeId !== null && afterId === null) {
    const start = Math.max(0, anchor - limit);
    page = ordered.slice(start, anchor);
    hasMore = start > 0;
  } else {
    const start = anchor + 1;
    page = ordered.slice(start, start + limit);
    hasMore = start + limit < ordered.length;
  }
  return jsonResponse(
    { data: page.map(modelInfo), has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page[page.length - 1]?.id ?? null },
    200,
    headers,
  );
}

function modelInfo(model: AnthropicModel): JsonObject {
  return {
    type: 'model',
    id: model.id,
    display_name: model.displayName,
    created_at: model.createdAt,
    max_input_tokens: model.maxInputTokens,
    max_tokens: model.maxTokens,
  };
}

function rateLimitHeaders(state: SimulatorState): Record<string, string> {
  const reset = rfc3339(new Date(Date.now() + 60_000));
  const used = state.requests.filter((request) => request.method === 'POST').length;
  const headers: Record<string, string> = { 'request-id': randomId('req_') };
  const limits: [string, number, number][] = [
    ['requests', requestsPerMinute, Math.max(0, requestsPerMinute - used - 1)],
    ['tokens', tokensPerMinute, tokensPerMinute],
    ['input-tokens', tokensPerMinute, tokensPerMinute],
    ['output-tokens', tokensPerMinute / 5, tokensPerMinute / 5],
  ];
  for (const [name, limit, remaining] of limits) {
    headers[`anthropic-ratelimit-${name}-limit`] = String(limit);
    headers[`anthropic-ratelimit-${name}-remaining`] = String(remaining);
    headers[`anthropic-ratelimit-${name}-reset`] = reset;
  }
  return headers;
}

function rejection(problem: AnthropicRejection, headers: Record<string, string>): Response {
  return errorResponse(problem.status, problem.errorType, problem.message, headers);
}

/** The real error body; `x-should-retry` mirrors what the official SDKs read. */
export function errorResponse(status: number, type: string, message: string, headers: Record<string, string>, extra: Record<string, string> = {}): Response {
  const retryable = status === 429 || status >= 500;
  return jsonResponse({ type: 'error', error: { type, message }, request_id: headers['request-id'] }, status, {
    ...headers,
    'x-should-retry': String(retryable),
    ...extra,
  });
}
