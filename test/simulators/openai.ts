// OpenAI simulator: `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings` and `/v1/models`, as
// strict as the real API about auth and request shape, with deterministic answers and OpenAI's own error bodies and
// headers for every fault. The gateway's base URL for it is `<url>/v1`.

import { startSimulator, type Fault, type HandlerContext, type SimulatorHandle, type SimulatorOptions } from './common.ts';
import { goDuration, isRecord, randomToken, streamBody, streamFaultOf, type JsonObject } from './openai-behaviour.ts';
import { completionBody, completionStream, planChat, wantsUsage } from './openai-chat.ts';
import { embeddingResponse } from './openai-embeddings.ts';
import { errors, openAIErrorBody, type OpenAIError } from './openai-errors.ts';
import { validateChatRequest, validateEmbeddingRequest } from './openai-validation.ts';
import { planResponse, responsesStream } from './openai-responses.ts';
import { validateResponsesRequest } from './openai-responses-validation.ts';
import { commonFaultResponse, keyEcho } from './common.ts';
import { handleOpenAIAdmin, OPENAI_SIM_PROJECT } from './openai-admin.ts';
import { UsageLedger } from './usage-ledger.ts';

/** Models and their real `created` stamps, so `/v1/models` looks like OpenAI's. */
const MODEL_CREATED: Record<string, number> = {
  'gpt-4o': 1715367049,
  'gpt-4o-mini': 1721172741,
  'gpt-4-turbo-preview': 1706037777,
  'gpt-4': 1687882411,
  'gpt-3.5-turbo': 1677610602,
  'gpt-4.1': 1744316542,
  'gpt-5': 1754425777,
  'o4-mini': 1744225351,
  'text-embedding-3-small': 1705948997,
  'text-embedding-3-large': 1705953180,
};

export const OPENAI_DEFAULT_MODELS: readonly string[] = Object.keys(MODEL_CREATED);

const REQUEST_LIMIT = 10_000;
const TOKEN_LIMIT = 2_000_000;

interface RateState {
  remainingRequests: number;
  cacheKeys: Set<string>;
}

function baseHeaders(request: Request, started: number): Record<string, string> {
  return {
    'x-request-id': `req_${randomToken(32, '0123456789abcdef')}`,
    'openai-version': '2020-10-01',
    'openai-processing-ms': String(Math.round(performance.now() - started)),
    'openai-organization': request.headers.get('openai-organization') ?? 'user-keywaysimulator',
  };
}

function rateHeaders(remainingRequests: number, tokensUsed: number): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(REQUEST_LIMIT),
    'x-ratelimit-limit-tokens': String(TOKEN_LIMIT),
    'x-ratelimit-remaining-requests': String(remainingRequests),
    'x-ratelimit-remaining-tokens': String(Math.max(0, TOKEN_LIMIT - tokensUsed)),
    // Both windows refill over one minute, so a used unit comes back after 60s / limit.
    'x-ratelimit-reset-requests': goDuration(((REQUEST_LIMIT - remainingRequests) * 60_000) / REQUEST_LIMIT),
    'x-ratelimit-reset-tokens': goDuration((tokensUsed * 60_000) / TOKEN_LIMIT),
  };
}

function errorResponse(error: OpenAIError, headers: Record<string, string>): Response {
  return Response.json(openAIErrorBody(error), { status: error.status, headers });
}

function checkAuth(request: Request, apiKeys: Set<string>): OpenAIError | undefined {
  const header = request.headers.get('authorization');
  const match = header ? /^Bearer (.+)$/.exec(header) : null;
  const key = match?.[1]?.trim();
  if (!key) return errors.missingKey();
  return apiKeys.has(key) ? undefined : errors.incorrectKey(key);
}

/** Faults answered before any validation or generation; stream faults are left for the stream. */
async function earlyFault(fault: Fault | undefined, model: string, sentKey: string, headers: Record<string, string>): Promise<Response | undefined> {
  switch (fault?.kind) {
    case 'rate_limit': {
      const seconds = fault.retryAfterSeconds ?? 1;
      return errorResponse(errors.rateLimit(model, seconds), {
        ...headers,
        ...rateHeaders(0, 0),
        'retry-after': String(seconds),
        'x-ratelimit-reset-requests': goDuration(seconds * 1000),
      });
    }
    case 'quota':
      return errorResponse(errors.quota(), headers);
    case 'server_error':
      return errorResponse(errors.server(), headers);
    case 'overloaded':
      return errorResponse(errors.overloaded(), headers);
    case 'auth':
      return errorResponse(fault.echo === undefined ? errors.incorrectKey(sentKey) : errors.echoedKey(keyEcho(fault.echo, sentKey)), headers);
    case 'model_not_found':
      return errorResponse(errors.modelNotFound(model), headers);
    case 'context_length':
      return errorResponse(errors.contextLength(128_000, 130_000, 'messages'), headers);
    default:
      return commonFaultResponse(fault, headers);
  }
}

async function readJson(request: Request): Promise<{ body: unknown; parsed: boolean }> {
  const text = await request.text();
  try {
    return { body: JSON.parse(text), parsed: true };
  } catch {
    return { body: text, parsed: false };
  }
}

function sentKey(request: Request): string {
  return request.headers.get('authorization')?.replace(/^Bearer /, '') ?? '';
}

function modelsList(models: readonly string[]): JsonObject {
  return { object: 'list', data: models.map(modelObject) };
}

function modelObject(id: string): JsonObject {
  return { id, object: 'model', created: MODEL_CREATED[id] ?? 1_700_000_000, owned_by: id.startsWith('text-embedding') ? 'system' : 'openai' };
}

type Endpoint = 'chat' | 'embeddings';

/**
 * What every inference endpoint does first: read and record the body, check the key, and answer a
 * fault that strikes before any content. A Response when the request ends here.
 */
async function admit(request: Request, context: HandlerContext) {
  const started = performance.now();
  const { body, parsed } = await readJson(request);
  context.record(body);
  const headers = baseHeaders(request, started);
  const authError = checkAuth(request, context.state.apiKeys);
  if (authError) return errorResponse(authError, headers);
  const fault = context.takeFault();
  const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'gpt-4o';
  const early = await earlyFault(fault, model, sentKey(request), headers);
  if (early) return early;
  return { started, body, parsed, headers, fault, model };
}

async function handleInference(
  endpoint: Endpoint,
  request: Request,
  context: HandlerContext,
  models: readonly string[],
  rate: RateState,
  ledger: UsageLedger,
  behaviour: Pick<OpenAISimulatorOptions, 'promptTokens' | 'servedModels' | 'omitDone'> = {},
): Promise<Response> {
  const admitted = await admit(request, context);
  if (admitted instanceof Response) return admitted;
  const { started, body, parsed, headers, fault, model } = admitted;

  const invalid = !parsed ? errors.unparsableJson() : endpoint === 'chat' ? validateChatRequest(body, models) : validateEmbeddingRequest(body, models);
  if (invalid) return errorResponse(invalid, headers);
  const validBody = body as JsonObject;
  rate.remainingRequests = Math.max(0, rate.remainingRequests - 1);

  if (endpoint === 'embeddings') {
    const answer = embeddingResponse(validBody);
    return Response.json(answer.body, { headers: { ...baseHeaders(request, started), ...rateHeaders(rate.remainingRequests, answer.promptTokens) } });
  }

  const cacheKey = typeof validBody.prompt_cache_key === 'string' ? validBody.prompt_cache_key : undefined;
  const outcome = planChat(validBody, cacheKey !== undefined && rate.cacheKeys.has(cacheKey), behaviour.promptTokens);
  outcome.model = behaviour.servedModels?.[outcome.model] ?? outcome.model;
  if (cacheKey !== undefined) rate.cacheKeys.add(cacheKey);
  const cached = outcome.usage.prompt_tokens_details.cached_tokens;
  ledger.record({
    at: Date.now(),
    apiKey: sentKey(request),
    model: outcome.model,
    uncachedInputTokens: outcome.usage.prompt_tokens - cached,
    cacheReadTokens: cached,
    cacheWrite5mTokens: 0,
    cacheWrite1hTokens: 0,
    outputTokens: outcome.usage.completion_tokens,
  });
  const successHeaders = { ...baseHeaders(request, started), ...rateHeaders(rate.remainingRequests, outcome.usage.prompt_tokens) };
  if (validBody.stream !== true) return Response.json(completionBody(outcome), { headers: successHeaders });

  const streamFault = streamFaultOf(fault);
  return new Response(streamBody(completionStream(outcome, wantsUsage(validBody), behaviour.omitDone !== true), streamFault), {
    headers: { ...successHeaders, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}

/** `POST /v1/responses`: OpenAI's own Responses API (openai-responses.ts). */
async function handleResponses(request: Request, context: HandlerContext, models: readonly string[], rate: RateState, ledger: UsageLedger): Promise<Response> {
  const admitted = await admit(request, context);
  if (admitted instanceof Response) return admitted;
  const { started, body, parsed, headers, fault, model } = admitted;
  const invalid = parsed ? validateResponsesRequest(body, models) : errors.unparsableJson();
  if (invalid) return errorResponse(invalid, headers);
  const validBody = body as JsonObject;
  rate.remainingRequests = Math.max(0, rate.remainingRequests - 1);
  const cacheKey = typeof validBody.prompt_cache_key === 'string' ? validBody.prompt_cache_key : undefined;
  const outcome = planResponse(validBody, cacheKey !== undefined && rate.cacheKeys.has(cacheKey));
  if (cacheKey !== undefined) rate.cacheKeys.add(cacheKey);
  const usage = outcome.usage;
  ledger.record({
    at: Date.now(),
    apiKey: sentKey(request),
    model,
    uncachedInputTokens: usage.input_tokens - usage.cached_tokens,
    cacheReadTokens: usage.cached_tokens,
    cacheWrite5mTokens: 0,
    cacheWrite1hTokens: 0,
    outputTokens: usage.output_tokens,
  });
  const successHeaders = { ...baseHeaders(request, started), ...rateHeaders(rate.remainingRequests, usage.input_tokens) };
  if (validBody.stream !== true) return Response.json(outcome.response, { headers: successHeaders });
  const streamFault = streamFaultOf(fault);
  return new Response(streamBody(responsesStream(outcome), streamFault), {
    headers: { ...successHeaders, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}

function handleModels(request: Request, context: HandlerContext, models: readonly string[]): Response {
  const started = performance.now();
  context.record(undefined);
  const headers = baseHeaders(request, started);
  const authError = checkAuth(request, context.state.apiKeys);
  if (authError) return errorResponse(authError, headers);
  const path = context.url.pathname;
  if (path === '/v1/models') return Response.json(modelsList(models), { headers });
  const id = decodeURIComponent(path.slice('/v1/models/'.length));
  if (!models.includes(id)) return errorResponse(errors.retrieveModelNotFound(id), headers);
  return Response.json(modelObject(id), { headers });
}

export interface OpenAISimulatorOptions extends SimulatorOptions {
  /** Replaces the default model list; names containing "embedding" are embedding models. */
  models?: string[];
  /** Keys the organisation endpoints (`/v1/organization/…`) accept. Default: `OPENAI_SIM_ADMIN_KEY`. */
  adminKeys?: string[];
  /**
   * Counts a chat's prompt tokens instead of the shared four-characters-a-token rule: a test that needs
   * OpenAI's real counts passes its tokenizer.
   */
  promptTokens?: PromptCounter;
  /**
   * The dated model a chat call to an alias is answered (and reported) as, as OpenAI answers `gpt-4o`
   * with `gpt-4o-2024-08-06`: `{ 'gpt-4o': 'gpt-4o-2024-08-06' }`. Default: the name asked for.
   */
  servedModels?: Readonly<Record<string, string>>;
  /**
   * Chat streams close after their last chunk (the usage chunk, when asked for) without `data: [DONE]`,
   * as some OpenAI-compatible servers end them: such a stream is whole, not cut.
   */
  omitDone?: boolean;
  /**
   * Models the key may call that its model list does not name yet, as a fine-tune created after the
   * gateway last read the list (`ft:gpt-4o-mini-2024-07-18:org:suffix:id`).
   */
  unlistedModels?: string[];
}

/** A chat request's prompt tokens from its messages and model. */
export type PromptCounter = (messages: unknown, model: string) => number;

export const OPENAI_SIM_ADMIN_KEY = 'sk-admin-KeywaySimulatorAdminKey0123456789abcdef';

export interface OpenAISimulatorHandle extends SimulatorHandle {
  /** What was served, for the organisation usage and cost reports; `ledger.addCharge` injects drift. */
  ledger: UsageLedger;
}

/** Starts the OpenAI simulator. Default key: `openai-test-key`. */
export function startOpenAISimulator(options: OpenAISimulatorOptions = {}): OpenAISimulatorHandle {
  const listed = options.models ?? OPENAI_DEFAULT_MODELS;
  const models = [...listed, ...(options.unlistedModels ?? [])];
  const rate: RateState = { remainingRequests: REQUEST_LIMIT, cacheKeys: new Set() };
  const ledger = new UsageLedger('key_', OPENAI_SIM_PROJECT);
  const adminKeys = new Set(options.adminKeys ?? [OPENAI_SIM_ADMIN_KEY]);
  const handle = startSimulator(
    'openai',
    async (request, context) => {
      const path = context.url.pathname;
      const admin = handleOpenAIAdmin(request, context.url, ledger, adminKeys, context.state.apiKeys);
      if (admin) return admin;
      if (request.method === 'POST' && path === '/v1/chat/completions') return handleInference('chat', request, context, models, rate, ledger, options);
      if (request.method === 'POST' && path === '/v1/responses') return handleResponses(request, context, models, rate, ledger);
      if (request.method === 'POST' && path === '/v1/embeddings') return handleInference('embeddings', request, context, models, rate, ledger);
      if (request.method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) return handleModels(request, context, listed);
      return errorResponse(errors.invalidUrl(request.method, path), baseHeaders(request, performance.now()));
    },
    options,
  );
  return {
    ...handle,
    ledger,
    reset() {
      handle.reset();
      rate.remainingRequests = REQUEST_LIMIT;
      rate.cacheKeys.clear();
      ledger.clear();
    },
  };
}
