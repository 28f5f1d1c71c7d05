// Perplexity (Sonar) simulator: OpenAI-like chat at `/chat/completions` (also `/v1/chat/completions`
// and `/v1/sonar`) with Perplexity's differences: strict alternation, citations and search results,
// a priced usage block, usage on the last stream chunk whether asked or not, `event: error` frames
// mid-stream, and error bodies with an integer `code`.

import { countTokens, splitForStream, startSimulator, type Fault, type HandlerContext, type SimulatorHandle, type SimulatorOptions } from './common.ts';
import { isRecord, planReply, promptTokensFor, sseData, SSE_DONE, streamBody, type JsonObject, type StreamPlan } from './openai-behaviour.ts';
import { invalidModel, PERPLEXITY_MODELS, perplexityErrorBody, validatePerplexityRequest, type PerplexityError } from './perplexity-validation.ts';
import { commonFaultResponse, keyEcho } from './common.ts';

export { PERPLEXITY_MODELS } from './perplexity-validation.ts';

export type SearchContextSize = 'low' | 'medium' | 'high';

interface PerplexityPrice {
  /** USD per million tokens. */
  input: number;
  output: number;
  /** Per-request search fee by search context size. */
  requestFee: Record<SearchContextSize, number>;
  /** Deep research bills citations, reasoning and each search query separately. */
  citation?: number;
  reasoning?: number;
  searchQuery?: number;
}

/** List prices from §6 of the provider reference. */
export const PERPLEXITY_PRICES: Record<string, PerplexityPrice> = {
  sonar: { input: 1, output: 1, requestFee: { low: 0.005, medium: 0.008, high: 0.012 } },
  'sonar-pro': { input: 3, output: 15, requestFee: { low: 0.006, medium: 0.01, high: 0.014 } },
  'sonar-reasoning-pro': { input: 2, output: 8, requestFee: { low: 0.006, medium: 0.01, high: 0.014 } },
  'sonar-deep-research': { input: 2, output: 8, requestFee: { low: 0, medium: 0, high: 0 }, citation: 2, reasoning: 3, searchQuery: 0.005 },
};

export const PERPLEXITY_CITATIONS: readonly string[] = ['https://keyway.example/sources/one', 'https://keyway.example/sources/two'];

export const PERPLEXITY_SEARCH_RESULTS: readonly JsonObject[] = PERPLEXITY_CITATIONS.map((url, index) => ({
  title: `Keyway simulator source ${index + 1}`,
  url,
  date: '2025-01-02',
  last_updated: '2025-01-03',
  snippet: `Deterministic search snippet number ${index + 1} from the Keyway Perplexity simulator.`,
  source: 'web',
}));

const CITATION_TOKENS = countTokens(PERPLEXITY_SEARCH_RESULTS.map((result) => String(result.snippet)).join(''));

/** Costs are rounded to micro-dollars, so sums compare exactly in tests. */
const roundCost = (value: number): number => Math.round(value * 1e6) / 1e6;

export interface PerplexityUsageCounts {
  prompt_tokens: number;
  completion_tokens: number;
  citation_tokens: number;
  reasoning_tokens: number;
  num_search_queries: number;
  search_context_size: SearchContextSize;
}

/** The `usage.cost` block for a model and token counts, from the list prices. */
export function perplexityCost(model: string, usage: PerplexityUsageCounts): JsonObject {
  const price = PERPLEXITY_PRICES[model] ?? PERPLEXITY_PRICES.sonar!;
  const cost: Record<string, number> = {
    input_tokens_cost: roundCost((usage.prompt_tokens * price.input) / 1e6),
    output_tokens_cost: roundCost((usage.completion_tokens * price.output) / 1e6),
    request_cost: price.requestFee[usage.search_context_size],
  };
  if (price.citation !== undefined) cost.citation_tokens_cost = roundCost((usage.citation_tokens * price.citation) / 1e6);
  if (price.reasoning !== undefined) cost.reasoning_tokens_cost = roundCost((usage.reasoning_tokens * price.reasoning) / 1e6);
  if (price.searchQuery !== undefined) cost.search_queries_cost = roundCost(usage.num_search_queries * price.searchQuery);
  cost.total_cost = roundCost(Object.values(cost).reduce((sum, value) => sum + value, 0));
  return cost;
}

interface PerplexityOutcome {
  id: string;
  created: number;
  model: string;
  content: string;
  finishReason: 'stop' | 'length';
  usage: JsonObject;
}

function planPerplexity(body: JsonObject, reportCost: boolean): PerplexityOutcome {
  const plan = planReply(body, { allowToolCalls: false });
  const options = isRecord(body.web_search_options) ? body.web_search_options : {};
  const size = options.search_context_size;
  const counts: PerplexityUsageCounts = {
    prompt_tokens: promptTokensFor(body.messages),
    completion_tokens: plan.completionTokens,
    citation_tokens: CITATION_TOKENS,
    // Deep research reasons at length and runs several searches, each billed (§6).
    reasoning_tokens: body.model === 'sonar-deep-research' ? 64 + promptTokensFor(body.messages) : 0,
    num_search_queries: body.model === 'sonar-deep-research' ? 3 : 1,
    search_context_size: size === 'medium' || size === 'high' ? size : 'low',
  };
  const model = String(body.model);
  return {
    id: crypto.randomUUID(),
    created: Math.floor(Date.now() / 1000),
    model,
    content: plan.content ?? '',
    finishReason: plan.finishReason === 'length' ? 'length' : 'stop',
    usage: {
      prompt_tokens: counts.prompt_tokens,
      completion_tokens: counts.completion_tokens,
      total_tokens: counts.prompt_tokens + counts.completion_tokens,
      citation_tokens: counts.citation_tokens,
      num_search_queries: counts.num_search_queries,
      reasoning_tokens: counts.reasoning_tokens,
      search_context_size: counts.search_context_size,
      ...(reportCost ? { cost: perplexityCost(model, counts) } : {}),
    },
  };
}

function completionBody(outcome: PerplexityOutcome): JsonObject {
  return {
    id: outcome.id,
    model: outcome.model,
    created: outcome.created,
    object: 'chat.completion',
    choices: [{ index: 0, finish_reason: outcome.finishReason, message: { role: 'assistant', content: outcome.content } }],
    citations: PERPLEXITY_CITATIONS,
    search_results: PERPLEXITY_SEARCH_RESULTS,
    usage: outcome.usage,
  };
}

/** Perplexity repeats the role in every delta, carries citations on every chunk and usage on the last. */
function completionStream(outcome: PerplexityOutcome): StreamPlan {
  const chunk = (delta: JsonObject, finishReason: string | null, extra: JsonObject = {}): string =>
    sseData({
      id: outcome.id,
      model: outcome.model,
      created: outcome.created,
      object: 'chat.completion.chunk',
      citations: PERPLEXITY_CITATIONS,
      search_results: PERPLEXITY_SEARCH_RESULTS,
      choices: [{ index: 0, finish_reason: finishReason, delta }],
      ...extra,
    });
  const content = splitForStream(outcome.content).map((fragment) => chunk({ role: 'assistant', content: fragment }, null));
  const closing = chunk({ role: 'assistant', content: '' }, outcome.finishReason, { usage: outcome.usage });
  const error = perplexityErrorBody({ status: 500, type: 'internal_error', message: 'An internal error occurred while generating the response.' });
  return { leading: [], content, trailing: [closing, SSE_DONE], errorFrame: `event: error\n${sseData(error)}` };
}

function errorResponse(error: PerplexityError, headers: Record<string, string> = {}): Response {
  return Response.json(perplexityErrorBody(error), { status: error.status, headers });
}

const unauthorized = (message: string): PerplexityError => ({ status: 401, type: 'unauthorized', message });

function bearerKey(request: Request): string | undefined {
  return /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1]?.trim();
}

function checkAuth(request: Request, apiKeys: Set<string>): PerplexityError | undefined {
  const key = bearerKey(request);
  if (!key) return unauthorized('No API key provided. Pass it as a Bearer token in the Authorization header.');
  return apiKeys.has(key) ? undefined : unauthorized('Invalid API key provided.');
}

async function earlyFault(fault: Fault | undefined, model: string, sentKey: string): Promise<Response | undefined> {
  switch (fault?.kind) {
    case 'rate_limit': {
      const seconds = fault.retryAfterSeconds ?? 1;
      const error = { status: 429, type: 'request_rate_limit_exceeded', message: `Rate limit exceeded. Please retry after ${seconds} seconds.` };
      return errorResponse(error, { 'retry-after': String(seconds) });
    }
    case 'quota':
      return errorResponse({ status: 429, type: 'insufficient_quota', message: 'Your API credit balance is exhausted. Add credits to continue.' });
    case 'server_error':
      return errorResponse({ status: 500, type: 'internal_error', message: 'An internal error occurred. Please try again later.' });
    case 'overloaded':
      return errorResponse({ status: 503, type: 'service_unavailable', message: 'The service is temporarily overloaded. Please try again later.' });
    case 'auth':
      return errorResponse(unauthorized(fault.echo === undefined ? 'Invalid API key provided.' : `Invalid API key provided: ${keyEcho(fault.echo, sentKey)}`));
    case 'model_not_found':
      return errorResponse(invalidModel(model));
    case 'context_length':
      return errorResponse({
        status: 400,
        type: 'context_length_exceeded',
        message: `The request exceeds the maximum context length of 127072 tokens for model '${model}'.`,
      });
    default:
      return commonFaultResponse(fault);
  }
}

async function handleChat(request: Request, context: HandlerContext, models: readonly string[], reportCost: boolean): Promise<Response> {
  const text = await request.text();
  let body: unknown = text;
  let parsed = true;
  try {
    body = JSON.parse(text);
  } catch {
    parsed = false;
  }
  context.record(body);
  const authError = checkAuth(request, context.state.apiKeys);
  if (authError) return errorResponse(authError);

  const fault = context.takeFault();
  const early = await earlyFault(fault, isRecord(body) && typeof body.model === 'string' ? body.model : 'sonar', bearerKey(request) ?? '');
  if (early) return early;
  const invalid = parsed ? validatePerplexityRequest(body, models) : { status: 400, type: 'invalid_request', message: 'The request body is not valid JSON.' };
  if (invalid) return errorResponse(invalid);

  const validBody = body as JsonObject;
  const outcome = planPerplexity(validBody, reportCost);
  if (validBody.stream !== true) return Response.json(completionBody(outcome));
  const streamFault = fault?.kind === 'mid_stream_error' || fault?.kind === 'mid_stream_reset' || fault?.kind === 'slow_stream' ? fault : undefined;
  return new Response(streamBody(completionStream(outcome), streamFault), {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}

function handleModels(request: Request, context: HandlerContext, models: readonly string[]): Response {
  context.record(undefined);
  const authError = checkAuth(request, context.state.apiKeys);
  if (authError) return errorResponse(authError);
  return Response.json({ object: 'list', data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'perplexity' })) });
}

const CHAT_PATHS = new Set(['/chat/completions', '/v1/chat/completions', '/v1/sonar']);

export interface PerplexitySimulatorOptions extends SimulatorOptions {
  /** Replaces the default Sonar model list. */
  models?: string[];
  /** false: usage without its `cost` block, as from an older API version or a proxy that strips it. */
  reportCost?: boolean;
}

/** Starts the Perplexity simulator. Default key: `perplexity-test-key`. Base URL is the simulator's url. */
export function startPerplexitySimulator(options: PerplexitySimulatorOptions = {}): SimulatorHandle {
  const models = options.models ?? PERPLEXITY_MODELS;
  return startSimulator(
    'perplexity',
    (request, context) => {
      const path = context.url.pathname;
      if (request.method === 'POST' && CHAT_PATHS.has(path)) return handleChat(request, context, models, options.reportCost !== false);
      if (request.method === 'GET' && (path === '/v1/models' || path === '/models')) return handleModels(request, context, models);
      return errorResponse({ status: 404, type: 'not_found', message: `No route for ${request.method} ${path}.` });
    },
    options,
  );
}
