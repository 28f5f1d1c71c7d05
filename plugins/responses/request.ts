// A Responses API body (`POST /v1/responses`) → Keyway's ChatRequest, so every provider serves it
// through the chat path. What the chat vocabulary cannot carry is refused with a 400 naming the
// field, or dropped with a warning when dropping it cannot change what the caller gets back. What
// only a provider's own Responses API can serve (hosted tools, their call items, uploaded files) is
// not refused here: it is recorded as `nativeOnly`, the refusal a route without that API answers.

import { invalidField, KeywayError } from '../../core/errors.ts';
import {
  REASONING_WANTED,
  type ChatMessage,
  type ChatRequest,
  type ContentPart,
  type ResponseFormat,
  type ToolCall,
  type ToolChoice,
  type ToolDefinition,
} from '../../core/spec/vocabulary.ts';
import { kindOf } from '../../core/wire/chat-shapes.ts';
import { checkModelName, checkSamplingRanges, isFiniteNumber, OPENAI_SAMPLING_RANGES } from '../../core/wire/request-validation.ts';

type Json = Record<string, unknown>;

export interface ResponsesTranslation {
  request: ChatRequest;
  warnings: string[];
  /** Names of `custom` (free-form input) tools: their calls go back as custom_tool_call items. */
  customTools: Set<string>;
  /** This request's input as Responses items (a string input as one user message, references resolved), for a stored response. */
  inputItems: Json[];
  /** Set when only a provider's own Responses API can serve the request: the refusal for any other route. */
  nativeOnly: KeywayError | undefined;
  /** Warnings that hold only when the chat translation serves (a native call honours those fields). */
  translationWarnings: string[];
}

/** What the translation could not carry but a provider's own Responses API could: the first such refusal. */
interface NativeNeeds {
  nativeOnly: KeywayError | undefined;
}

function needsNative(needs: NativeNeeds, error: KeywayError): void {
  needs.nativeOnly ??= error;
}

/** A custom tool's free-form input travels as this one string argument of a function call. */
export const CUSTOM_INPUT_PARAMETER = 'input';

/** A custom tool call's input from the function arguments it was carried in. */
export function customInputFromArguments(argumentsText: string): string {
  try {
    const parsed = JSON.parse(argumentsText) as unknown;
    if (isObject(parsed) && typeof parsed[CUSTOM_INPUT_PARAMETER] === 'string') return parsed[CUSTOM_INPUT_PARAMETER];
  } catch {
    // not JSON: the model wrote the input itself
  }
  return argumentsText;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unsupported(param: string, detail: string): KeywayError {
  return new KeywayError('unsupported_feature', { detail }, { param });
}

const EMPTY_TEXT: ContentPart = { type: 'text', text: '' };

/** An input_text / input_image / input_file part → a chat content part. */
function contentPart(part: unknown, param: string, needs: NativeNeeds): ContentPart {
  if (!isObject(part)) throw invalidField(param, 'expected a content part object');
  switch (part.type) {
    case 'input_text':
    case 'output_text':
    case 'text':
      if (typeof part.text !== 'string') throw invalidField(`${param}.text`, 'expected a string');
      return { type: 'text', text: part.text };
    case 'refusal':
      return { type: 'text', text: typeof part.refusal === 'string' ? part.refusal : '' };
    case 'input_image': {
      if (typeof part.image_url !== 'string' || part.image_url === '') {
        needsNative(
          needs,
          unsupported(param, "input_image needs an image_url (an https or data: URL); uploaded file_id images reach only OpenAI's own Responses API."),
        );
        return EMPTY_TEXT;
      }
      const detail = part.detail === 'low' || part.detail === 'high' || part.detail === 'auto' ? part.detail : undefined;
      return { type: 'image_url', image_url: detail === undefined ? { url: part.image_url } : { url: part.image_url, detail } };
    }
    case 'input_file': {
      if (typeof part.file_data !== 'string') {
        needsNative(needs, unsupported(param, "input_file needs file_data (a data: URL); file_id and file_url reach only OpenAI's own Responses API."));
        return EMPTY_TEXT;
      }
      const file: Json = { file_data: part.file_data };
      if (typeof part.filename === 'string') file.filename = part.filename;
      return { type: 'file', file };
    }
    default:
      needsNative(needs, unsupported(`${param}.type`, `Content part type '${String(part.type)}' is not supported on /v1/responses.`));
      return EMPTY_TEXT;
  }
}

function messageContent(content: unknown, param: string, needs: NativeNeeds): string | ContentPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalidField(param, 'expected a string or an array of content parts');
  return content.map((part, index) => contentPart(part, `${param}[${index}]`, needs));
}

/** A function_call_output's `output`: a string, or content parts whose text is joined. */
function toolOutput(output: unknown, param: string, needs: NativeNeeds): string | ContentPart[] {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) return messageContent(output, param, needs);
  throw invalidField(param, 'expected a string or an array of content parts');
}

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** Consecutive function calls (and the assistant text before them) are one assistant turn in chat. */
function appendToolCall(messages: ChatMessage[], call: ToolCall): void {
  const last = messages[messages.length - 1];
  if (last !== undefined && last.role === 'assistant') {
    last.tool_calls = [...(last.tool_calls ?? []), call];
    return;
  }
  messages.push({ role: 'assistant', content: null, tool_calls: [call] });
}

/**
 * `needs` undefined: an item of a stored conversation, not the caller's input. Items only a provider's
 * own API can replay (a hosted tool's call) are then skipped: the answers after them carry what they gave.
 */
function inputItem(item: unknown, index: number, messages: ChatMessage[], needs: NativeNeeds | undefined): void {
  const param = `input[${index}]`;
  if (!isObject(item)) throw invalidField(param, 'expected an input item object');
  const type = item.type ?? 'message';
  switch (type) {
    case 'message': {
      if (typeof item.role !== 'string' || !MESSAGE_ROLES.has(item.role)) throw invalidField(`${param}.role`, 'expected user, assistant, system or developer');
      messages.push({ role: item.role as ChatMessage['role'], content: messageContent(item.content, `${param}.content`, needs ?? { nativeOnly: undefined }) });
      return;
    }
    case 'function_call': {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw invalidField(param, 'a function_call needs call_id and name');
      // The caller's own item is held to the API's type, as chat's tool_calls are: anything else used
      // to become `{}`, the call's arguments lost without a word (QA20). A stored item is Keyway's own.
      if (needs !== undefined && typeof item.arguments !== 'string')
        throw invalidField(`${param}.arguments`, `expected a string of JSON (the arguments as JSON.stringify writes them); got ${kindOf(item.arguments)}`);
      const argumentsText = typeof item.arguments === 'string' ? item.arguments : '{}';
      appendToolCall(messages, { id: item.call_id, type: 'function', function: { name: item.name, arguments: argumentsText } });
      return;
    }
    case 'function_call_output': {
      if (typeof item.call_id !== 'string') throw invalidField(`${param}.call_id`, 'expected the call_id of an earlier function_call');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: toolOutput(item.output, `${param}.output`, needs ?? { nativeOnly: undefined }) });
      return;
    }
    case 'custom_tool_call': {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw invalidField(param, 'a custom_tool_call needs call_id and name');
      const argumentsText = JSON.stringify({ [CUSTOM_INPUT_PARAMETER]: typeof item.input === 'string' ? item.input : '' });
      appendToolCall(messages, { id: item.call_id, type: 'function', function: { name: item.name, arguments: argumentsText } });
      return;
    }
    case 'custom_tool_call_output': {
      if (typeof item.call_id !== 'string') throw invalidField(`${param}.call_id`, 'expected the call_id of an earlier custom_tool_call');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: toolOutput(item.output, `${param}.output`, needs ?? { nativeOnly: undefined }) });
      return;
    }
    case 'reasoning':
      // Reasoning items replay a model's earlier thinking (often encrypted for OpenAI only): the chat
      // path has no place for them, and every provider answers correctly without them.
      return;
    case 'item_reference':
      // References were replaced by their items before translation (resolveReferences); what is
      // left names reasoning kept elsewhere, dropped like reasoning itself.
      return;
    default:
      if (needs === undefined) return;
      needsNative(
        needs,
        unsupported(
          `${param}.type`,
          `Input items of type '${String(type)}' are not supported on /v1/responses but by OpenAI's own Responses API (messages, function and custom tool calls and their outputs, reasoning and item references are).`,
        ),
      );
  }
}

/**
 * A `custom` tool (free-form input, as Codex's apply_patch) becomes a function taking one string;
 * a grammar the provider cannot enforce is handed to the model in the description instead.
 */
function customTool(tool: Json, index: number): ToolDefinition {
  if (typeof tool.name !== 'string' || tool.name === '') throw invalidField(`tools[${index}].name`, 'expected a tool name');
  const format = isObject(tool.format) ? tool.format : undefined;
  let description = typeof tool.description === 'string' ? tool.description : '';
  if (format?.type === 'grammar' && typeof format.definition === 'string')
    description += `\n\nThe input must follow this ${typeof format.syntax === 'string' ? format.syntax : ''} grammar:\n${format.definition}`;
  return {
    type: 'function',
    function: {
      name: tool.name,
      description: description.trim(),
      parameters: {
        type: 'object',
        properties: { [CUSTOM_INPUT_PARAMETER]: { type: 'string', description: 'The raw input, exactly as the tool takes it.' } },
        required: [CUSTOM_INPUT_PARAMETER],
        additionalProperties: false,
      },
    },
  };
}

/**
 * A hosted tool stays in `tools` as it was sent, for the team policies that look for one (hosted-tools):
 * the request then reaches only a provider's own Responses API, never a chat translation.
 */
function tools(value: unknown, customTools: Set<string>, needs: NativeNeeds): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalidField('tools', 'expected an array');
  return value.map((tool, index) => {
    if (!isObject(tool)) throw invalidField(`tools[${index}]`, 'expected a tool object');
    if (tool.type === 'custom') {
      customTools.add(String(tool.name));
      return customTool(tool, index);
    }
    if (tool.type !== 'function') {
      needsNative(
        needs,
        unsupported(
          `tools[${index}].type`,
          `Tool type '${String(tool.type)}' is a tool OpenAI hosts: it is available when OpenAI serves the request, and this route has no provider that can (only function and custom tools are translated to other providers).`,
        ),
      );
      return tool as unknown as ToolDefinition;
    }
    if (typeof tool.name !== 'string' || tool.name === '') throw invalidField(`tools[${index}].name`, 'expected a function name');
    const fn: ToolDefinition['function'] = { name: tool.name };
    if (typeof tool.description === 'string') fn.description = tool.description;
    if (isObject(tool.parameters)) fn.parameters = tool.parameters;
    if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoice(value: unknown, needs: NativeNeeds): ToolChoice | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'auto' || value === 'none' || value === 'required') return value;
  if (isObject(value) && (value.type === 'function' || value.type === 'custom') && typeof value.name === 'string')
    return { type: 'function', function: { name: value.name } };
  needsNative(
    needs,
    unsupported(
      'tool_choice',
      "tool_choice must be 'auto', 'none', 'required', {type:'function', name} or {type:'custom', name} unless OpenAI serves the request.",
    ),
  );
  return undefined;
}

function responseFormat(text: unknown): ResponseFormat | undefined {
  if (text === undefined || text === null) return undefined;
  if (!isObject(text)) throw invalidField('text', 'expected an object');
  const format = text.format;
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) throw invalidField('text.format', 'expected an object');
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      if (typeof format.name !== 'string' || format.name === '') throw invalidField('text.format.name', 'expected the schema name');
      // Required by the API: without it the format used to fall back to json_object (QA20).
      if (!isObject(format.schema)) throw invalidField('text.format.schema', 'expected a JSON Schema object');
      const schema: { name: string; schema?: Json; strict?: boolean; description?: string } = { name: format.name, schema: format.schema };
      if (typeof format.strict === 'boolean') schema.strict = format.strict;
      if (typeof format.description === 'string') schema.description = format.description;
      return { type: 'json_schema', json_schema: schema };
    }
    default:
      throw unsupported('text.format.type', `text.format type '${String(format.type)}' is not supported (text, json_object and json_schema are).`);
  }
}

/** Fields the chat vocabulary takes as they are. */
const COPIED = ['temperature', 'top_p', 'parallel_tool_calls', 'user', 'prompt_cache_key', 'safety_identifier', 'service_tier', 'provider', 'routing'] as const;

/** Fields that ask for something Keyway cannot do on this surface: a 400, never a silent drop. */
const REFUSED: Record<string, string> = {
  // Keyway keeps responses, not OpenAI's conversation objects (state held at OpenAI that it cannot scope to an account and team).
  conversation:
    "OpenAI's Conversations API is not available through Keyway; send the whole conversation in input, or continue a stored response with previous_response_id.",
  prompt: 'Stored prompt templates live at OpenAI only; send instructions and input instead.',
  background: 'Background responses are not available through Keyway; stream instead.',
};

function refuseUnservable(body: Json): void {
  for (const [name, detail] of Object.entries(REFUSED)) {
    const value = body[name];
    if (value === undefined || value === null || value === false) continue;
    throw unsupported(name, detail);
  }
}

/**
 * The Responses API's own fields (openai-node's ResponseCreateParams) and Keyway's (`provider`,
 * `routing`). Any other field is not part of the API this dialect speaks: a translated request drops
 * it with a warning, as chat and /v1/messages do (a `stop` moved over from chat vanished silently, QA15).
 */
const RESPONSES_FIELDS: ReadonlySet<string> = new Set([
  'background',
  'conversation',
  'include',
  'input',
  'instructions',
  'max_output_tokens',
  'max_tool_calls',
  'metadata',
  'model',
  'parallel_tool_calls',
  'previous_response_id',
  'prompt',
  'prompt_cache_key',
  'prompt_cache_retention',
  'reasoning',
  'safety_identifier',
  'service_tier',
  'store',
  'stream',
  'stream_options',
  'temperature',
  'text',
  'tool_choice',
  'tools',
  'top_logprobs',
  'top_p',
  'truncation',
  'user',
  'provider',
  'routing',
]);

function ignoredFieldWarnings(body: Json, warnings: string[]): void {
  for (const name of Object.keys(body)) if (!RESPONSES_FIELDS.has(name)) warnings.push(`ignored '${name}': not a Responses API field`);
  if (typeof body.top_logprobs === 'number' && body.top_logprobs > 0) warnings.push('top_logprobs: not available on /v1/responses through Keyway; dropped.');
  if (body.truncation === 'auto') warnings.push("truncation 'auto': Keyway does not truncate the input; a prompt over the context window fails instead.");
  if (body.max_tool_calls !== undefined && body.max_tool_calls !== null) warnings.push('max_tool_calls: not available through Keyway; dropped.');
}

/** Where the items an `item_reference` names are looked up, beyond the conversation continued. */
export interface ItemReferences {
  /** The item with this id, from a stored response the caller may read. */
  find(id: string): Json | undefined;
  /** Why an id found nothing, after "Item with id '…' not found". */
  whyMissing: string;
}

const NO_REFERENCES: ItemReferences = { find: () => undefined, whyMissing: ': it is in no stored response.' };

/**
 * Each `item_reference` replaced by the item it names: from the conversation continued, else from
 * any stored response of the caller's (the AI SDK's default OpenAI model sends its earlier answers
 * this way). A reference to unknown reasoning stays (it is dropped: OpenAI's encrypted reasoning
 * helps no other provider); any other unknown reference is a 400 naming the id.
 */
function resolveReferences(items: readonly unknown[], previous: readonly Json[], references: ItemReferences): Json[] {
  return items.map((item, index) => {
    if (!isObject(item) || item.type !== 'item_reference') return item as Json;
    const id = item.id;
    if (typeof id !== 'string' || id === '') throw invalidField(`input[${index}].id`, 'expected the id of an earlier item');
    const referenced = previous.find((candidate) => candidate.id === id && candidate.type !== 'item_reference') ?? references.find(id);
    if (referenced !== undefined) return referenced;
    if (id.startsWith('rs_')) return item;
    throw new KeywayError('invalid_request', { detail: `Item with id '${id.slice(0, 100)}' not found${references.whyMissing}` }, { param: `input[${index}]` });
  });
}

/** The body's input as Responses items (a string is one user message), references resolved. */
function inputItemsOf(input: unknown, previous: readonly Json[], references: ItemReferences): Json[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (Array.isArray(input)) return resolveReferences(input, previous, references);
  if (input !== undefined && input !== null) throw invalidField('input', 'expected a string or an array of input items');
  return [];
}

/**
 * The body's `instructions`, the continued conversation's items and `input` as chat messages,
 * instructions first (as OpenAI applies them; an earlier response's instructions are not carried).
 */
function conversation(body: Json, inputItems: readonly Json[], previous: readonly Json[], needs: NativeNeeds): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.instructions !== undefined && body.instructions !== null) {
    if (typeof body.instructions !== 'string') throw invalidField('instructions', 'expected a string');
    if (body.instructions !== '') messages.push({ role: 'system', content: body.instructions });
  }
  previous.forEach((item, index) => inputItem(item, index, messages, undefined));
  inputItems.forEach((item, index) => inputItem(item, index, messages, needs));
  // Input whose items are all of a type the translation cannot carry is refused naming the first such
  // item (`input[0].type`), not as missing: the client sent input, and one of its items is the problem.
  if (messages.length === 0 || messages.every((message) => message.role === 'system'))
    throw needs.nativeOnly ?? new KeywayError('missing_field', { param: 'input' }, { param: 'input' });
  return messages;
}

/**
 * `previous`: the items of the stored conversation `previous_response_id` continues; `references`:
 * where other stored items are found.
 */
export function chatRequestFromResponses(body: unknown, previous: readonly Json[] = [], references: ItemReferences = NO_REFERENCES): ResponsesTranslation {
  if (!isObject(body)) throw new KeywayError('invalid_request', { detail: 'The request body must be a JSON object.' });
  // Left out, the model is the `provider` key's default_model, filled by the runner as on chat
  // (LifecycleRunner.applyDefaultModel, which refuses a request with neither: missing_field).
  const model = body.model ?? '';
  if (typeof model !== 'string') throw invalidField('model', 'expected a string');
  checkModelName(model);
  refuseUnservable(body);
  // OpenAI's ranges, as on /v1/chat/completions: refused here whoever would serve.
  checkSamplingRanges(body, OPENAI_SAMPLING_RANGES);
  const translationWarnings: string[] = [];
  ignoredFieldWarnings(body, translationWarnings);
  const needs: NativeNeeds = { nativeOnly: undefined };
  const inputItems = inputItemsOf(body.input, previous, references);
  const request: ChatRequest = { model, messages: conversation(body, inputItems, previous, needs) };
  for (const name of COPIED) if (body[name] !== undefined && body[name] !== null) request[name] = body[name] as never;
  // Anything but a boolean used to mean false: a JSON answer to a client that reads events (QA20).
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalidField('stream', 'expected a boolean');
  if (body.stream === true) {
    request.stream = true;
    request.stream_options = { include_usage: true };
  }
  if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) {
    if (!isFiniteNumber(body.max_output_tokens) || !(body.max_output_tokens > 0)) throw invalidField('max_output_tokens', 'expected a positive integer');
    request.max_completion_tokens = body.max_output_tokens;
  }
  const customTools = new Set<string>();
  const toolList = tools(body.tools, customTools, needs);
  if (toolList !== undefined && toolList.length > 0) request.tools = toolList;
  const choice = toolChoice(body.tool_choice, needs);
  if (choice !== undefined && request.tools !== undefined) request.tool_choice = choice;
  const format = responseFormat(body.text);
  if (format !== undefined) request.response_format = format;
  const verbosity = isObject(body.text) ? body.text.verbosity : undefined;
  if (typeof verbosity === 'string') request.verbosity = verbosity;
  const reasoning = body.reasoning;
  if (isObject(reasoning) && typeof reasoning.effort === 'string') request.reasoning_effort = reasoning.effort;
  // OpenAI returns reasoning text only when a summary is asked for (`generate_summary` is its older
  // name); a provider that shows its reasoning only on request (Gemini) is asked exactly then.
  request[REASONING_WANTED] = isObject(reasoning) && (typeof reasoning.summary === 'string' || typeof reasoning.generate_summary === 'string');
  return { request, warnings: [], customTools, inputItems, nativeOnly: needs.nativeOnly, translationWarnings };
}
