// OpenAI-shaped ChatRequest → Anthropic Messages body. Pure functions: everything the translation
// could not honour is pushed onto `warnings` (sent to the client in X-Keyway-Warnings) rather than
// silently lost.

import { refuseLegacyFunctions } from '../../core/wire/legacy-functions.ts';
import type { AnthropicMessage, Block } from './message.ts';
import { invalidField, KeywayError } from '../../core/errors.ts';
import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import { parseDataUrl, parseToolArguments } from '../../core/wire/provider-kit.ts';
import { checkDocument } from '../../core/wire/documents.ts';
import { checkSearchResult } from '../../core/wire/search-results.ts';
import type { ChatMessage, ChatRequest, ResponseFormat, ToolDefinition } from '../../core/spec/vocabulary.ts';
import { planThinking, thinkingIsOn, type ThinkingPlan } from './thinking.ts';
import { catalogMaxOutputTokens, claudeCapabilities, type ClaudeCapabilities } from './capabilities.ts';

const PROVIDER = 'anthropic';
export { claudeCapabilities, claudeSupportsThinking, type ClaudeCapabilities } from './capabilities.ts';
export const ANTHROPIC_VERSION = '2023-06-01';
const FALLBACK_MAX_TOKENS = 4096;

/**
 * Anthropic wants the conversation to open with a user turn and to hold at least one message; this
 * minimal text stands in when the client's history does not.
 */
export const PLACEHOLDER_USER_TEXT = '.';

/** Appended to `system` for `response_format: json_object`, which Anthropic has no switch for. */
export const JSON_OBJECT_INSTRUCTION = 'Respond with a single valid JSON object and nothing else.';

export type { AnthropicMessage } from './message.ts';

export function anthropicHeaders(apiKey: string, betas?: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-api-key': apiKey, 'anthropic-version': ANTHROPIC_VERSION, 'content-type': 'application/json' };
  if (betas !== undefined && betas !== '') headers['anthropic-beta'] = betas;
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Model generations

function withCacheControl(block: Block, part: { cache_control?: unknown }): Block {
  if (part.cache_control !== undefined) block.cache_control = part.cache_control;
  return block;
}

const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

function imageBlock(url: string, path: string): Block {
  if (url.startsWith('data:')) {
    const parsed = parseDataUrl(url);
    if (!parsed) throw invalidField(path, 'an image data URL must be base64-encoded (data:<type>;base64,<data>)');
    const mediaType = parsed.mediaType.toLowerCase() === 'image/jpg' ? 'image/jpeg' : parsed.mediaType.toLowerCase();
    if (!IMAGE_MEDIA_TYPES.has(mediaType))
      throw invalidField(path, `Anthropic accepts image/jpeg, image/png, image/gif and image/webp; got ${parsed.mediaType}`);
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: parsed.data } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw invalidField(path, 'an image must be a data: URL or an http(s) URL');
}

function documentBlock(file: Record<string, unknown> | undefined, path: string): Block {
  const parsed = typeof file?.file_data === 'string' ? parseDataUrl(file.file_data) : undefined;
  if (parsed?.mediaType !== 'application/pdf') {
    throw new KeywayError('unsupported_feature', { detail: `${path}: Anthropic takes files only as base64 PDF data URLs (file_data)` }, { param: path });
  }
  const block: Block = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: parsed.data } };
  if (typeof file?.filename === 'string') block.title = file.filename;
  return block;
}

/** One OpenAI content part → one Anthropic block; undefined for parts that carry nothing (empty text). */
function partBlock(part: Record<string, unknown>, path: string): Block | undefined {
  if (part.type === 'text') {
    const text = typeof part.text === 'string' ? part.text : '';
    // Anthropic rejects empty text blocks.
    return text === '' ? undefined : withCacheControl({ type: 'text', text }, part);
  }
  if (part.type === 'image_url') {
    const image = part.image_url as { url?: unknown } | undefined;
    if (typeof image?.url !== 'string') throw invalidField(`${path}.image_url.url`, 'must be a string');
    return withCacheControl(imageBlock(image.url, `${path}.image_url.url`), part);
  }
  if (part.type === 'file') return withCacheControl(documentBlock(part.file as Record<string, unknown> | undefined, path), part);
  // Anthropic's own blocks, written by its client: every field as sent (title, context, citations, cache_control).
  if (part.type === 'search_result') return { ...checkSearchResult(part, path) };
  if (part.type === 'document') return { ...checkDocument(part, path) };
  throw new KeywayError('unsupported_feature', { detail: `${path}: Anthropic does not accept '${String(part.type)}' content parts` }, { param: path });
}

function contentBlocks(content: ChatMessage['content'], path: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw invalidField(path, 'must be a string or an array of content parts');
  const blocks: Block[] = [];
  content.forEach((part, position) => {
    const block = partBlock(part as Record<string, unknown>, `${path}[${position}]`);
    if (block) blocks.push(block);
  });
  return blocks;
}

function systemBlocks(content: ChatMessage['content'], path: string): Block[] {
  const blocks = contentBlocks(content, path);
  const nonText = blocks.findIndex((block) => block.type !== 'text');
  if (nonText !== -1) throw invalidField(`${path}[${nonText}]`, 'system and developer messages may hold only text');
  return blocks;
}

function toolUseBlock(call: NonNullable<ChatMessage['tool_calls']>[number], path: string): Block {
  // OpenAI's custom tool calls carry free text (`custom.input`), which no tool_use block holds.
  if (!isRecord(call.function)) {
    throw new KeywayError('unsupported_feature', { detail: `${path}: Anthropic takes only function tool calls` }, { param: `${path}.type` });
  }
  return {
    type: 'tool_use',
    id: call.id,
    name: call.function.name,
    input: parseToolArguments(PROVIDER, call.function.arguments, `${path}.function.arguments`),
  };
}

const UNSIGNED_THINKING_WARNING =
  "anthropic: left out thinking blocks without a signature (another provider's thinking: Anthropic takes back only its own, signed)";

/**
 * Thinking blocks a client replays from an earlier answer (`thinking_blocks`, signatures intact).
 * A `thinking` block without a signature is one Keyway wrote for another provider's reasoning (Gemini's
 * thoughts, Cohere's thinking, on /v1/messages): Anthropic refuses it ("Invalid signature in thinking
 * block"), so it is left out, with a warning; the turn then has no thinking to replay, which
 * planThinking answers by leaving thinking off rather than failing.
 */
function replayedThinking(message: ChatMessage, warnings: string[]): Block[] {
  if (!Array.isArray(message.thinking_blocks)) return [];
  const blocks: Block[] = [];
  for (const block of message.thinking_blocks as unknown[]) {
    if (typeof block !== 'object' || block === null) continue;
    const type = (block as Block).type;
    if (type === 'redacted_thinking') blocks.push(block as Block);
    else if (type !== 'thinking') continue;
    else if (typeof (block as Block).signature === 'string' && (block as Block).signature !== '') blocks.push(block as Block);
    else if (!warnings.includes(UNSIGNED_THINKING_WARNING)) warnings.push(UNSIGNED_THINKING_WARNING);
  }
  return blocks;
}

function assistantBlocks(message: ChatMessage, path: string, warnings: string[]): Block[] {
  const blocks = replayedThinking(message, warnings);
  // Assistant arrays may hold `refusal` parts, which are the model's own words, not input to replay.
  const content = Array.isArray(message.content) ? message.content.filter((part) => part.type === 'text') : message.content;
  blocks.push(...contentBlocks(content, `${path}.content`));
  (message.tool_calls ?? []).forEach((call, position) => blocks.push(toolUseBlock(call, `${path}.tool_calls[${position}]`)));
  return blocks;
}

function toolResultBlock(message: ChatMessage, path: string): Block {
  if (typeof message.tool_call_id !== 'string' || message.tool_call_id === '') throw new KeywayError('missing_field', { param: `${path}.tool_call_id` });
  const block: Block = { type: 'tool_result', tool_use_id: message.tool_call_id };
  if (typeof message.content === 'string') {
    if (message.content !== '') block.content = message.content;
  } else {
    const blocks = contentBlocks(message.content, `${path}.content`);
    if (blocks.length > 0) block.content = blocks;
  }
  if (message.is_error === true) block.is_error = true;
  return withCacheControl(block, message);
}

function turnFromMessage(message: ChatMessage, path: string, warnings: string[]): AnthropicMessage {
  switch (message.role) {
    case 'user':
      return { role: 'user', content: contentBlocks(message.content, `${path}.content`) };
    case 'assistant':
      return { role: 'assistant', content: assistantBlocks(message, path, warnings) };
    case 'tool':
      return { role: 'user', content: [toolResultBlock(message, path)] };
    case 'function':
      throw new KeywayError(
        'unsupported_feature',
        { detail: `${path}: the deprecated 'function' role is not supported for Anthropic; use tools and 'tool' messages` },
        { param: `${path}.role` },
      );
    default:
      throw invalidField(`${path}.role`, `unknown role '${String(message.role)}'`);
  }
}

/** Anthropic wants tool_result blocks before any other content of the user turn that answers a tool_use. */
function orderToolResultsFirst(turn: AnthropicMessage): void {
  if (turn.role !== 'user' || turn.content.length < 2) return;
  const results = turn.content.filter((block) => block.type === 'tool_result');
  if (results.length === 0) return;
  turn.content = [...results, ...turn.content.filter((block) => block.type !== 'tool_result')];
}

/**
 * System and developer messages become the top-level `system` (in order); the rest become
 * alternating turns. Same-role neighbours are merged here rather than server-side so the body is
 * deterministic.
 */
export function translateMessages(messages: ChatMessage[], warnings: string[] = []): { system: Block[]; messages: AnthropicMessage[] } {
  const system: Block[] = [];
  const turns: AnthropicMessage[] = [];
  messages.forEach((message, position) => {
    const path = `messages[${position}]`;
    if (message.role === 'system' || message.role === 'developer') {
      system.push(...systemBlocks(message.content, `${path}.content`));
      return;
    }
    const turn = turnFromMessage(message, path, warnings);
    if (turn.content.length === 0) return;
    const previous = turns[turns.length - 1];
    if (previous?.role === turn.role) previous.content.push(...turn.content);
    else turns.push(turn);
  });
  for (const turn of turns) orderToolResultsFirst(turn);
  if (turns[0]?.role !== 'user') turns.unshift({ role: 'user', content: [{ type: 'text', text: PLACEHOLDER_USER_TEXT }] });
  return { system, messages: turns };
}

// ---------------------------------------------------------------------------------------------
// Parameters

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSet<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined;
}

/** Anthropic requires `max_tokens`; OpenAI's is optional, so the most specific default wins. */
export function resolveMaxTokens(request: ChatRequest, model: string, settings: ProviderKeySettings): number {
  return request.max_completion_tokens ?? request.max_tokens ?? settings.max_tokens_default ?? catalogMaxOutputTokens(model) ?? FALLBACK_MAX_TOKENS;
}

function toolSchema(parameters: Record<string, unknown> | undefined): Record<string, unknown> {
  if (parameters === undefined) return { type: 'object', properties: {} };
  return parameters.type === undefined ? { type: 'object', ...parameters } : parameters;
}

function translateTools(tools: ToolDefinition[]): Block[] {
  return tools.map((tool, position) => {
    if (tool.type !== 'function' || !isRecord(tool.function)) {
      throw new KeywayError('unsupported_feature', { detail: `tools[${position}]: Anthropic takes only function tools` }, { param: `tools[${position}].type` });
    }
    const block: Block = { name: tool.function.name };
    if (tool.function.description !== undefined) block.description = tool.function.description;
    block.input_schema = toolSchema(tool.function.parameters);
    if (typeof tool.function.strict === 'boolean') block.strict = tool.function.strict;
    return withCacheControl(block, tool);
  });
}

function translateToolChoice(choice: ChatRequest['tool_choice'], parallelToolCalls: boolean | undefined): Block | undefined {
  let block: Block | undefined;
  if (choice === 'auto') block = { type: 'auto' };
  else if (choice === 'none') block = { type: 'none' };
  else if (choice === 'required') block = { type: 'any' };
  else if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string') block = { type: 'tool', name: choice.function.name };
  else if (choice !== undefined) throw invalidField('tool_choice', "must be 'auto', 'none', 'required' or {type:'function', function:{name}}");
  if (parallelToolCalls === false) {
    block ??= { type: 'auto' };
    // {type:"none"} takes no parallelism flag: no tool call at all is already "not parallel".
    if (block.type !== 'none') block.disable_parallel_tool_use = true;
  }
  return block;
}

/**
 * Anthropic refuses a stop sequence that is empty or only whitespace (400 "each stop sequence must
 * contain non-whitespace"), where OpenAI takes `"\n\n"`: the request was valid for the API the client
 * wrote it for, so the sequence is dropped with a warning rather than sent to fail (QA15 F1: it ended
 * fallback chains on their Anthropic substitute).
 */
function stopSequences(stop: ChatRequest['stop'], warnings: string[]): string[] | undefined {
  if (!isSet(stop)) return undefined;
  const sequences = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(sequences) || !sequences.every((item) => typeof item === 'string')) throw invalidField('stop', 'must be a string or an array of strings');
  const kept = sequences.filter((sequence) => sequence.trim() !== '');
  if (kept.length < sequences.length) {
    const dropped = sequences.filter((sequence) => sequence.trim() === '').map((sequence) => JSON.stringify(sequence));
    warnings.push(`anthropic: ignored stop sequence ${dropped.join(', ')} (Anthropic takes no stop sequence that is empty or only whitespace)`);
  }
  return kept;
}

/** Structured output: json_schema maps natively; json_object has no switch and becomes an instruction. */
function applyResponseFormat(body: Block, system: Block[], format: ResponseFormat | undefined, warnings: string[]): void {
  if (format === undefined || format === null || format.type === 'text') return;
  if (format.type === 'json_schema' && isRecord(format.json_schema?.schema)) {
    body.output_config = { format: { type: 'json_schema', schema: format.json_schema.schema } };
    return;
  }
  if (format.type !== 'json_schema' && format.type !== 'json_object')
    throw invalidField('response_format.type', "must be 'text', 'json_object' or 'json_schema'");
  system.push({ type: 'text', text: JSON_OBJECT_INSTRUCTION });
  warnings.push('anthropic: response_format json_object is emulated with a system instruction; the output is not guaranteed JSON');
}

// ---------------------------------------------------------------------------------------------
// Sampling

/**
 * OpenAI's temperature runs 0–2, Anthropic's 0–1. Values are clamped, not scaled: clients mostly
 * send 0–1 values meant literally (0, 0.2, 0.7), and scaling would silently change every one of them.
 */
function clampTemperature(value: number, warnings: string[]): number {
  const clamped = Math.min(1, Math.max(0, value));
  if (clamped !== value) warnings.push(`anthropic: temperature ${value} clamped to ${clamped} (Anthropic accepts 0–1)`);
  return clamped;
}

function numberField(request: ChatRequest, name: string): number | undefined {
  const value = request[name];
  if (!isSet(value)) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidField(name, 'must be a number');
  return value;
}

interface SamplingInput {
  request: ChatRequest;
  settings: ProviderKeySettings;
  capabilities: ClaudeCapabilities;
  thinking: boolean;
  warnings: string[];
}

function applySampling(body: Block, input: SamplingInput): void {
  const { request, warnings } = input;
  const temperature = numberField(request, 'temperature');
  const topP = numberField(request, 'top_p');
  const topK = numberField(request, 'top_k');
  if (input.capabilities.samplingRemoved) {
    for (const [name, value] of [
      ['temperature', temperature],
      ['top_p', topP],
      ['top_k', topK],
    ] as const) {
      if (value !== undefined) warnings.push(`anthropic: ignored '${name}' (this model takes no sampling parameters)`);
    }
    return;
  }
  if (temperature !== undefined) {
    if (input.thinking && temperature !== 1) warnings.push("anthropic: ignored 'temperature' (extended thinking requires the default)");
    else body.temperature = clampTemperature(temperature, warnings);
  } else if (topP === undefined && !input.thinking && input.settings.temperature_default !== undefined) {
    body.temperature = clampTemperature(input.settings.temperature_default, warnings);
  }
  if (topP !== undefined) {
    // Recent models reject temperature and top_p together; the temperature is the more common knob.
    if (body.temperature !== undefined) warnings.push("anthropic: ignored 'top_p' (Anthropic takes temperature or top_p, not both)");
    else if (input.thinking && topP < 0.95) warnings.push("anthropic: ignored 'top_p' (extended thinking requires top_p of at least 0.95)");
    else body.top_p = topP;
  }
  if (topK !== undefined) {
    if (input.thinking) warnings.push("anthropic: ignored 'top_k' (extended thinking does not take it)");
    else body.top_k = topK;
  }
}

// ---------------------------------------------------------------------------------------------
// Assembly

/** Anthropic-only request fields a client may add to an OpenAI-shaped request; sent as they are. */
const NATIVE_PASSTHROUGH = ['cache_control', 'container', 'context_management', 'mcp_servers', 'inference_geo', 'speed'] as const;

/** Fields the translation reads; any other field a client sends is dropped with a warning. */
const TRANSLATED_FIELDS = new Set<string>([
  'model',
  'messages',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'top_k',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
  'reasoning_effort',
  'thinking',
  'output_config',
  'service_tier',
  'provider',
  'routing',
  ...NATIVE_PASSTHROUGH,
]);

const ANTHROPIC_SERVICE_TIERS = new Set(['auto', 'standard_only']);

function warnAboutIgnoredFields(request: ChatRequest, warnings: string[]): void {
  for (const [name, value] of Object.entries(request)) {
    // `false` (logprobs:false, store:false) asks for nothing, so nothing is lost by dropping it.
    if (TRANSLATED_FIELDS.has(name) || value === undefined || value === null || value === false) continue;
    warnings.push(`anthropic: ignored '${name}'`);
  }
  if (isSet(request.service_tier) && !ANTHROPIC_SERVICE_TIERS.has(String(request.service_tier)))
    warnings.push(`anthropic: ignored 'service_tier' ${String(request.service_tier)}`);
}

function rejectUnsupported(request: ChatRequest): void {
  refuseLegacyFunctions(request, 'anthropic');
  if (isSet(request.n) && request.n > 1) {
    throw new KeywayError('unsupported_feature', { detail: 'Anthropic returns one choice per request; n > 1 is not supported' }, { param: 'n' });
  }
}

function mergeOutputConfig(body: Block, plan: ThinkingPlan, request: ChatRequest): void {
  const merged: Block = { ...(body.output_config as Block | undefined) };
  if (plan.effort !== undefined) merged.effort = plan.effort;
  if (isRecord(request.output_config)) Object.assign(merged, request.output_config);
  if (Object.keys(merged).length > 0) body.output_config = merged;
}

function applyTools(body: Block, request: ChatRequest): Block | undefined {
  if (!Array.isArray(request.tools) || request.tools.length === 0) return undefined;
  body.tools = translateTools(request.tools);
  const toolChoice = translateToolChoice(request.tool_choice, request.parallel_tool_calls);
  if (toolChoice !== undefined) body.tool_choice = toolChoice;
  return toolChoice;
}

function applyPassthrough(body: Block, request: ChatRequest): void {
  for (const name of NATIVE_PASSTHROUGH) if (isSet(request[name])) body[name] = request[name];
  if (isSet(request.service_tier) && ANTHROPIC_SERVICE_TIERS.has(String(request.service_tier))) body.service_tier = request.service_tier;
  if (typeof request.user === 'string' && request.user !== '') body.metadata = { user_id: request.user };
}

/**
 * OpenAI's `image_url.detail` picks an image's resolution; Anthropic's image blocks have no such field
 * (reference §2.2), so it is dropped with a warning, once however many images carry it. `auto` asks
 * for the default and is dropped without one.
 */
function warnAboutImageDetail(messages: ChatMessage[], warnings: string[]): void {
  for (const message of messages) {
    if (!Array.isArray(message.content)) continue;
    for (const part of message.content) {
      const detail = part.type === 'image_url' ? (part.image_url as { detail?: unknown } | undefined)?.detail : undefined;
      if (detail === undefined || detail === null || detail === 'auto') continue;
      warnings.push("anthropic: ignored 'image_url.detail' (Anthropic's image blocks take no detail level)");
      return;
    }
  }
}

/** The Messages body for `model`, with the key's defaults where the client said nothing. */
export function buildAnthropicBody(request: ChatRequest, model: string, settings: ProviderKeySettings, warnings: string[]): Record<string, unknown> {
  rejectUnsupported(request);
  const { system, messages } = translateMessages(request.messages, warnings);
  warnAboutImageDetail(request.messages, warnings);
  const maxTokens = resolveMaxTokens(request, model, settings);
  const body: Block = { model, max_tokens: maxTokens, messages };
  const capabilities = claudeCapabilities(model);
  const toolChoice = applyTools(body, request);
  applyResponseFormat(body, system, request.response_format, warnings);
  const plan = planThinking({ request, model, capabilities, maxTokens, toolChoice, messages, warnings });
  if (plan.thinking !== undefined) body.thinking = plan.thinking;
  mergeOutputConfig(body, plan, request);
  applySampling(body, { request, settings, capabilities, thinking: thinkingIsOn(plan.thinking), warnings });
  const stop = stopSequences(request.stop, warnings);
  if (stop !== undefined && stop.length > 0) body.stop_sequences = stop;
  if (system.length > 0) body.system = system;
  applyPassthrough(body, request);
  warnAboutIgnoredFields(request, warnings);
  if (request.stream === true) body.stream = true;
  return body;
}
