// Request validation of the Cohere v2 simulator. Schema problems (unknown fields, wrong types,
// unknown enum values) are 422 with "For proper usage…" as the real API answers them; semantic
// problems are 400 "invalid request: …" or the documented conversation messages.
import type { JsonObject } from './native-helpers.ts';
import { isObject, isString } from './native-helpers.ts';

export class CohereRejection extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface CohereModel {
  name: string;
  endpoints: string[];
  contextLength: number;
  /** Embedding width for embed models. */
  dimensions?: number;
  /** A reasoning model (command-a-reasoning): it thinks unless `thinking.type` is `disabled`. */
  reasoning?: boolean;
}

export interface ValidatedCohereChat {
  model: CohereModel;
  messages: JsonObject[];
  tools: { name: string; schema: unknown }[];
  toolChoice: 'REQUIRED' | 'NONE' | undefined;
  jsonMode: boolean;
  maxTokens: number | undefined;
  stopSequences: string[];
  stream: boolean;
  /** The model thinks before it answers: its thinking comes back as a `thinking` content block. */
  thinks: boolean;
}

const docs = 'For proper usage, please refer to https://docs.cohere.com/reference/chat';
const chatFields = [
  'model',
  'messages',
  'tools',
  'strict_tools',
  'documents',
  'citation_options',
  'response_format',
  'safety_mode',
  'max_tokens',
  'stop_sequences',
  'temperature',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'k',
  'p',
  'logprobs',
  'tool_choice',
  'thinking',
  'stream',
  'priority',
];
const messageFields: Record<string, string[]> = {
  system: ['role', 'content'],
  user: ['role', 'content'],
  assistant: ['role', 'content', 'tool_calls', 'tool_plan', 'citations'],
  tool: ['role', 'tool_call_id', 'content'],
};
const blockTypes: Record<string, string[]> = {
  system: ['text'],
  user: ['text', 'image_url', 'document'],
  assistant: ['text', 'thinking'],
  tool: ['text', 'document'],
};

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'float') : typeof value;
}

export function unknownField(path: string): never {
  throw new CohereRejection(422, `unknown field: parameter ${path} is not a valid field. ${docs}`);
}

export function wrongType(path: string, value: unknown, expected: string): never {
  throw new CohereRejection(422, `invalid type: parameter ${path} is of type ${typeName(value)} but should be of type ${expected}. ${docs}`);
}

export function invalid(message: string): never {
  throw new CohereRejection(400, `invalid request: ${message}`);
}

export function checkFields(value: JsonObject, allowed: string[], path: string): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) unknownField(path === '' ? key : `${path}.${key}`);
}

export function modelNotFound(name: string): CohereRejection {
  return new CohereRejection(404, `model '${name}' not found, make sure the correct model ID was used and that you have access to the model.`);
}

export function findCohereModel(value: unknown, models: CohereModel[], endpoint: 'chat' | 'embed'): CohereModel {
  if (value === undefined) invalid('model is required');
  if (!isString(value)) wrongType('model', value, 'string');
  const model = models.find((candidate) => candidate.name === value);
  if (!model) throw modelNotFound(value);
  if (!model.endpoints.includes(endpoint)) invalid(`model '${value}' does not support the ${endpoint} endpoint`);
  return model;
}

export function validateCohereChat(body: unknown, models: CohereModel[]): ValidatedCohereChat {
  if (!isObject(body)) invalid('body must be a JSON object');
  checkFields(body, chatFields, '');
  const model = findCohereModel(body.model, models, 'chat');
  if (body.messages === undefined) invalid('messages is required');
  if (!Array.isArray(body.messages)) wrongType('messages', body.messages, 'array');
  if (body.messages.length === 0) invalid('messages must contain at least one message');
  const messages = checkMessages(body.messages);
  const tools = checkTools(body.tools);
  const toolChoice = checkToolChoice(body.tool_choice, tools.length);
  checkNumbers(body);
  const stopSequences = body.stop_sequences ?? [];
  if (!Array.isArray(stopSequences)) wrongType('stop_sequences', stopSequences, 'array');
  stopSequences.forEach((sequence, index) => {
    if (!isString(sequence)) wrongType(`stop_sequences[${index}]`, sequence, 'string');
  });
  if (stopSequences.length > 5) invalid(`stop_sequences cannot have more than 5 elements, received ${stopSequences.length}`);
  for (const flag of ['stream', 'logprobs', 'strict_tools'])
    if (body[flag] !== undefined && typeof body[flag] !== 'boolean') wrongType(flag, body[flag], 'boolean');
  if (body.safety_mode !== undefined && !['CONTEXTUAL', 'STRICT', 'OFF'].includes(body.safety_mode as string)) {
    throw new CohereRejection(422, `unrecognized safety mode '${String(body.safety_mode)}'. ${docs}`);
  }
  if (body.thinking !== undefined) {
    if (!isObject(body.thinking)) wrongType('thinking', body.thinking, 'object');
    checkFields(body.thinking, ['type', 'token_budget'], 'thinking');
    if (body.thinking.type !== 'enabled' && body.thinking.type !== 'disabled')
      throw new CohereRejection(422, `unrecognized thinking type '${String(body.thinking.type)}'. ${docs}`);
  }
  return {
    model,
    messages,
    tools,
    toolChoice,
    jsonMode: checkResponseFormat(body.response_format),
    maxTokens: body.max_tokens as number | undefined,
    stopSequences: stopSequences as string[],
    stream: body.stream === true,
    thinks: model.reasoning === true && !(isObject(body.thinking) && body.thinking.type === 'disabled'),
  };
}

function checkMessages(messages: unknown[]): JsonObject[] {
  const callIds = new Set<string>();
  messages.forEach((message, index) => {
    const path = `messages[${index}]`;
    if (!isObject(message)) wrongType(path, message, 'object');
    const role = message.role;
    if (!isString(role) || !messageFields[role]) invalid(`message role must be one of 'system', 'user', 'assistant', 'tool', received '${String(role)}'`);
    checkFields(message, messageFields[role] ?? [], path);
    if (role === 'system' && index !== 0) throw new CohereRejection(400, 'system turn must be the first in the list');
    if (role === 'assistant') {
      const calls = message.tool_calls ?? [];
      if (!Array.isArray(calls)) wrongType(`${path}.tool_calls`, calls, 'array');
      calls.forEach((call, callIndex) => callIds.add(checkToolCall(call, `${path}.tool_calls[${callIndex}]`)));
      if (message.tool_plan !== undefined && !isString(message.tool_plan)) wrongType(`${path}.tool_plan`, message.tool_plan, 'string');
      if (message.content !== undefined) checkContent(message.content, `${path}.content`, role);
      if (calls.length === 0 && message.content === undefined) invalid(`${path}: assistant message must have content or tool_calls`);
      return;
    }
    if (role === 'tool') {
      if (!isString(message.tool_call_id)) invalid(`${path}.tool_call_id is required`);
      if (!callIds.has(message.tool_call_id)) throw new CohereRejection(400, 'tool call id not found in previous tool calls');
    }
    if (message.content === undefined) invalid(`${path}.content is required`);
    checkContent(message.content, `${path}.content`, role);
    if (role === 'user' && contentText(message.content).length === 0 && !hasImage(message.content))
      invalid('message must be at least 1 token long or tool results must be specified.');
  });
  return messages as JsonObject[];
}

function checkToolCall(call: unknown, path: string): string {
  if (!isObject(call)) wrongType(path, call, 'object');
  checkFields(call, ['id', 'type', 'function'], path);
  if (!isString(call.id)) invalid(`${path}.id is required`);
  if (call.type !== undefined && call.type !== 'function') throw new CohereRejection(422, `unrecognized tool call type '${String(call.type)}'. ${docs}`);
  if (!isObject(call.function)) wrongType(`${path}.function`, call.function, 'object');
  checkFields(call.function, ['name', 'arguments'], `${path}.function`);
  if (!isString(call.function.name)) invalid(`${path}.function.name is required`);
  if (call.function.arguments !== undefined && !isString(call.function.arguments)) wrongType(`${path}.function.arguments`, call.function.arguments, 'string');
  return call.id;
}

function checkContent(content: unknown, path: string, role: string): void {
  if (isString(content)) return;
  if (!Array.isArray(content)) wrongType(path, content, 'string or array');
  content.forEach((block, index) => {
    const blockPath = `${path}[${index}]`;
    if (!isObject(block)) wrongType(blockPath, block, 'object');
    if (!isString(block.type) || !(blockTypes[role] ?? []).includes(block.type))
      throw new CohereRejection(422, `unrecognized content type '${String(block.type)}' for ${role} message. ${docs}`);
    if (block.type === 'text') {
      checkFields(block, ['type', 'text'], blockPath);
      if (!isString(block.text)) wrongType(`${blockPath}.text`, block.text, 'string');
    }
    if (block.type === 'image_url') {
      checkFields(block, ['type', 'image_url'], blockPath);
      if (!isObject(block.image_url) || !isString(block.image_url.url)) invalid(`${blockPath}.image_url.url is required`);
    }
    if (block.type === 'document' && !isObject(block.document)) invalid(`${blockPath}.document is required`);
  });
}

export function contentText(content: unknown): string {
  if (isString(content)) return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block) => {
      if (!isObject(block)) return '';
      if (block.type === 'text' && isString(block.text)) return block.text;
      if (block.type === 'document' && isObject(block.document)) return JSON.stringify(block.document.data ?? block.document);
      return '';
    })
    .filter((text) => text.length > 0)
    .join(' ');
}

export function hasImage(content: unknown): boolean {
  return Array.isArray(content) && content.some((block) => isObject(block) && block.type === 'image_url');
}

function checkTools(value: unknown): { name: string; schema: unknown }[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) wrongType('tools', value, 'array');
  return value.map((tool, index) => {
    const path = `tools[${index}]`;
    if (!isObject(tool)) wrongType(path, tool, 'object');
    checkFields(tool, ['type', 'function'], path);
    if (tool.type !== 'function') throw new CohereRejection(422, `unrecognized tool type '${String(tool.type)}'. ${docs}`);
    if (!isObject(tool.function)) wrongType(`${path}.function`, tool.function, 'object');
    checkFields(tool.function, ['name', 'description', 'parameters'], `${path}.function`);
    if (!isString(tool.function.name) || tool.function.name.length === 0) invalid(`${path}.function.name is required`);
    if (tool.function.parameters !== undefined && !isObject(tool.function.parameters))
      wrongType(`${path}.function.parameters`, tool.function.parameters, 'object');
    return { name: tool.function.name, schema: tool.function.parameters };
  });
}

function checkToolChoice(value: unknown, toolCount: number): 'REQUIRED' | 'NONE' | undefined {
  if (value === undefined) return undefined;
  if (value !== 'REQUIRED' && value !== 'NONE') {
    const shown = isString(value) ? value : JSON.stringify(value);
    throw new CohereRejection(422, `unrecognized tool choice option '${shown}'. ${docs}`);
  }
  if (value === 'REQUIRED' && toolCount === 0) invalid('tool_choice REQUIRED can only be used when tools are specified');
  return value;
}

function checkNumbers(body: JsonObject): void {
  const ranges: [string, number, number, boolean][] = [
    ['temperature', 0, Number.MAX_VALUE, false],
    ['p', 0.01, 0.99, false],
    ['k', 0, 500, true],
    ['frequency_penalty', 0, 1, false],
    ['presence_penalty', 0, 1, false],
    ['max_tokens', 1, Number.MAX_SAFE_INTEGER, true],
    ['seed', 0, Number.MAX_SAFE_INTEGER, true],
  ];
  for (const [name, minimum, maximum, integer] of ranges) {
    const value = body[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || (integer && !Number.isInteger(value))) wrongType(name, value, integer ? 'integer' : 'float');
    if (value < minimum) invalid(`${name} must be ${minimum === 0 ? 'non-negative' : `at least ${minimum}`}, received ${value}`);
    if (value > maximum) invalid(`${name} must be at most ${maximum}, received ${value}`);
  }
}

function checkResponseFormat(value: unknown): boolean {
  if (value === undefined) return false;
  if (!isObject(value)) wrongType('response_format', value, 'object');
  if (value.type !== 'text' && value.type !== 'json_object')
    throw new CohereRejection(422, `unrecognized response format type '${String(value.type)}'. ${docs}`);
  checkFields(value, value.type === 'text' ? ['type'] : ['type', 'json_schema'], 'response_format');
  if (value.json_schema !== undefined && !isObject(value.json_schema)) wrongType('response_format.json_schema', value.json_schema, 'object');
  return value.type === 'json_object';
}
