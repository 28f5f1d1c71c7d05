// Perplexity's request rules (§5.2 of the provider reference): its own model names, strict
// user/assistant alternation, the 128k max_tokens cap and the search-control vocabularies. Errors use
// Perplexity's shape with an integer `code`.

import { isRecord, type JsonObject } from './openai-behaviour.ts';

export const PERPLEXITY_MODELS: readonly string[] = ['sonar', 'sonar-pro', 'sonar-reasoning-pro', 'sonar-deep-research'];

export interface PerplexityError {
  status: number;
  message: string;
  type: string;
}

export function perplexityErrorBody(error: PerplexityError): { error: { message: string; type: string; code: number } } {
  return { error: { message: error.message, type: error.type, code: error.status } };
}

const invalid = (type: string, message: string): PerplexityError => ({ status: 400, message, type });
const parameter = (message: string): PerplexityError => invalid('invalid_parameter', message);
const messageError = (message: string): PerplexityError => invalid('invalid_message', message);

export const ALTERNATION_MESSAGE = 'After the (optional) system message(s), user and assistant roles should be alternating.';

export function invalidModel(model: string): PerplexityError {
  return invalid(
    'invalid_model',
    `Invalid model '${model}'. Permitted models can be found in the documentation at https://docs.perplexity.ai/getting-started/models.`,
  );
}

const ROLES = ['system', 'user', 'assistant', 'tool'];
const PART_TYPES = ['text', 'image_url', 'file_url', 'pdf_url'];
/** Gateway-only routing fields: their arrival here means the gateway forgot to strip them. */
const GATEWAY_FIELDS = ['provider', 'routing'];

function checkEnum(value: unknown, name: string, allowed: readonly string[]): PerplexityError | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && allowed.includes(value))) return undefined;
  return parameter(`Invalid value for '${name}': ${JSON.stringify(value)}. Allowed values are: ${allowed.join(', ')}.`);
}

function checkRange(body: JsonObject, name: string, minimum: number, maximum: number, integer = false): PerplexityError | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || (integer && !Number.isInteger(value)) || value < minimum || value > maximum) {
    return parameter(`'${name}' must be ${integer ? 'an integer' : 'a number'} between ${minimum} and ${maximum}, got ${JSON.stringify(value)}.`);
  }
  return undefined;
}

function checkContent(message: JsonObject, index: number): PerplexityError | undefined {
  const content = message.content;
  if (content === undefined || content === null) {
    if (message.role === 'assistant' && Array.isArray(message.tool_calls)) return undefined;
    return messageError(`messages[${index}].content is required.`);
  }
  if (typeof content === 'string') return undefined;
  if (!Array.isArray(content)) return messageError(`messages[${index}].content must be a string or an array of content parts.`);
  for (const [partIndex, part] of content.entries()) {
    if (!isRecord(part) || !PART_TYPES.includes(String(part.type))) {
      return messageError(`messages[${index}].content[${partIndex}].type must be one of: ${PART_TYPES.join(', ')}.`);
    }
    if (part.type === 'text' && typeof part.text !== 'string') return messageError(`messages[${index}].content[${partIndex}].text must be a string.`);
  }
  return undefined;
}

/** Roles and alternation: leading system messages, then user/assistant turns, tool runs after tool calls. */
function checkMessages(messages: unknown): PerplexityError | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return messageError("'messages' must be a non-empty array of messages.");
  let leadingSystem = true;
  let expected: 'user' | 'assistant' = 'user';
  let openCalls: Set<string> | undefined;
  for (const [index, message] of messages.entries()) {
    if (!isRecord(message)) return messageError(`messages[${index}] must be an object.`);
    const role = message.role;
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      return messageError(`Invalid role ${JSON.stringify(role)} in messages[${index}]. Allowed roles are: ${ROLES.join(', ')}.`);
    }
    const contentError = checkContent(message, index);
    if (contentError) return contentError;
    if (role === 'system' && leadingSystem) continue;
    leadingSystem = false;
    if (role === 'tool') {
      if (!openCalls) return messageError(ALTERNATION_MESSAGE);
      if (typeof message.tool_call_id !== 'string' || !openCalls.has(message.tool_call_id)) {
        return messageError(`messages[${index}].tool_call_id must match a tool call of the preceding assistant message.`);
      }
      // A tool run stands in for the user turn: the model answers it next.
      expected = 'assistant';
      continue;
    }
    if (role !== expected) return messageError(ALTERNATION_MESSAGE);
    openCalls = undefined;
    if (role === 'assistant' && Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
      openCalls = new Set(message.tool_calls.map((call) => (isRecord(call) && typeof call.id === 'string' ? call.id : '')));
    }
    expected = role === 'user' ? 'assistant' : 'user';
  }
  const lastRole = (messages.at(-1) as JsonObject).role;
  if (lastRole !== 'user' && lastRole !== 'tool') return messageError('Last message must have role `user` or `tool`.');
  return undefined;
}

function checkResponseFormat(format: unknown): PerplexityError | undefined {
  if (format === undefined || format === null) return undefined;
  if (!isRecord(format)) return parameter("'response_format' must be an object.");
  const enumError = checkEnum(format.type, 'response_format.type', ['text', 'json_schema', 'regex']);
  if (enumError) return enumError;
  if (format.type === 'json_schema' && !(isRecord(format.json_schema) && isRecord(format.json_schema.schema))) {
    return parameter("'response_format.json_schema.schema' is required for type 'json_schema'.");
  }
  return undefined;
}

function checkTools(body: JsonObject): PerplexityError | undefined {
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) return parameter("'tools' must be an array.");
  return checkEnum(body.tool_choice, 'tool_choice', ['none', 'auto', 'required']);
}

function checkStop(stop: unknown): PerplexityError | undefined {
  if (stop === undefined || stop === null || typeof stop === 'string') return undefined;
  if (Array.isArray(stop) && stop.every((entry) => typeof entry === 'string')) return undefined;
  return parameter("'stop' must be a string or an array of strings.");
}

export function validatePerplexityRequest(body: unknown, models: readonly string[] = PERPLEXITY_MODELS): PerplexityError | undefined {
  if (!isRecord(body)) return invalid('invalid_request', 'The request body must be a JSON object.');
  const extra = GATEWAY_FIELDS.find((name) => name in body);
  if (extra) return parameter(`Unrecognized request argument supplied: ${extra}`);
  if (typeof body.model !== 'string') return parameter("'model' is required and must be a string.");
  if (!models.includes(body.model)) return invalidModel(body.model);
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') return parameter("'stream' must be a boolean.");
  const searchOptions = body.web_search_options;
  if (searchOptions !== undefined && searchOptions !== null && !isRecord(searchOptions)) return parameter("'web_search_options' must be an object.");
  const checks = [
    () => checkMessages(body.messages),
    () => checkRange(body, 'max_tokens', 1, 128_000, true),
    () => checkRange(body, 'temperature', 0, 2),
    () => checkRange(body, 'top_p', 0, 1),
    () => checkRange(body, 'top_k', 0, 2048, true),
    () => checkRange(body, 'presence_penalty', -2, 2),
    () => checkRange(body, 'frequency_penalty', -2, 2),
    () => checkStop(body.stop),
    () => checkTools(body),
    () => checkResponseFormat(body.response_format),
    () => checkEnum(body.search_recency_filter, 'search_recency_filter', ['hour', 'day', 'week', 'month', 'year']),
    () => checkEnum(body.search_mode, 'search_mode', ['web', 'academic', 'sec']),
    () => checkEnum(body.reasoning_effort, 'reasoning_effort', ['minimal', 'low', 'medium', 'high']),
    () => checkEnum(body.stream_mode, 'stream_mode', ['full', 'concise']),
    () =>
      checkEnum(isRecord(searchOptions) ? searchOptions.search_context_size : undefined, 'web_search_options.search_context_size', ['low', 'medium', 'high']),
    () =>
      Array.isArray(body.search_domain_filter) && body.search_domain_filter.length > 20
        ? parameter("'search_domain_filter' accepts at most 20 domains.")
        : undefined,
  ];
  for (const check of checks) {
    const error = check();
    if (error) return error;
  }
  return undefined;
}
