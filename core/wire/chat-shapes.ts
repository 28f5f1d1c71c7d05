// The shapes of a chat request's messages, tools and tool choice that the provider translations read.
// Checked once, before routing, by validateChatRequest: a client's mistake (tool-call arguments sent as
// an object, as Ollama-style clients do; a tool without its function; a null content part) is a 400
// naming the field, whoever would serve, before any upstream call. Unchecked, the same request was a
// 500 from the translations that read the field (Anthropic, Gemini, Cohere), an upstream 400 from the
// providers that forward it, and a 200 from a lenient one (QA17). Only the shape is checked here: what
// a value means (a JSON schema, a data URL, a document's source) stays each provider's to judge.
// Hand-written, like the rest of the request checks, because it runs on every request; a field path is
// built only for an error.

import { invalidField, KeywayError } from '../errors.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** What a value is, for an error: "got an object". */
export function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function missing(param: string): KeywayError {
  return new KeywayError('missing_field', { param }, { param });
}

/** A required non-empty string: absent is `missing_field`, anything else `invalid_field`. */
function requireName(value: unknown, param: string): void {
  if (value === undefined) throw missing(param);
  if (typeof value !== 'string' || value === '')
    throw invalidField(param, `expected a non-empty string; got ${value === '' ? 'an empty string' : kindOf(value)}`);
}

/** An optional field: unset (absent or null) or a string. */
function optionalString(value: unknown, param: string): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw invalidField(param, `expected a string; got ${kindOf(value)}`);
}

/** The tool types whose fields Keyway reads; any other (a provider's hosted tool) is the provider's to judge. */
const FUNCTION = 'function';
const CUSTOM = 'custom';

/**
 * A content part: an object with a `type`, and for the two types every translation reads, their
 * fields (`text`, `image_url.url`). Other types (files, audio, Anthropic's documents and search
 * results) are checked by the translations that take them.
 */
function checkPart(part: unknown, index: number, position: number): void {
  if (!isObject(part)) throw invalidField(`messages[${index}].content[${position}]`, `expected a content part object; got ${kindOf(part)}`);
  if (typeof part.type !== 'string') {
    if (part.type === undefined) throw missing(`messages[${index}].content[${position}].type`);
    throw invalidField(`messages[${index}].content[${position}].type`, `expected a string; got ${kindOf(part.type)}`);
  }
  if (part.type === 'text' && typeof part.text !== 'string') {
    if (part.text === undefined) throw missing(`messages[${index}].content[${position}].text`);
    throw invalidField(`messages[${index}].content[${position}].text`, `expected a string; got ${kindOf(part.text)}`);
  }
  if (part.type === 'image_url') {
    const image = part.image_url;
    if (!isObject(image)) throw invalidField(`messages[${index}].content[${position}].image_url`, `expected an object with a url; got ${kindOf(image)}`);
    if (typeof image.url !== 'string')
      throw invalidField(`messages[${index}].content[${position}].image_url.url`, `expected a string; got ${kindOf(image.url)}`);
  }
}

/**
 * One assistant tool call, as OpenAI's API takes it: an `id`, and a function with its `name` and its
 * `arguments` as a string of JSON. `type` may be left out (Ollama-style clients do), meaning a function
 * call; OpenAI's `custom` calls carry `custom.name` and `custom.input` instead.
 */
function checkToolCall(call: unknown, index: number, position: number): void {
  const path = `messages[${index}].tool_calls[${position}]`;
  if (!isObject(call)) throw invalidField(path, `expected a tool call object; got ${kindOf(call)}`);
  requireName(call.id, `${path}.id`);
  const type = call.type ?? FUNCTION;
  if (type === CUSTOM) {
    if (!isObject(call.custom)) throw invalidField(`${path}.custom`, `expected an object with name and input; got ${kindOf(call.custom)}`);
    requireName(call.custom.name, `${path}.custom.name`);
    if (typeof call.custom.input !== 'string') throw invalidField(`${path}.custom.input`, `expected a string; got ${kindOf(call.custom.input)}`);
    return;
  }
  if (type !== FUNCTION) throw invalidField(`${path}.type`, `expected 'function' or 'custom'; got ${typeof type === 'string' ? `'${type}'` : kindOf(type)}`);
  const called = call.function;
  if (called === undefined) throw missing(`${path}.function`);
  if (!isObject(called)) throw invalidField(`${path}.function`, `expected an object with name and arguments; got ${kindOf(called)}`);
  requireName(called.name, `${path}.function.name`);
  if (typeof called.arguments !== 'string') {
    if (called.arguments === undefined) throw missing(`${path}.function.arguments`);
    throw invalidField(
      `${path}.function.arguments`,
      `expected a string of JSON (the arguments as JSON.stringify writes them); got ${kindOf(called.arguments)}`,
    );
  }
}

/** The fields of one message that the translations read beyond its role and content's kind. */
export function checkMessageShape(message: Record<string, unknown>, index: number): void {
  const content = message.content;
  if (Array.isArray(content)) for (let position = 0; position < content.length; position++) checkPart(content[position], index, position);
  const calls = message.tool_calls;
  if (calls !== undefined && calls !== null) {
    if (!Array.isArray(calls)) throw invalidField(`messages[${index}].tool_calls`, `expected an array of tool calls; got ${kindOf(calls)}`);
    for (let position = 0; position < calls.length; position++) checkToolCall(calls[position], index, position);
  }
  optionalString(message.tool_call_id, `messages[${index}].tool_call_id`);
  optionalString(message.name, `messages[${index}].name`);
}

/**
 * One tool definition: a `type`, and for a function its `name` and, when set, a `description` string,
 * `parameters` as a JSON schema object and `strict` as a boolean. A `custom` tool has `custom.name`.
 * Any other type (a provider's hosted tool: Groq's `browser_search`, a web search) is passed to the
 * provider that takes it and refused or dropped by the others, as each translation says.
 */
function checkTool(tool: unknown, position: number): void {
  const path = `tools[${position}]`;
  if (!isObject(tool)) throw invalidField(path, `expected a tool object; got ${kindOf(tool)}`);
  requireName(tool.type, `${path}.type`);
  if (tool.type === CUSTOM) {
    if (!isObject(tool.custom)) throw invalidField(`${path}.custom`, `expected an object with a name; got ${kindOf(tool.custom)}`);
    requireName(tool.custom.name, `${path}.custom.name`);
    return;
  }
  if (tool.type !== FUNCTION) return;
  const definition = tool.function;
  if (definition === undefined) throw missing(`${path}.function`);
  if (!isObject(definition)) throw invalidField(`${path}.function`, `expected an object with a name; got ${kindOf(definition)}`);
  requireName(definition.name, `${path}.function.name`);
  optionalString(definition.description, `${path}.function.description`);
  if (definition.parameters !== undefined && !isObject(definition.parameters))
    throw invalidField(`${path}.function.parameters`, `expected a JSON schema object; got ${kindOf(definition.parameters)}`);
  if (definition.strict !== undefined && definition.strict !== null && typeof definition.strict !== 'boolean')
    throw invalidField(`${path}.function.strict`, `expected a boolean; got ${kindOf(definition.strict)}`);
}

export function checkTools(tools: readonly unknown[]): void {
  for (let position = 0; position < tools.length; position++) checkTool(tools[position], position);
}

/**
 * `tool_choice`: a string (OpenAI's `none`, `auto`, `required`; a provider's own, such as Mistral's
 * `any`, is that provider's to judge) or an object with a `type`; one that names a function names it
 * with a string.
 */
export function checkToolChoice(choice: unknown): void {
  if (choice === undefined || choice === null || typeof choice === 'string') return;
  if (!isObject(choice)) throw invalidField('tool_choice', `expected a string or an object naming a tool; got ${kindOf(choice)}`);
  requireName(choice.type, 'tool_choice.type');
  if (choice.type === FUNCTION) {
    if (!isObject(choice.function)) throw invalidField('tool_choice.function', `expected an object with a name; got ${kindOf(choice.function)}`);
    requireName(choice.function.name, 'tool_choice.function.name');
  } else if (choice.type === CUSTOM) {
    if (!isObject(choice.custom)) throw invalidField('tool_choice.custom', `expected an object with a name; got ${kindOf(choice.custom)}`);
    requireName(choice.custom.name, 'tool_choice.custom.name');
  }
}

/** `stop`: a string or an array of strings (null is unset), as OpenAI takes it. */
export function checkStop(stop: unknown): void {
  if (stop === undefined || stop === null || typeof stop === 'string') return;
  if (!Array.isArray(stop)) throw invalidField('stop', `expected a string or an array of strings; got ${kindOf(stop)}`);
  for (let position = 0; position < stop.length; position++) {
    if (typeof stop[position] !== 'string') throw invalidField(`stop[${position}]`, `expected a string; got ${kindOf(stop[position])}`);
  }
}

/** `response_format`: an object with a `type` (null is unset); what the type asks for is each provider's. */
export function checkResponseFormat(format: unknown): void {
  if (format === undefined || format === null) return;
  if (!isObject(format)) throw invalidField('response_format', `expected an object with a type; got ${kindOf(format)}`);
  requireName(format.type, 'response_format.type');
}
