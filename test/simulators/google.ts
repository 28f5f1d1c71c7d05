// Gemini (Generative Language API v1beta) simulator: generateContent, streamGenerateContent (SSE
// with CRLF framing, or a JSON array without alt=sse), embedContent, batchEmbedContents and the
// models list. Keys travel only in x-goog-api-key; a key in the URL is refused and kept for tests.
import type { Fault, HandlerContext, RecordedRequest, SimulatorHandle, SimulatorOptions, SimulatorState } from './common.ts';
import { countTokens, splitForStream, startSimulator } from './common.ts';
import type { GoogleModel, ValidatedGoogleRequest } from './google-validation.ts';
import { callSignature, GoogleRejection, harmCategories, throwViolations, validateGenerateRequest } from './google-validation.ts';
import type { JsonObject, ParsedBody, ReplyPlan, StreamFrame } from './native-helpers.ts';
import {
  digest,
  embeddingVector,
  faultedStream,
  isObject,
  isString,
  jsonResponse,
  planReply,
  randomId,
  readBody,
  runMemory,
  sseEvent,
  streamHeaders,
  toolCallTokens,
} from './native-helpers.ts';
import { commonFaultResponse } from './common.ts';

export type { GoogleModel } from './google-validation.ts';

export interface GoogleSimulatorOptions extends SimulatorOptions {
  models?: GoogleModel[];
  /** Implicit caching reports a repeated prefix only from this size on, as Gemini 2.5 does. */
  implicitCacheMinimumTokens?: number;
}

export interface GoogleSimulatorHandle extends SimulatorHandle {
  /** Requests that carried `?key=`: the gateway must never put keys in URLs. */
  urlKeyRequests(): RecordedRequest[];
}

const generative = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];
const gemini = (id: string, displayName: string, outputTokenLimit: number, thinking: boolean): GoogleModel => ({
  id,
  displayName,
  inputTokenLimit: 1_048_576,
  outputTokenLimit,
  methods: generative,
  thinking,
  thoughtSignatures: id.startsWith('gemini-3'),
});

export const defaultGoogleModels: GoogleModel[] = [
  gemini('gemini-2.5-flash', 'Gemini 2.5 Flash', 65_536, true),
  gemini('gemini-2.5-pro', 'Gemini 2.5 Pro', 65_536, true),
  gemini('gemini-2.5-flash-lite', 'Gemini 2.5 Flash-Lite', 65_536, true),
  gemini('gemini-2.0-flash', 'Gemini 2.0 Flash', 8_192, false),
  gemini('gemini-3-pro-preview', 'Gemini 3 Pro Preview', 65_536, true),
  { ...gemini('gemini-pro', 'Gemini 1.0 Pro', 2_048, false), inputTokenLimit: 30_720 },
  {
    id: 'text-embedding-004',
    displayName: 'Text Embedding 004',
    inputTokenLimit: 2_048,
    outputTokenLimit: 1,
    methods: ['embedContent'],
    thinking: false,
    thoughtSignatures: false,
    embeddingDimensions: 768,
  },
  {
    id: 'gemini-embedding-001',
    displayName: 'Gemini Embedding 001',
    inputTokenLimit: 2_048,
    outputTokenLimit: 1,
    methods: ['embedContent', 'countTokens'],
    thinking: false,
    thoughtSignatures: false,
    embeddingDimensions: 3_072,
  },
];

interface Settings {
  models: GoogleModel[];
  cacheMinimum: number;
}

export function startGoogleSimulator(options: GoogleSimulatorOptions = {}): GoogleSimulatorHandle {
  const settings = { models: options.models ?? defaultGoogleModels, cacheMinimum: options.implicitCacheMinimumTokens ?? 1_024 };
  const handle = startSimulator('google', (request, context) => route(request, context, settings), options);
  return { ...handle, urlKeyRequests: () => handle.state.requests.filter((request) => new URLSearchParams(request.search).has('key')) };
}

async function route(request: Request, context: HandlerContext, settings: Settings): Promise<Response> {
  const { pathname, searchParams } = context.url;
  const action = /^\/v1beta\/models\/([^/:]+):([A-Za-z]+)$/.exec(pathname);
  let parsed: ParsedBody | undefined;
  if (request.method === 'POST') parsed = await readBody(request, context);
  else context.record(undefined);
  const fault = action && request.method === 'POST' ? context.takeFault() : undefined;
  if (searchParams.has('key')) return googleError(400, 'INVALID_ARGUMENT', 'API keys in URLs are refused by this simulator');
  const faulted = await applyFault(fault, action?.[1] ?? 'unknown', action?.[2] ?? 'generateContent', settings.models);
  if (faulted) return faulted;
  const authProblem = checkKey(request, context.state);
  if (authProblem) return authProblem;
  if (request.method === 'GET' && pathname === '/v1beta/models') return listModels(searchParams, settings.models);
  const single = /^\/v1beta\/models\/([^/:]+)$/.exec(pathname);
  if (request.method === 'GET' && single) {
    const model = settings.models.find((candidate) => candidate.id === single[1]);
    return model ? jsonResponse(modelInfo(model)) : googleError(404, 'NOT_FOUND', `Model is not found: models/${single[1]} for api version v1beta`);
  }
  if (!action || !parsed) return googleError(404, 'NOT_FOUND', `Method not found: ${request.method} ${pathname}`);
  const [, modelName = '', method = ''] = action;
  const verb = method === 'streamGenerateContent' ? 'generateContent' : method === 'batchEmbedContents' ? 'embedContent' : method;
  const model = settings.models.find((candidate) => candidate.id === modelName);
  if (!model || !model.methods.includes(verb)) return modelNotFound(modelName, verb);
  if (!parsed.ok) return googleError(400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unexpected token.\n${parsed.text.slice(0, 40)}\n^`);
  try {
    if (method === 'generateContent' || method === 'streamGenerateContent')
      return generate(parsed.value, model, method === 'streamGenerateContent', searchParams.get('alt') === 'sse', fault, context.state, settings);
    if (method === 'embedContent') return jsonResponse({ embedding: embed(parsed.value, model, 'EmbedContentRequest', '') });
    if (method === 'batchEmbedContents') return jsonResponse({ embeddings: batchEmbed(parsed.value, model) });
  } catch (error) {
    if (error instanceof GoogleRejection) return googleError(error.code, error.status, error.message, error.details);
    throw error;
  }
  return googleError(404, 'NOT_FOUND', `Method not found: ${method}`);
}

function checkKey(request: Request, state: SimulatorState): Response | undefined {
  const key = request.headers.get('x-goog-api-key');
  if (key === null) {
    return googleError(
      403,
      'PERMISSION_DENIED',
      "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
    );
  }
  return state.apiKeys.has(key) ? undefined : invalidKey();
}

function invalidKey(): Response {
  const message = 'API key not valid. Please pass a valid API key.';
  return googleError(400, 'INVALID_ARGUMENT', message, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' },
    },
    { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message },
  ]);
}

function modelNotFound(modelName: string, verb: string): Response {
  return googleError(
    404,
    'NOT_FOUND',
    `models/${modelName} is not found for API version v1beta, or is not supported for ${verb}. Call ListModels to see the list of available models and their supported methods.`,
  );
}

export function googleError(code: number, status: string, message: string, details: unknown[] = [], headers: Record<string, string> = {}): Response {
  const error: JsonObject = { code, message, status };
  if (details.length > 0) error.details = details;
  return jsonResponse({ error }, code, headers);
}

const helpDetail = {
  '@type': 'type.googleapis.com/google.rpc.Help',
  links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }],
};
const quotaDetail = (quotaId: string, modelName: string) => ({
  '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
  violations: [
    {
      quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
      quotaId,
      quotaDimensions: { location: 'global', model: modelName },
    },
  ],
});

async function applyFault(fault: Fault | undefined, modelName: string, verb: string, models: GoogleModel[]): Promise<Response | undefined> {
  switch (fault?.kind) {
    case 'rate_limit': {
      const seconds = fault.retryAfterSeconds ?? 1;
      const details = [
        quotaDetail('GenerateRequestsPerMinutePerProjectPerModel-FreeTier', modelName),
        helpDetail,
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${seconds}s` },
      ];
      return googleError(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', details, { 'retry-after': String(seconds) });
    }
    case 'quota':
      return googleError(
        429,
        'RESOURCE_EXHAUSTED',
        'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
        [quotaDetail('GenerateRequestsPerDayPerProjectPerModel-FreeTier', modelName), helpDetail],
      );
    case 'server_error':
      return googleError(
        500,
        'INTERNAL',
        'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
      );
    case 'overloaded':
      return googleError(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
    case 'auth':
      return invalidKey();
    case 'model_not_found':
      return modelNotFound(modelName, verb);
    case 'context_length': {
      const limit = models.find((model) => model.id === modelName)?.inputTokenLimit ?? 1_048_576;
      return googleError(400, 'INVALID_ARGUMENT', `The input token count (${limit + 1_000}) exceeds the maximum number of tokens allowed (${limit}).`);
    }
    default:
      return commonFaultResponse(fault);
  }
}

function partText(part: JsonObject): string {
  if (isString(part.text)) return part.text;
  if (isObject(part.inlineData) || isObject(part.fileData)) return '[image]';
  if (isObject(part.functionCall)) return `${String(part.functionCall.name)} ${JSON.stringify(part.functionCall.args ?? {})}`;
  if (isObject(part.functionResponse)) return `${String(part.functionResponse.name)} ${JSON.stringify(part.functionResponse.response)}`;
  return '';
}

/** What a functionResponse contributes to "Tool results: …": the `output` (or `content`) when there is one. */
function responseText(response: JsonObject): string {
  const value = response.output ?? response.content ?? response.result;
  if (value === undefined) return JSON.stringify(response);
  return isString(value) ? value : JSON.stringify(value);
}

interface PromptAccount {
  promptTokens: number;
  cachedTokens: number;
}

/** Implicit caching: everything before the last content counts as cached once seen with the same model. */
function accountPrompt(validated: ValidatedGoogleRequest, model: GoogleModel, state: SimulatorState, minimum: number): PromptAccount {
  const head = [...validated.systemTexts, ...validated.declarations.map((declaration) => JSON.stringify(declaration))];
  const contents = validated.contents.map((content) => (content.parts as JsonObject[]).map(partText).join('\n'));
  const prefix = [...head, ...contents.slice(0, -1)].join('\n');
  const promptTokens = countTokens([...head, ...contents].join('\n'));
  const prefixTokens = countTokens(prefix);
  if (prefixTokens < minimum || prefixTokens === 0) return { promptTokens, cachedTokens: 0 };
  const memory = runMemory(state);
  const key = digest(`gemini:${model.id}\n${prefix}`);
  const cachedTokens = memory.has(key) ? prefixTokens : 0;
  memory.add(key);
  return { promptTokens, cachedTokens };
}

function generate(
  body: unknown,
  model: GoogleModel,
  stream: boolean,
  sse: boolean,
  fault: Fault | undefined,
  state: SimulatorState,
  settings: Settings,
): Response {
  const validated = validateGenerateRequest(body, model);
  const account = accountPrompt(validated, model, state, settings.cacheMinimum);
  if (account.promptTokens > model.inputTokenLimit) {
    return googleError(
      400,
      'INVALID_ARGUMENT',
      `The input token count (${account.promptTokens}) exceeds the maximum number of tokens allowed (${model.inputTokenLimit}).`,
    );
  }
  const last = validated.contents[validated.contents.length - 1];
  const lastUser = [...validated.contents]
    .reverse()
    .find((content) => content.role !== 'model' && (content.parts as JsonObject[]).some((part) => isString(part.text)));
  const userParts = (lastUser?.parts as JsonObject[] | undefined) ?? [];
  const lastUserText = userParts
    .filter((part) => isString(part.text))
    .map((part) => part.text as string)
    .join('\n');
  const responses = last?.role !== 'model' ? (last?.parts as JsonObject[]).filter((part) => isObject(part.functionResponse)) : [];
  const usageBase = { promptTokenCount: account.promptTokens, ...(account.cachedTokens > 0 ? { cachedContentTokenCount: account.cachedTokens } : {}) };
  const envelope = { modelVersion: model.id, responseId: randomId('', 22) };
  if (lastUserText.toLowerCase().includes('trigger safety block')) {
    const blocked = {
      promptFeedback: { blockReason: 'SAFETY', safetyRatings: safetyRatings('HARM_CATEGORY_HARASSMENT') },
      usageMetadata: { ...usageBase, totalTokenCount: account.promptTokens },
      ...envelope,
    };
    return stream ? streamResponse([blocked], sse, fault) : jsonResponse(blocked);
  }
  if (lastUserText.toLowerCase().includes('trigger malformed function call') && validated.declarations.length > 0 && validated.mode !== 'NONE') {
    const malformed = malformedCallAnswer(validated, usageBase, account.promptTokens, envelope);
    return stream ? streamResponse([malformed], sse, fault) : jsonResponse(malformed);
  }
  const thought = validated.thinking ? `Thinking about: ${lastUserText}` : undefined;
  const thoughtsTokens = thought === undefined ? 0 : countTokens(thought);
  const mode = validated.mode;
  const callable = validated.allowedNames
    ? validated.declarations.filter((declaration) => validated.allowedNames?.includes(declaration.name))
    : validated.declarations;
  const plan = planReply({
    lastUserText,
    imageCount: userParts.filter((part) => isObject(part.inlineData) || isObject(part.fileData)).length,
    toolResults: responses.length > 0 ? responses.map((part) => responseText((part.functionResponse as JsonObject).response as JsonObject)) : undefined,
    tools: callable,
    toolsDisabled: mode === 'NONE' || last?.role === 'model',
    forcedTool: mode === 'ANY' && validated.allowedNames?.length === 1 ? validated.allowedNames[0] : undefined,
    parallelToolCalls: true,
    jsonMode: validated.jsonMode,
    maxTokens: validated.maxOutputTokens === undefined ? undefined : Math.max(0, validated.maxOutputTokens - thoughtsTokens),
    stopSequences: validated.stopSequences,
  });
  const candidatesTokens = plan.kind === 'tool_calls' ? toolCallTokens(plan.calls) : countTokens(plan.text);
  const usage: JsonObject = { ...usageBase, candidatesTokenCount: candidatesTokens, totalTokenCount: account.promptTokens + candidatesTokens + thoughtsTokens };
  if (thought !== undefined) usage.thoughtsTokenCount = thoughtsTokens;
  usage.promptTokensDetails = [{ modality: 'TEXT', tokenCount: account.promptTokens }];
  const thoughtParts = thought !== undefined && validated.thinking?.includeThoughts ? [{ text: thought, thought: true }] : [];
  const finishReason = plan.kind === 'text' && plan.finish === 'length' ? 'MAX_TOKENS' : 'STOP';
  const candidates = (parts: JsonObject[], final: boolean) =>
    Array.from({ length: validated.candidateCount }, (_, index) => ({
      content: { parts, role: 'model' },
      ...(final ? { finishReason, safetyRatings: safetyRatings() } : {}),
      index,
    }));
  const answerParts = replyParts(plan, model);
  if (!stream) return jsonResponse({ candidates: candidates([...thoughtParts, ...answerParts], true), usageMetadata: usage, ...envelope });
  const running = { ...usageBase, totalTokenCount: account.promptTokens };
  const chunks: JsonObject[] = thoughtParts.map((part) => ({ candidates: candidates([part], false), usageMetadata: running, ...envelope }));
  // Function calls arrive whole in one chunk; text arrives in increments with the finish on the last.
  const pieces = plan.kind === 'tool_calls' ? [answerParts] : splitForStream(plan.text).map((text) => [{ text }]);
  pieces.forEach((parts, index) => {
    const final = index === pieces.length - 1;
    chunks.push({ candidates: candidates(parts, final), usageMetadata: final ? usage : running, ...envelope });
  });
  return streamResponse(chunks, sse, fault);
}

/**
 * A function call the model wrote but Gemini could not parse: no content, a finishReason of
 * MALFORMED_FUNCTION_CALL with the broken text in `finishMessage`, and only the prompt counted.
 * Gemini can fail this way only when the request declares functions.
 */
function malformedCallAnswer(validated: ValidatedGoogleRequest, usageBase: JsonObject, promptTokens: number, envelope: JsonObject): JsonObject {
  const name = validated.declarations[0]?.name ?? 'tool';
  return {
    candidates: Array.from({ length: validated.candidateCount }, (_, index) => ({
      finishReason: 'MALFORMED_FUNCTION_CALL',
      finishMessage: `Malformed function call: print(default_api.${name}(city=Paris)`,
      index,
    })),
    usageMetadata: { ...usageBase, totalTokenCount: promptTokens },
    ...envelope,
  };
}

function replyParts(plan: ReplyPlan, model: GoogleModel): JsonObject[] {
  if (plan.kind === 'text') return [{ text: plan.text }];
  // Gemini often omits functionCall.id, so gateways must synthesize their own; never send one.
  return plan.calls.map((call, index) => {
    const part: JsonObject = { functionCall: { name: call.name, args: call.arguments } };
    if (index === 0 && model.thoughtSignatures) part.thoughtSignature = callSignature(call.name, call.arguments);
    return part;
  });
}

function safetyRatings(high?: string): JsonObject[] {
  return harmCategories.slice(0, 4).map((category) => ({ category, probability: category === high ? 'HIGH' : 'NEGLIGIBLE' }));
}

function streamResponse(chunks: JsonObject[], sse: boolean, fault: Fault | undefined): Response {
  const error = {
    error: {
      code: 500,
      message: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
      status: 'INTERNAL',
    },
  };
  if (sse) {
    // CRLF framing, as observed from the real endpoint, keeps gateway parsers honest.
    const frames: StreamFrame[] = chunks.map((chunk) => ({ text: sseEvent(chunk, undefined, '\r\n'), content: true }));
    return new Response(faultedStream(frames, fault, [sseEvent(error, undefined, '\r\n')]), { headers: streamHeaders });
  }
  const frames: StreamFrame[] = chunks.map((chunk, index) => ({
    text: `${index === 0 ? '[' : ',\r\n'}${JSON.stringify(chunk, null, 2)}${index === chunks.length - 1 ? ']' : ''}`,
    content: true,
  }));
  return new Response(faultedStream(frames, fault, [`${chunks.length > 0 ? ',\r\n' : '['}${JSON.stringify(error, null, 2)}]`]), {
    headers: { 'content-type': 'application/json; charset=UTF-8' },
  });
}

const taskTypes = [
  'TASK_TYPE_UNSPECIFIED',
  'RETRIEVAL_QUERY',
  'RETRIEVAL_DOCUMENT',
  'SEMANTIC_SIMILARITY',
  'CLASSIFICATION',
  'CLUSTERING',
  'QUESTION_ANSWERING',
  'FACT_VERIFICATION',
  'CODE_RETRIEVAL_QUERY',
];

function embed(request: unknown, model: GoogleModel, requestName: string, path: string): JsonObject {
  const at = (field: string) => (path === '' ? field : `${path}.${field}`);
  if (!isObject(request)) throw new GoogleRejection(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Expected an object.');
  const violations: { field: string; description: string }[] = [];
  for (const key of Object.keys(request)) {
    if (['model', 'content', 'taskType', 'title', 'outputDimensionality'].includes(key)) continue;
    violations.push({
      field: path,
      description: `Invalid JSON payload received. Unknown name "${key}"${path === '' ? '' : ` at '${path}'`}: Cannot find field.`,
    });
  }
  if (request.taskType !== undefined && !(isString(request.taskType) && taskTypes.includes(request.taskType))) {
    violations.push({
      field: at('task_type'),
      description: `Invalid value at '${at('task_type')}' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), ${JSON.stringify(request.taskType)}`,
    });
  }
  throwViolations(violations);
  const parts = isObject(request.content) && Array.isArray(request.content.parts) ? request.content.parts : [];
  const texts = parts.filter((part): part is JsonObject => isObject(part) && isString(part.text)).map((part) => part.text as string);
  if (texts.length === 0) throw new GoogleRejection(400, 'INVALID_ARGUMENT', `* ${requestName}.${at('content')}: content must contain text parts\n`);
  const maximum = model.embeddingDimensions ?? 768;
  const dimensions = request.outputDimensionality ?? maximum;
  if (!Number.isInteger(dimensions) || (dimensions as number) < 1 || (dimensions as number) > maximum) {
    throw new GoogleRejection(
      400,
      'INVALID_ARGUMENT',
      `* ${requestName}.${at('output_dimensionality')}: output_dimensionality must be between 1 and ${maximum}\n`,
    );
  }
  return { values: embeddingVector(texts.join(' '), dimensions as number) };
}

function batchEmbed(body: unknown, model: GoogleModel): JsonObject[] {
  if (!isObject(body)) throw new GoogleRejection(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Expected an object.');
  const unknown = Object.keys(body).filter((key) => key !== 'requests');
  throwViolations(unknown.map((key) => ({ field: '', description: `Invalid JSON payload received. Unknown name "${key}": Cannot find field.` })));
  const requests = Array.isArray(body.requests) ? body.requests : [];
  if (requests.length === 0) throw new GoogleRejection(400, 'INVALID_ARGUMENT', '* BatchEmbedContentsRequest.requests: requests must not be empty\n');
  if (requests.length > 100)
    throw new GoogleRejection(400, 'INVALID_ARGUMENT', '* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n');
  return requests.map((request, index) => {
    const named = isObject(request) ? request.model : undefined;
    if (named !== `models/${model.id}`) {
      throw new GoogleRejection(
        400,
        'INVALID_ARGUMENT',
        `* BatchEmbedContentsRequest.requests[${index}].model: the model in the request (${String(named)}) must match the model in the URL (models/${model.id})\n`,
      );
    }
    return embed(request, model, 'BatchEmbedContentsRequest', `requests[${index}]`);
  });
}

function listModels(searchParams: URLSearchParams, models: GoogleModel[]): Response {
  const pageSize = Number(searchParams.get('pageSize') ?? 50);
  if (!Number.isInteger(pageSize) || pageSize < 0)
    return googleError(400, 'INVALID_ARGUMENT', '* ListModelsRequest.page_size: page_size must be a non-negative integer\n');
  const size = Math.min(pageSize === 0 ? 50 : pageSize, 1_000);
  const token = searchParams.get('pageToken');
  const offset = token === null || token === '' ? 0 : Number(Buffer.from(token, 'base64url').toString());
  if (!Number.isInteger(offset) || offset < 0 || offset > models.length) return googleError(400, 'INVALID_ARGUMENT', 'Invalid page token.');
  const page = models.slice(offset, offset + size);
  const next = offset + size < models.length ? Buffer.from(String(offset + size)).toString('base64url') : undefined;
  return jsonResponse({ models: page.map(modelInfo), ...(next ? { nextPageToken: next } : {}) });
}

function modelInfo(model: GoogleModel): JsonObject {
  const info: JsonObject = {
    name: `models/${model.id}`,
    version: '001',
    displayName: model.displayName,
    description: `${model.displayName} (simulated)`,
    inputTokenLimit: model.inputTokenLimit,
    outputTokenLimit: model.outputTokenLimit,
    supportedGenerationMethods: model.methods,
  };
  if (model.methods.includes('generateContent')) Object.assign(info, { temperature: 1, topP: 0.95, topK: 64, maxTemperature: 2, thinking: model.thinking });
  return info;
}
