// Request validation as strict as OpenAI's own, so a gateway that forwards a malformed or
// over-permissive request fails in tests instead of in production.

import { countTokens } from './common.ts';
import { contentText, isRecord, type JsonObject } from './openai-behaviour.ts';
import { errors, type OpenAIError } from './openai-errors.ts';

/** Every top-level field of CreateChatCompletionRequest; anything else is rejected like OpenAI does. */
const CHAT_FIELDS = new Set([
  'messages',
  'model',
  'audio',
  'frequency_penalty',
  'function_call',
  'functions',
  'logit_bias',
  'logprobs',
  'max_completion_tokens',
  'max_tokens',
  'metadata',
  'modalities',
  'moderation',
  'n',
  'parallel_tool_calls',
  'prediction',
  'presence_penalty',
  'prompt_cache_key',
  'prompt_cache_options',
  'prompt_cache_retention',
  'reasoning_effort',
  'response_format',
  'safety_identifier',
  'seed',
  'service_tier',
  'stop',
  'store',
  'stream',
  'stream_options',
  'temperature',
  'tool_choice',
  'tools',
  'top_logprobs',
  'top_p',
  'user',
  'verbosity',
  'web_search_options',
]);

const EMBEDDING_FIELDS = new Set(['input', 'model', 'encoding_format', 'dimensions', 'user']);

const ROLES = ['system', 'assistant', 'user', 'function', 'tool', 'developer'] as const;

const PART_TYPES: Record<string, readonly string[]> = {
  user: ['text', 'image_url', 'input_audio', 'file'],
  assistant: ['text', 'refusal'],
  system: ['text'],
  developer: ['text'],
  tool: ['text'],
};

const TOOL_NAME = /^[a-zA-Z0-9_-]+$/;

/** o-series and gpt-5 reject the sampling knobs and the old max_tokens, as the real models do. */
export function isReasoningModel(model: string): boolean {
  return /^(o\d|gpt-5)/.test(model);
}

export function isEmbeddingModel(model: string): boolean {
  return model.includes('embedding');
}

/** Checks an optional number; null counts as absent, as in OpenAI's schema. */
function checkNumber(body: JsonObject, name: string, minimum: number, maximum: number, integer = false): OpenAIError | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || (integer && !Number.isInteger(value))) {
    return errors.invalidType(name, integer ? 'an integer' : 'a decimal', value);
  }
  if (value < minimum) return errors.belowMinimum(name, minimum, value, integer);
  if (value > maximum) return errors.aboveMaximum(name, maximum, value, integer);
  return undefined;
}

function checkUnknownFields(body: JsonObject, known: Set<string>): OpenAIError | undefined {
  const unknown = Object.keys(body).find((key) => !known.has(key));
  return unknown === undefined ? undefined : errors.unrecognizedArgument(unknown);
}

function checkContent(message: JsonObject, role: string, path: string): OpenAIError | undefined {
  const content = message.content;
  const optional = role === 'assistant';
  if (content === undefined || (content === null && optional)) {
    if (optional) return Array.isArray(message.tool_calls) || message.function_call ? undefined : errors.missing(`${path}.content`);
    return errors.missing(`${path}.content`);
  }
  if (typeof content === 'string') return undefined;
  if (!Array.isArray(content)) return errors.invalidType(`${path}.content`, 'one of a string or array of objects', content);
  if (content.length === 0) return errors.emptyArray(`${path}.content`);
  const allowed = PART_TYPES[role] ?? ['text'];
  for (const [index, part] of content.entries()) {
    const partPath = `${path}.content[${index}]`;
    if (!isRecord(part)) return errors.invalidType(partPath, 'an object', part);
    if (part.type === undefined) return errors.missing(`${partPath}.type`);
    if (!allowed.includes(String(part.type))) return errors.invalidValue(`${partPath}.type`, part.type, allowed);
    if (part.type === 'text' && typeof part.text !== 'string') {
      return part.text === undefined ? errors.missing(`${partPath}.text`) : errors.invalidType(`${partPath}.text`, 'a string', part.text);
    }
    if (part.type === 'image_url' && !(isRecord(part.image_url) && typeof part.image_url.url === 'string')) {
      return errors.missing(`${partPath}.image_url.url`);
    }
  }
  return undefined;
}

function checkToolCalls(calls: unknown, path: string): OpenAIError | undefined {
  if (!Array.isArray(calls)) return errors.invalidType(`${path}.tool_calls`, 'an array of objects', calls);
  if (calls.length === 0) return errors.emptyArray(`${path}.tool_calls`);
  for (const [index, call] of calls.entries()) {
    const callPath = `${path}.tool_calls[${index}]`;
    if (!isRecord(call)) return errors.invalidType(callPath, 'an object', call);
    if (typeof call.id !== 'string') return errors.missing(`${callPath}.id`);
    if (call.type !== 'function')
      return call.type === undefined ? errors.missing(`${callPath}.type`) : errors.invalidValue(`${callPath}.type`, call.type, ['function']);
    if (!isRecord(call.function)) return errors.missing(`${callPath}.function`);
    if (typeof call.function.name !== 'string') return errors.missing(`${callPath}.function.name`);
    if (typeof call.function.arguments !== 'string') {
      return call.function.arguments === undefined
        ? errors.missing(`${callPath}.function.arguments`)
        : errors.invalidType(`${callPath}.function.arguments`, 'a string', call.function.arguments);
    }
  }
  return undefined;
}

function checkMessages(messages: unknown): OpenAIError | undefined {
  if (messages === undefined) return errors.missing('messages');
  if (!Array.isArray(messages)) return errors.invalidType('messages', 'an array of objects', messages);
  if (messages.length === 0) return errors.emptyArray('messages');
  // Ids of the latest assistant tool_calls still waiting for their tool messages.
  let pending: string[] = [];
  let openCalls: Set<string> | undefined;
  for (const [index, message] of messages.entries()) {
    const path = `messages[${index}]`;
    if (!isRecord(message)) return errors.invalidType(path, 'an object', message);
    const role = message.role;
    if (role === undefined) return errors.missing(`${path}.role`);
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return errors.invalidValue(`${path}.role`, role, ROLES);
    const contentError = checkContent(message, role, path);
    if (contentError) return contentError;
    if (role === 'function' && typeof message.name !== 'string') return errors.missing(`${path}.name`);

    if (role === 'tool') {
      if (message.tool_call_id === undefined) return errors.missing(`${path}.tool_call_id`);
      if (typeof message.tool_call_id !== 'string') return errors.invalidType(`${path}.tool_call_id`, 'a string', message.tool_call_id);
      if (!openCalls) return errors.toolWithoutToolCalls(index);
      if (!openCalls.has(message.tool_call_id)) return errors.unknownToolCallId(index, message.tool_call_id);
      pending = pending.filter((id) => id !== message.tool_call_id);
      continue;
    }
    if (pending.length > 0) return errors.unansweredToolCalls(index, pending);
    openCalls = undefined;
    if (role === 'assistant' && message.tool_calls !== undefined && message.tool_calls !== null) {
      const callsError = checkToolCalls(message.tool_calls, path);
      if (callsError) return callsError;
      const ids = (message.tool_calls as JsonObject[]).map((call) => call.id as string);
      openCalls = new Set(ids);
      pending = ids;
    }
  }
  return undefined;
}

function checkTools(body: JsonObject): OpenAIError | undefined {
  const tools = body.tools;
  if (tools === undefined || tools === null) {
    if (body.tool_choice !== undefined && body.tool_choice !== null) return errors.onlyWithTools('tool_choice');
    if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null) return errors.onlyWithTools('parallel_tool_calls');
    return undefined;
  }
  if (!Array.isArray(tools)) return errors.invalidType('tools', 'an array of objects', tools);
  if (tools.length === 0) return errors.emptyArray('tools');
  const names: string[] = [];
  for (const [index, tool] of tools.entries()) {
    const path = `tools[${index}]`;
    if (!isRecord(tool)) return errors.invalidType(path, 'an object', tool);
    if (tool.type === undefined) return errors.missing(`${path}.type`);
    if (tool.type === 'custom') continue;
    if (tool.type !== 'function') return errors.invalidValue(`${path}.type`, tool.type, ['function', 'custom']);
    if (!isRecord(tool.function)) return errors.missing(`${path}.function`);
    const name = tool.function.name;
    if (name === undefined) return errors.missing(`${path}.function.name`);
    if (typeof name !== 'string') return errors.invalidType(`${path}.function.name`, 'a string', name);
    if (name.length > 64) return errors.stringTooLong(`${path}.function.name`, 64, name.length);
    if (!TOOL_NAME.test(name)) return errors.patternMismatch(`${path}.function.name`, TOOL_NAME.source);
    const parameters = tool.function.parameters;
    if (parameters !== undefined && !isRecord(parameters)) return errors.invalidType(`${path}.function.parameters`, 'an object', parameters);
    names.push(name);
  }
  const choice = body.tool_choice;
  if (typeof choice === 'string' && !['none', 'auto', 'required'].includes(choice)) {
    return errors.invalidValue('tool_choice', choice, ['none', 'auto', 'required']);
  }
  if (isRecord(choice) && choice.type === 'function') {
    const name = isRecord(choice.function) ? choice.function.name : undefined;
    if (typeof name !== 'string') return errors.missing('tool_choice.function.name');
    if (!names.includes(name)) return errors.invalidValue('tool_choice.function.name', name, names);
  }
  return undefined;
}

function checkStop(stop: unknown): OpenAIError | undefined {
  if (stop === undefined || stop === null || typeof stop === 'string') return undefined;
  if (!Array.isArray(stop)) return errors.invalidType('stop', 'one of a string or array of strings', stop);
  if (stop.length > 4) return errors.arrayTooLong('stop', 4, stop.length);
  const bad = stop.find((entry) => typeof entry !== 'string');
  return bad === undefined ? undefined : errors.invalidType('stop[0]', 'a string', bad);
}

function checkResponseFormat(body: JsonObject): OpenAIError | undefined {
  const format = body.response_format;
  if (format === undefined || format === null) return undefined;
  if (!isRecord(format)) return errors.invalidType('response_format', 'an object', format);
  const types = ['text', 'json_object', 'json_schema'];
  if (!types.includes(String(format.type))) return errors.invalidValue('response_format.type', format.type, types);
  if (format.type === 'json_schema') {
    if (!isRecord(format.json_schema)) return errors.missing('response_format.json_schema');
    const name = format.json_schema.name;
    if (typeof name !== 'string') return errors.missing('response_format.json_schema.name');
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) return errors.patternMismatch('response_format.json_schema.name', '^[a-zA-Z0-9_-]+$');
  }
  if (format.type === 'json_object') {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const mentionsJson = messages.some((message) => isRecord(message) && contentText(message.content).toLowerCase().includes('json'));
    if (!mentionsJson) return errors.jsonWordMissing();
  }
  return undefined;
}

function checkReasoningModel(body: JsonObject): OpenAIError | undefined {
  if (typeof body.model !== 'string' || !isReasoningModel(body.model)) return undefined;
  if (body.max_tokens !== undefined && body.max_tokens !== null) {
    return errors.unsupportedParameter('max_tokens', " Use 'max_completion_tokens' instead.");
  }
  if (body.stop !== undefined && body.stop !== null) return errors.unsupportedParameter('stop', '');
  for (const name of ['temperature', 'top_p']) {
    const value = body[name];
    if (value !== undefined && value !== null && value !== 1) return errors.unsupportedValue(name, value);
  }
  return undefined;
}

/** Validates a chat request in OpenAI's order: schema first, then the model lookup. */
export function validateChatRequest(body: unknown, models: readonly string[]): OpenAIError | undefined {
  if (!isRecord(body)) return errors.unparsableJson();
  const unknown = checkUnknownFields(body, CHAT_FIELDS);
  if (unknown) return unknown;
  if (body.model === undefined || body.model === null) return errors.missingModel();
  if (typeof body.model !== 'string') return errors.invalidType('model', 'a string', body.model);
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') return errors.invalidType('stream', 'a boolean', stream);
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (stream !== true) return errors.streamOptionsWithoutStream();
    if (!isRecord(body.stream_options)) return errors.invalidType('stream_options', 'an object', body.stream_options);
  }
  const checks = [
    () => checkMessages(body.messages),
    () => checkNumber(body, 'temperature', 0, 2),
    () => checkNumber(body, 'top_p', 0, 1),
    () => checkNumber(body, 'n', 1, 128, true),
    () => checkNumber(body, 'max_tokens', 1, Number.MAX_SAFE_INTEGER, true),
    () => checkNumber(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER, true),
    () => checkNumber(body, 'presence_penalty', -2, 2),
    () => checkNumber(body, 'frequency_penalty', -2, 2),
    () => checkNumber(body, 'top_logprobs', 0, 20, true),
    () => checkStop(body.stop),
    () => checkTools(body),
    () => checkResponseFormat(body),
    () => checkReasoningModel(body),
  ];
  for (const check of checks) {
    const error = check();
    if (error) return error;
  }
  if (!models.includes(body.model)) return errors.modelNotFound(body.model);
  if (isEmbeddingModel(body.model)) return errors.notChatModel();
  return undefined;
}

/** Native width of each embedding model, the upper bound for `dimensions`. */
export function embeddingWidth(model: string): number {
  return model.includes('large') ? 3072 : 1536;
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((entry) => Number.isInteger(entry));
}

/** Normalises valid embedding input to a list of items (strings or token arrays), or undefined. */
export function embeddingItems(input: unknown): Array<string | number[]> | undefined {
  if (typeof input === 'string') return input.length > 0 ? [input] : undefined;
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((entry) => typeof entry === 'string')) return input.every((entry) => entry.length > 0) ? input : undefined;
  if (isTokenArray(input)) return [input];
  if (input.every(isTokenArray)) return input;
  return undefined;
}

/** Tokens of one embedding item: countTokens for text, the id count for token arrays. */
export function itemTokens(item: string | number[]): number {
  return typeof item === 'string' ? countTokens(item) : item.length;
}

export function validateEmbeddingRequest(body: unknown, models: readonly string[]): OpenAIError | undefined {
  if (!isRecord(body)) return errors.unparsableJson();
  const unknown = checkUnknownFields(body, EMBEDDING_FIELDS);
  if (unknown) return unknown;
  if (body.model === undefined || body.model === null) return errors.missingModel();
  if (typeof body.model !== 'string') return errors.invalidType('model', 'a string', body.model);
  if (body.input === undefined || body.input === null) return errors.missing('input');
  const items = embeddingItems(body.input);
  if (!items) return errors.invalidEmbeddingInput();
  if (items.length > 2048) return errors.arrayTooLong('input', 2048, items.length);
  const format = body.encoding_format;
  if (format !== undefined && format !== 'float' && format !== 'base64') return errors.invalidValue('encoding_format', format, ['float', 'base64']);
  if (!models.includes(body.model)) return errors.modelNotFound(body.model);
  if (!isEmbeddingModel(body.model)) return errors.notEmbeddingModel(body.model);
  const longest = Math.max(...items.map(itemTokens));
  if (longest > 8192) return errors.embeddingContextLength(longest);
  return checkNumber(body, 'dimensions', 1, embeddingWidth(body.model), true);
}
