// Cohere API simulator: Chat v2 (plain and streamed), Embed v2 and the v1 models list. Errors are
// `{id, message}` bodies; a failure during generation arrives as message-end with delta.error.
import type { Fault, HandlerContext, SimulatorHandle, SimulatorOptions } from './common.ts';
import { countTokens, splitForStream, startSimulator } from './common.ts';
import type { CohereModel, ValidatedCohereChat } from './cohere-validation.ts';
import { checkFields, CohereRejection, contentText, findCohereModel, invalid, modelNotFound, validateCohereChat, wrongType } from './cohere-validation.ts';
import type { JsonObject, ParsedBody, StreamFrame } from './native-helpers.ts';
import {
  embeddingVector,
  faultedStream,
  isObject,
  isString,
  jsonResponse,
  planReply,
  readBody,
  sseEvent,
  streamHeaders,
  toolCallTokens,
} from './native-helpers.ts';
import { commonFaultResponse } from './common.ts';

export type { CohereModel } from './cohere-validation.ts';

export interface CohereSimulatorOptions extends SimulatorOptions {
  models?: CohereModel[];
}

export const defaultCohereModels: CohereModel[] = [
  { name: 'command-a-03-2025', endpoints: ['chat'], contextLength: 256_000 },
  { name: 'command-r-plus', endpoints: ['chat'], contextLength: 128_000 },
  { name: 'command-r', endpoints: ['chat'], contextLength: 128_000 },
  { name: 'command-r7b-12-2024', endpoints: ['chat'], contextLength: 128_000 },
  { name: 'command-a-reasoning-08-2025', endpoints: ['chat'], contextLength: 256_000, reasoning: true },
  { name: 'embed-english-v3.0', endpoints: ['embed'], contextLength: 512, dimensions: 1_024 },
  { name: 'embed-v4.0', endpoints: ['embed'], contextLength: 128_000, dimensions: 1_536 },
];

/** Real responses count the chat template too, so `tokens` exceed `billed_units`. */
const templateOverhead = 64;

export function startCohereSimulator(options: CohereSimulatorOptions = {}): SimulatorHandle {
  const models = options.models ?? defaultCohereModels;
  // Prompts seen before, by model: Cohere reports a repeated prompt's prefix as `cached_tokens`.
  const prompts = new Set<string>();
  return startSimulator('cohere', (request, context) => route(request, context, models, prompts), options);
}

async function route(request: Request, context: HandlerContext, models: CohereModel[], prompts: Set<string>): Promise<Response> {
  const { pathname } = context.url;
  const isInference = request.method === 'POST' && (pathname === '/v2/chat' || pathname === '/v2/embed');
  let parsed: ParsedBody | undefined;
  if (isInference) parsed = await readBody(request, context);
  else context.record(undefined);
  const fault = isInference ? context.takeFault() : undefined;
  const faulted = await applyFault(fault, parsed?.ok ? parsed.value : undefined, models);
  if (faulted) return faulted;
  const authorization = request.headers.get('authorization');
  if (authorization === null) return cohereError(401, 'no api key supplied');
  const token = /^Bearer (.+)$/i.exec(authorization)?.[1];
  if (token === undefined || !context.state.apiKeys.has(token)) return cohereError(401, 'invalid api token');
  try {
    if (request.method === 'GET' && pathname === '/v1/models') return listModels(context.url.searchParams, models);
    if (request.method === 'GET' && pathname.startsWith('/v1/models/')) {
      const name = decodeURIComponent(pathname.slice('/v1/models/'.length));
      const model = models.find((candidate) => candidate.name === name);
      return model ? jsonResponse(modelInfo(model)) : cohereError(404, modelNotFound(name).message);
    }
    if (!parsed) return cohereError(404, `route not found: ${request.method} ${pathname}`);
    if (!parsed.ok) return cohereError(400, 'invalid request: could not parse the request body as JSON');
    if (pathname === '/v2/embed') return jsonResponse(embed(parsed.value, models));
    const validated = validateCohereChat(parsed.value, models);
    const promptKey = JSON.stringify([(parsed.value as JsonObject).model, (parsed.value as JsonObject).messages]);
    const seen = prompts.has(promptKey);
    prompts.add(promptKey);
    return chat(validated, fault, seen);
  } catch (error) {
    if (error instanceof CohereRejection) return cohereError(error.status, error.message);
    throw error;
  }
}

export function cohereError(status: number, message: string, headers: Record<string, string> = {}): Response {
  return jsonResponse({ id: crypto.randomUUID(), message }, status, headers);
}

function contextMessage(limit: number, received: number): string {
  return `too many tokens: total number of tokens in the prompt cannot exceed ${limit} - received ${received}. Try using a shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/chat for more details.`;
}

async function applyFault(fault: Fault | undefined, body: unknown, models: CohereModel[]): Promise<Response | undefined> {
  const modelName = isObject(body) && isString(body.model) ? body.model : 'unknown-model';
  switch (fault?.kind) {
    case 'rate_limit':
      return cohereError(429, 'You are past the per minute request limit, please wait and try again later.', {
        'retry-after': String(fault.retryAfterSeconds ?? 1),
      });
    case 'quota':
      return cohereError(
        402,
        'You have reached your billing limit. Please add or update your payment method at https://dashboard.cohere.com/billing to continue.',
      );
    case 'server_error':
      return cohereError(500, `internal server error, this has been reported to our developers. id ${crypto.randomUUID()}`);
    case 'overloaded':
      return cohereError(503, 'service unavailable: the model is overloaded, please try again later');
    case 'auth':
      return cohereError(401, 'invalid api token');
    case 'model_not_found':
      return cohereError(404, modelNotFound(modelName).message);
    case 'context_length': {
      const limit = models.find((model) => model.name === modelName)?.contextLength ?? 128_000;
      return cohereError(400, contextMessage(limit, limit + 1_000));
    }
    default:
      return commonFaultResponse(fault);
  }
}

function messageText(message: JsonObject): string {
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.map((call) => JSON.stringify(call)) : [];
  return [isString(message.tool_plan) ? message.tool_plan : '', contentText(message.content), ...calls].filter((text) => text.length > 0).join('\n');
}

function chat(validated: ValidatedCohereChat, fault: Fault | undefined, promptSeen = false): Response {
  const { messages } = validated;
  const promptText = [...validated.tools.map((tool) => JSON.stringify(tool)), ...messages.map(messageText)].join('\n');
  const billedInput = countTokens(promptText);
  if (billedInput + templateOverhead > validated.model.contextLength)
    return cohereError(400, contextMessage(validated.model.contextLength, billedInput + templateOverhead));
  const lastUser = [...messages].reverse().find((message) => message.role === 'user');
  let trailing = messages.length;
  while (trailing > 0 && messages[trailing - 1]?.role === 'tool') trailing--;
  const results = messages.slice(trailing).map((message) => contentText(message.content));
  const imageCount = lastUser && Array.isArray(lastUser.content) ? lastUser.content.filter((block) => isObject(block) && block.type === 'image_url').length : 0;
  // A reasoning model thinks first, in a `thinking` content block; its thinking is billed as output.
  const thinking = validated.thinks ? `Thinking about: ${lastUser ? contentText(lastUser.content) : ''}` : undefined;
  const thinkingTokens = thinking === undefined ? 0 : countTokens(thinking);
  const plan = planReply({
    lastUserText: lastUser ? contentText(lastUser.content) : '',
    imageCount,
    toolResults: results.length > 0 ? results : undefined,
    tools: validated.tools,
    toolsDisabled: validated.toolChoice === 'NONE' || messages[messages.length - 1]?.role === 'assistant',
    forcedTool: undefined,
    parallelToolCalls: true,
    jsonMode: validated.jsonMode,
    maxTokens: validated.maxTokens === undefined ? undefined : Math.max(0, validated.maxTokens - thinkingTokens),
    stopSequences: validated.stopSequences,
  });
  let message: JsonObject;
  let finishReason: string;
  let outputTokens: number;
  if (plan.kind === 'tool_calls') {
    const toolPlan = `I will use ${plan.calls.map((call) => call.name).join(' and ')} to answer this.`;
    const toolCalls = plan.calls.map((call) => ({
      id: `${call.name}_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`,
      type: 'function',
      function: { name: call.name, arguments: JSON.stringify(call.arguments) },
    }));
    message = { role: 'assistant', tool_plan: toolPlan, tool_calls: toolCalls };
    finishReason = 'TOOL_CALL';
    outputTokens = toolCallTokens(plan.calls) + countTokens(toolPlan);
  } else {
    message = { role: 'assistant', content: [{ type: 'text', text: plan.text }] };
    finishReason = plan.finish === 'length' ? 'MAX_TOKENS' : plan.finish === 'stop_sequence' ? 'STOP_SEQUENCE' : 'COMPLETE';
    outputTokens = countTokens(plan.text);
  }
  if (thinking !== undefined) {
    message.content = [{ type: 'thinking', thinking }, ...(Array.isArray(message.content) ? message.content : [])];
    outputTokens += thinkingTokens;
  }
  const usage = {
    billed_units: { input_tokens: billedInput, output_tokens: outputTokens },
    tokens: { input_tokens: billedInput + templateOverhead, output_tokens: outputTokens },
    // A repeated prompt: everything but its last message was read from the cache.
    cached_tokens: promptSeen ? Math.floor(billedInput / 2) : 0,
  };
  const answer = { id: crypto.randomUUID(), message, finish_reason: finishReason, usage };
  if (!validated.stream) return jsonResponse(answer);
  const errorEnd = sseEvent(
    { type: 'message-end', delta: { finish_reason: 'ERROR', error: 'internal server error, this has been reported to our developers', usage } },
    'message-end',
  );
  return new Response(faultedStream(streamFrames(answer), fault, [errorEnd]), { headers: streamHeaders });
}

function streamFrames(answer: { id: string; message: JsonObject; finish_reason: string; usage: JsonObject }): StreamFrame[] {
  const frames: StreamFrame[] = [];
  const emit = (type: string, data: JsonObject, content = false): void => {
    frames.push({ text: sseEvent({ type, ...data }, type), content });
  };
  emit('message-start', { id: answer.id, delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } });
  const { message } = answer;
  const blocks = Array.isArray(message.content) ? (message.content as JsonObject[]) : [];
  const thinking = blocks.find((block) => block.type === 'thinking')?.thinking;
  // Thinking is a content block of its own, streamed before the answer as `thinking` deltas.
  if (isString(thinking)) {
    emit('content-start', { index: 0, delta: { message: { content: { type: 'thinking', thinking: '' } } } });
    for (const piece of splitForStream(thinking)) emit('content-delta', { index: 0, delta: { message: { content: { thinking: piece } } } }, true);
    emit('content-end', { index: 0 });
  }
  const textIndex = isString(thinking) ? 1 : 0;
  if (Array.isArray(message.tool_calls)) {
    for (const piece of splitForStream(String(message.tool_plan))) emit('tool-plan-delta', { delta: { message: { tool_plan: piece } } }, true);
    message.tool_calls.forEach((call: JsonObject, index) => {
      const fn = call.function as JsonObject;
      // Cohere streams tool_calls as a single object per event, unlike the response's array.
      emit('tool-call-start', { index, delta: { message: { tool_calls: { id: call.id, type: 'function', function: { name: fn.name, arguments: '' } } } } });
      for (const piece of splitForStream(String(fn.arguments)))
        emit('tool-call-delta', { index, delta: { message: { tool_calls: { function: { arguments: piece } } } } }, true);
      emit('tool-call-end', { index });
    });
  } else {
    const text = (blocks.find((block) => block.type === 'text')?.text as string | undefined) ?? '';
    emit('content-start', { index: textIndex, delta: { message: { content: { type: 'text', text: '' } } } });
    for (const piece of splitForStream(text)) emit('content-delta', { index: textIndex, delta: { message: { content: { text: piece } } } }, true);
    emit('content-end', { index: textIndex });
  }
  emit('message-end', { delta: { finish_reason: answer.finish_reason, usage: answer.usage } });
  return frames;
}

const embedFields = ['model', 'texts', 'images', 'inputs', 'input_type', 'embedding_types', 'truncate', 'max_tokens', 'output_dimension', 'priority'];
const inputTypes = ['search_document', 'search_query', 'classification', 'clustering', 'image'];
const embeddingTypes = ['float', 'int8', 'uint8', 'binary', 'ubinary', 'base64'];

function embed(body: unknown, models: CohereModel[]): JsonObject {
  if (!isObject(body)) invalid('body must be a JSON object');
  checkFields(body, embedFields, '');
  const model = findCohereModel(body.model, models, 'embed');
  if (body.input_type === undefined) invalid('valid input_type must be provided with the provided model');
  if (!inputTypes.includes(body.input_type as string))
    throw new CohereRejection(
      422,
      `unrecognized input type '${String(body.input_type)}'. For proper usage, please refer to https://docs.cohere.com/reference/embed`,
    );
  const texts = embedTexts(body);
  const types = body.embedding_types ?? ['float'];
  if (!Array.isArray(types)) wrongType('embedding_types', types, 'array');
  for (const type of types)
    if (!embeddingTypes.includes(type))
      throw new CohereRejection(
        422,
        `unrecognized embedding type '${String(type)}'. For proper usage, please refer to https://docs.cohere.com/reference/embed`,
      );
  let dimensions = model.dimensions ?? 1_024;
  if (body.output_dimension !== undefined) {
    if (model.name !== 'embed-v4.0' || ![256, 512, 1_024, 1_536].includes(body.output_dimension as number))
      invalid(`output_dimension ${String(body.output_dimension)} is not supported for model '${model.name}'`);
    dimensions = body.output_dimension as number;
  }
  const vectors = texts.map((text) => embeddingVector(text, dimensions));
  const embeddings: JsonObject = {};
  for (const type of types as string[]) embeddings[type] = vectors.map((vector) => convertEmbedding(vector, type));
  const billed = texts.reduce((sum, text) => sum + countTokens(text), 0);
  return {
    id: crypto.randomUUID(),
    embeddings,
    texts,
    meta: { api_version: { version: '2' }, billed_units: { input_tokens: billed } },
    response_type: 'embeddings_by_type',
  };
}

function embedTexts(body: JsonObject): string[] {
  const given = ['texts', 'images', 'inputs'].filter((field) => body[field] !== undefined);
  if (given.length !== 1) invalid('exactly one of texts, images or inputs must be provided');
  const values = body[given[0] as string];
  if (!Array.isArray(values)) wrongType(given[0] as string, values, 'array');
  if (values.length === 0) invalid(`${given[0]} must not be empty`);
  if (values.length > 96) invalid(`${given[0]} can contain at most 96 elements, received ${values.length}`);
  if (body.texts !== undefined) return values.map((text, index) => (isString(text) ? text : wrongType(`texts[${index}]`, text, 'string')));
  if (body.images !== undefined)
    return values.map((image) => (isString(image) && image.startsWith('data:image/') ? image : invalid('images must be data URIs')));
  return values.map((input) =>
    isObject(input) && Array.isArray(input.content) ? contentText(input.content) || '[image]' : invalid('inputs must be objects with a content list'),
  );
}

function convertEmbedding(vector: number[], type: string): unknown {
  if (type === 'float') return vector;
  if (type === 'int8') return vector.map((value) => Math.round(value * 127));
  if (type === 'uint8') return vector.map((value) => Math.round((value + 1) * 127.5));
  if (type === 'base64') return Buffer.from(new Float32Array(vector).buffer).toString('base64');
  const bytes: number[] = [];
  for (let offset = 0; offset < vector.length; offset += 8) {
    let byte = 0;
    for (let bit = 0; bit < 8; bit++) byte = (byte << 1) | ((vector[offset + bit] ?? 0) > 0 ? 1 : 0);
    bytes.push(type === 'binary' ? byte - 128 : byte);
  }
  return bytes;
}

function listModels(searchParams: URLSearchParams, models: CohereModel[]): Response {
  const endpoint = searchParams.get('endpoint');
  const filtered = endpoint === null ? models : models.filter((model) => model.endpoints.includes(endpoint));
  const pageSize = Number(searchParams.get('page_size') ?? 20);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1_000) return cohereError(400, 'invalid request: page_size must be between 1 and 1000');
  const token = searchParams.get('page_token');
  const offset = token === null || token === '' ? 0 : Number(Buffer.from(token, 'base64url').toString());
  if (!Number.isInteger(offset) || offset < 0) return cohereError(400, 'invalid request: invalid page_token');
  const page = filtered.slice(offset, offset + pageSize);
  const next = offset + pageSize < filtered.length ? Buffer.from(String(offset + pageSize)).toString('base64url') : undefined;
  return jsonResponse({ models: page.map(modelInfo), ...(next ? { next_page_token: next } : {}) });
}

function modelInfo(model: CohereModel): JsonObject {
  return {
    name: model.name,
    is_deprecated: false,
    endpoints: model.endpoints,
    finetuned: false,
    context_length: model.contextLength,
    tokenizer_url: `https://storage.googleapis.com/cohere-public/tokenizers/${model.name}.json`,
    default_endpoints: model.endpoints,
    features: model.endpoints.includes('chat') ? ['tools', 'strict_tools', 'json_mode', 'json_schema'] : [],
  };
}
