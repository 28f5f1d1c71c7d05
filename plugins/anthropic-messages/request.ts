// Anthropic Messages request → OpenAI-shaped ChatRequest, so `/v1/messages` can reach any provider.
// Pure: the caller (the HTTP route) decides where the request goes and passes that in, because what
// survives the trip (thinking blocks, top_k, cache_control) depends on whether the target is Anthropic.

import { invalidField, KeywayError } from '../../core/errors.ts';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../core/spec/vocabulary.ts';
import { checkSamplingRanges, checkModelName, isFiniteNumber, type SamplingRanges } from '../../core/wire/request-validation.ts';
import { checkDocument, documentText } from '../../core/wire/documents.ts';
import { checkSearchResult, searchResultText } from '../../core/wire/search-results.ts';
import { asksForCitations } from './citations.ts';
import { meetsStrictRules } from './strict-schema.ts';
import { translateToolChoice, translateTools } from './tools.ts';
import { type ForwardedBlock, forwardedBlock, forwardedCitations } from './forwarded.ts';

type Block = Record<string, unknown>;

export interface MessagesTranslationOptions {
  /** The provider that will serve the request; `anthropic` keeps Anthropic-only details intact. */
  targetProvider?: string;
}

export interface MessagesTranslation {
  request: ChatRequest;
  /** What could not be carried to the target, for `X-Keyway-Warnings`. */
  warnings: string[];
  /**
   * Set when only Anthropic's own Messages API can serve the request (a server tool): the refusal for
   * a route without it. The request then goes to Anthropic as sent, never through this translation.
   */
  nativeOnly: KeywayError | undefined;
  /**
   * Whether the request asks for citations (a search result or document with them enabled). Only
   * Anthropic's own Messages API returns them, so it serves the request when Anthropic does; this
   * translation serves any other provider, whose answer is text without citations.
   */
  citations: boolean;
  /** What Anthropic's own API reads and the translation does not carry, when the request goes there as sent. */
  forwarded: ForwardedBlock[];
}

interface Translation {
  native: boolean;
  /** The provider that will serve, when known. */
  target: string | undefined;
  warnings: string[];
  nativeOnly: KeywayError | undefined;
  forwarded: ForwardedBlock[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A block the translation leaves out, which a request sent as written still carries to Anthropic. */
function leftOut(translation: Translation, block: Block, path: string): void {
  translation.forwarded.push(forwardedBlock(block, path));
}

/** A text block's citations (quoted text, titles): the translation keeps its text only. */
function keepCitations(translation: Translation, block: Block, path: string): void {
  const citations = forwardedCitations(block, path);
  if (citations !== undefined) translation.forwarded.push(citations);
}

/** Adds a warning once: a long history with many thinking blocks should not repeat the same line. */
function warnOnce(translation: Translation, warning: string): void {
  if (!translation.warnings.includes(warning)) translation.warnings.push(warning);
}

// ---------------------------------------------------------------------------------------------
// Validation

function requireField(body: Record<string, unknown>, name: string): unknown {
  const value = body[name];
  if (value === undefined || value === null) throw new KeywayError('missing_field', { param: name });
  return value;
}

/**
 * Keyway holds no message threads (Anthropic's `thread` field, beta `message-threads-*`). Dropping the
 * field and answering would make the SDK send only the next turn's messages to a conversation nobody
 * kept, so the request is refused, first, with the rejection the SDK recovers from: its tool runner
 * then sends the whole history without `thread` (ThreadState.recoversFrom, `continue_unthreaded`).
 */
function refuseThread(body: Record<string, unknown>): void {
  if (body.thread === undefined || body.thread === null) return;
  throw new KeywayError(
    'unsupported_feature',
    {
      detail:
        "Keyway does not hold message threads: send the whole conversation in 'messages', without 'thread'. The Anthropic SDK's tool runner does so by itself; client.beta.messages.thread() cannot be used through Keyway.",
    },
    { param: 'thread', extra: { details: { error_code: 'thread_unsupported_request', unsupported: ['thread'] } } },
  );
}

function validateBody(body: unknown): Record<string, unknown> {
  if (!isRecord(body)) throw new KeywayError('invalid_request', { detail: 'The request body must be a JSON object.' });
  refuseThread(body);
  // Left out, the model is the `provider` key's default_model, filled by the runner as on chat
  // (LifecycleRunner.applyDefaultModel, which refuses a request with neither: missing_field).
  const model = body.model;
  if (model !== undefined && model !== null) {
    if (typeof model !== 'string' || model.trim() === '') throw invalidField('model', 'must be a non-empty string');
    checkModelName(model);
  }
  const maxTokens = requireField(body, 'max_tokens');
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) throw invalidField('max_tokens', 'must be a positive integer');
  const messages = requireField(body, 'messages');
  if (!Array.isArray(messages) || messages.length === 0) throw invalidField('messages', 'must be a non-empty array');
  return body;
}

// ---------------------------------------------------------------------------------------------
// Content blocks

function keepCacheControl(part: ContentPart, block: Block, translation: Translation): ContentPart {
  if (translation.native && block.cache_control !== undefined) part.cache_control = block.cache_control;
  return part;
}

function imagePart(block: Block, path: string, translation: Translation): ContentPart | undefined {
  const source = isRecord(block.source) ? block.source : {};
  if (source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return keepCacheControl({ type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } }, block, translation);
  }
  if (source.type === 'url' && typeof source.url === 'string')
    return keepCacheControl({ type: 'image_url', image_url: { url: source.url } }, block, translation);
  warnOnce(translation, `dropped an image at ${path}: only base64 and URL image sources can be translated`);
  return undefined;
}

/**
 * A document as sent, whoever serves: Anthropic takes it whole (title, context, citations flag,
 * cache_control); any other provider's translation turns it into text, images and a PDF file part, or
 * refuses what only Anthropic reads (core/wire/documents.ts), so a fallback to Anthropic still gets it whole.
 */
function documentPart(block: Block, path: string): ContentPart {
  return { ...checkDocument(block, path) };
}

const DOCUMENT_AS_TEXT = 'sent document blocks in tool results as text (title, context, content), without citations: only Anthropic takes them';
const SEARCH_RESULT_AS_TEXT = 'sent search_result blocks as text (title, source, content): only Anthropic takes them';

/** A search result for a target without them: its title, source and text, which the model still reads, without citations. */
function searchResultAsText(block: Block, path: string, translation: Translation): string {
  const text = searchResultText(checkSearchResult(block, path));
  warnOnce(translation, SEARCH_RESULT_AS_TEXT);
  return text;
}

/** A search result as sent for Anthropic, citations flag and cache_control included; as text for any other target. */
function searchResultPart(block: Block, path: string, translation: Translation): ContentPart {
  if (translation.native) return { ...checkSearchResult(block, path) };
  return { type: 'text', text: searchResultAsText(block, path, translation) };
}

/** One user-side block → one OpenAI content part (tool results are handled by the caller). */
function userPart(block: Block, path: string, translation: Translation): ContentPart | undefined {
  switch (block.type) {
    case 'text':
      if (typeof block.text !== 'string') throw invalidField(`${path}.text`, 'must be a string');
      keepCitations(translation, block, path);
      return keepCacheControl({ type: 'text', text: block.text }, block, translation);
    case 'image':
      return imagePart(block, path, translation);
    case 'document':
      return documentPart(block, path);
    case 'search_result':
      return searchResultPart(block, path, translation);
    default:
      leftOut(translation, block, path);
      warnOnce(translation, `dropped '${String(block.type)}' content blocks: they have no equivalent in the target's format`);
      return undefined;
  }
}

/**
 * A tool_result's content blocks as one text, each a paragraph of its own: a text block; a search
 * result (its title, source and text); a text document (its title, context and text). A document
 * holding a PDF or images is refused; anything else is dropped, warned. Text blocks used to run
 * together ("pong-a" and "pong-b" read "pong-apong-b"; QA17).
 */
function toolResultBlocksText(content: unknown[], path: string, translation: Translation): string {
  const paragraphs: string[] = [];
  content.forEach((item, position) => {
    if (isRecord(item) && item.type === 'text' && typeof item.text === 'string') {
      if (item.text !== '') paragraphs.push(item.text);
    } else if (isRecord(item) && item.type === 'search_result') {
      paragraphs.push(searchResultAsText(item, `${path}.content[${position}]`, translation));
    } else if (isRecord(item) && item.type === 'document') {
      const itemPath = `${path}.content[${position}]`;
      paragraphs.push(documentText(checkDocument(item, itemPath), itemPath, translation.target ?? 'this provider'));
      warnOnce(translation, DOCUMENT_AS_TEXT);
    } else {
      if (isRecord(item)) leftOut(translation, item, `${path}.content[${position}]`);
      warnOnce(translation, `dropped non-text tool_result content at ${path}: tool messages carry text only`);
    }
  });
  return paragraphs.join('\n\n');
}

/** A tool_result's content as the tool message's text, for targets whose tool messages carry text only (OpenAI's). */
function toolResultText(block: Block, path: string, translation: Translation): string {
  const content = block.content;
  let text = '';
  if (typeof content === 'string') text = content;
  else if (Array.isArray(content)) text = toolResultBlocksText(content as unknown[], path, translation);
  // OpenAI has no error flag on tool messages, so the model learns of the failure from the text.
  if (block.is_error === true) return `Error: ${text}`;
  return text;
}

/**
 * A tool_result's content as parts shaped like a user message's, for Anthropic, whose tool results
 * take text, images (a screenshot a tool read) and search results: each block keeps its cache_control.
 */
function toolResultParts(block: Block, path: string, translation: Translation): string | ContentPart[] {
  const content = block.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: ContentPart[] = [];
  (content as unknown[]).forEach((item, position) => {
    const itemPath = `${path}.content[${position}]`;
    if (!isRecord(item) || typeof item.type !== 'string') throw invalidField(`${itemPath}.type`, 'every content block needs a type');
    const part = userPart(item, itemPath, translation);
    if (part !== undefined) parts.push(part);
  });
  return parts;
}

function toolMessage(block: Block, path: string, translation: Translation): ChatMessage {
  if (typeof block.tool_use_id !== 'string') throw invalidField(`${path}.tool_use_id`, 'must be a string');
  if (!translation.native) return { role: 'tool', tool_call_id: block.tool_use_id, content: toolResultText(block, path, translation) };
  const message: ChatMessage = { role: 'tool', tool_call_id: block.tool_use_id, content: toolResultParts(block, path, translation) };
  if (block.is_error === true) message.is_error = true;
  if (block.cache_control !== undefined) message.cache_control = block.cache_control;
  return message;
}

// ---------------------------------------------------------------------------------------------
// Turns

function blocksOf(content: unknown, path: string): Block[] | string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalidField(path, 'must be a string or an array of content blocks');
  content.forEach((block, position) => {
    if (!isRecord(block) || typeof block.type !== 'string') throw invalidField(`${path}[${position}].type`, 'every content block needs a type');
  });
  return content as Block[];
}

/** A user turn: its tool results become `tool` messages first, then the rest one `user` message. */
function userMessages(content: Block[] | string, path: string, translation: Translation): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  const messages: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  content.forEach((block, position) => {
    const blockPath = `${path}[${position}]`;
    if (block.type === 'tool_result') messages.push(toolMessage(block, blockPath, translation));
    else {
      const part = userPart(block, blockPath, translation);
      if (part !== undefined) parts.push(part);
    }
  });
  if (parts.length > 0) messages.push({ role: 'user', content: parts });
  return messages;
}

function toolCallFrom(block: Block, path: string): ToolCall {
  if (typeof block.id !== 'string' || typeof block.name !== 'string') throw invalidField(path, 'tool_use blocks need an id and a name');
  return { id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } };
}

/**
 * Gemini takes no thought text back: the thought signatures it needs on a replayed function call ride
 * in the tool_use id (providers/google/response.ts), so dropping the thinking blocks loses nothing.
 */
function replaysWithoutThinking(target: string | undefined): boolean {
  return target === 'google';
}

function assistantMessage(content: Block[] | string, path: string, translation: Translation): ChatMessage {
  if (typeof content === 'string') return { role: 'assistant', content };
  let text = '';
  const toolCalls: ToolCall[] = [];
  const thinkingBlocks: Block[] = [];
  content.forEach((block, position) => {
    const blockPath = `${path}[${position}]`;
    if (block.type === 'text' && typeof block.text === 'string') {
      text += block.text;
      keepCitations(translation, block, blockPath);
    } else if (block.type === 'tool_use') toolCalls.push(toolCallFrom(block, blockPath));
    else if ((block.type === 'thinking' || block.type === 'redacted_thinking') && translation.native) thinkingBlocks.push(block);
    else {
      leftOut(translation, block, blockPath);
      if (block.type === 'thinking' || block.type === 'redacted_thinking') {
        if (!replaysWithoutThinking(translation.target)) warnOnce(translation, 'dropped thinking blocks: only Anthropic can replay them');
      } else warnOnce(translation, `dropped '${String(block.type)}' content blocks: they have no equivalent in the target's format`);
    }
  });
  const message: ChatMessage = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (thinkingBlocks.length > 0) message.thinking_blocks = thinkingBlocks;
  return message;
}

function systemContent(system: unknown, translation: Translation): ChatMessage['content'] {
  if (typeof system === 'string') return system;
  if (!Array.isArray(system)) throw invalidField('system', 'must be a string or an array of text blocks');
  return (system as unknown[]).map((block, position) => {
    if (!isRecord(block) || block.type !== 'text' || typeof block.text !== 'string') throw invalidField(`system[${position}]`, 'must be a text block');
    keepCitations(translation, block, `system[${position}]`);
    return keepCacheControl({ type: 'text', text: block.text }, block, translation);
  });
}

function translateTurns(body: Record<string, unknown>, translation: Translation): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) messages.push({ role: 'system', content: systemContent(body.system, translation) });
  (body.messages as unknown[]).forEach((turn, position) => {
    const path = `messages[${position}]`;
    if (!isRecord(turn)) throw invalidField(path, 'must be an object');
    const content = blocksOf(turn.content, `${path}.content`);
    if (turn.role === 'user') messages.push(...userMessages(content, `${path}.content`, translation));
    else if (turn.role === 'assistant') messages.push(assistantMessage(content, `${path}.content`, translation));
    else if (turn.role === 'system') messages.push({ role: 'system', content: systemContent(content, translation) });
    else throw invalidField(`${path}.role`, "must be 'user' or 'assistant'");
  });
  return messages;
}

// ---------------------------------------------------------------------------------------------
// Parameters (tools: tools.ts)

/** Anthropic-only fields that reach an Anthropic target untouched and have no meaning elsewhere. */
const NATIVE_ONLY_FIELDS = ['top_k', 'thinking', 'service_tier', 'cache_control', 'container', 'context_management', 'mcp_servers', 'inference_geo', 'speed'];
const HANDLED_FIELDS = new Set([
  'model',
  'max_tokens',
  'messages',
  'system',
  'stream',
  'temperature',
  'top_p',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'output_config',
  // Keyway's own, read by the dialect (parseMessages): never sent to a provider, and not ignored.
  'provider',
  'routing',
  ...NATIVE_ONLY_FIELDS,
]);

function translateOutputConfig(config: unknown, request: ChatRequest, translation: Translation): void {
  if (!isRecord(config)) return;
  if (translation.native) {
    request.output_config = config;
    return;
  }
  const format = config.format;
  if (isRecord(format) && format.type === 'json_schema' && isRecord(format.schema)) {
    // Anthropic's structured outputs guarantee the schema: OpenAI's json_schema does so only when strict.
    const strict = meetsStrictRules(format.schema) ? { strict: true } : {};
    request.response_format = { type: 'json_schema', json_schema: { name: 'response', schema: format.schema, ...strict } };
  }
  if (config.effort !== undefined && config.effort !== null) warnOnce(translation, "ignored 'output_config.effort': only Anthropic takes it");
}

/**
 * Fields that change what the request does, not only how (Anthropic's MCP connector, a code execution
 * container): like Anthropic's server tools, they make the request Anthropic's alone, so no fallback
 * serves it without them.
 */
const ANTHROPIC_ONLY_FEATURES = new Set(['mcp_servers', 'container']);

function anthropicOnlyField(name: string): KeywayError {
  return new KeywayError(
    'unsupported_feature',
    { detail: `'${name}' exists only on Anthropic's API: it is available when Anthropic serves the request, and this route has no Anthropic candidate.` },
    { param: name },
  );
}

/**
 * Providers whose chat translation takes Anthropic's `thinking` object as ChatRequest.thinking:
 * Gemini maps it to thinkingConfig, Cohere to its own `thinking` (QA15 F3). For any other it is
 * dropped with a warning, not mapped to reasoning_effort: OpenAI's chat API refuses a `thinking`
 * field, non-reasoning models refuse reasoning_effort, and dropping it only costs the reasoning.
 */
const THINKING_TARGETS: ReadonlySet<string> = new Set(['google', 'cohere']);

function takesThinking(target: string | undefined): boolean {
  return target !== undefined && THINKING_TARGETS.has(target);
}

function translateExtras(body: Record<string, unknown>, request: ChatRequest, translation: Translation): void {
  for (const name of NATIVE_ONLY_FIELDS) {
    if (body[name] === undefined || body[name] === null) continue;
    if (ANTHROPIC_ONLY_FEATURES.has(name)) {
      // Kept for the team policies (hosted-tools reads mcp_servers); the request goes to Anthropic as sent.
      request[name] = body[name];
      translation.nativeOnly ??= anthropicOnlyField(name);
      continue;
    }
    if (translation.native) request[name] = body[name];
    else if (name === 'thinking' && takesThinking(translation.target)) request.thinking = body.thinking;
    else if (name === 'thinking') warnOnce(translation, "ignored 'thinking': only Anthropic, Gemini and Cohere take it");
    else warnOnce(translation, `ignored '${name}': only Anthropic takes it`);
  }
  for (const name of Object.keys(body)) if (!HANDLED_FIELDS.has(name)) warnOnce(translation, `ignored '${name}'`);
}

/** The Messages API takes temperature and top_p from 0 to 1 (Anthropic answers 400 beyond). */
const ANTHROPIC_SAMPLING_RANGES: SamplingRanges = { temperature: { minimum: 0, maximum: 1 }, top_p: { minimum: 0, maximum: 1 } };

function translateParameters(body: Record<string, unknown>, request: ChatRequest, translation: Translation): void {
  // Anthropic's own ranges, refused before routing whoever serves (docs/api.md, "Sampling ranges").
  checkSamplingRanges(body, ANTHROPIC_SAMPLING_RANGES);
  for (const name of ['temperature', 'top_p'] as const) {
    const value = body[name];
    if (isFiniteNumber(value)) request[name] = value;
  }
  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    if (!Array.isArray(body.stop_sequences) || !body.stop_sequences.every((item) => typeof item === 'string'))
      throw invalidField('stop_sequences', 'must be an array of strings');
    if (body.stop_sequences.length > 0) request.stop = body.stop_sequences as string[];
  }
  const metadata = body.metadata;
  if (isRecord(metadata) && typeof metadata.user_id === 'string') request.user = metadata.user_id;
  if (body.stream === true) {
    request.stream = true;
    // The Anthropic stream ends with usage, so the upstream must always be asked for it.
    request.stream_options = { include_usage: true };
  }
}

/**
 * Translates and validates an Anthropic Messages request body. `max_tokens` becomes
 * `max_completion_tokens`, whose meaning (reasoning included) matches Anthropic's.
 */
export function chatRequestFromMessages(body: unknown, options: MessagesTranslationOptions = {}): MessagesTranslation {
  const valid = validateBody(body);
  const translation: Translation = {
    native: options.targetProvider === 'anthropic',
    target: options.targetProvider,
    warnings: [],
    nativeOnly: undefined,
    forwarded: [],
  };
  const request: ChatRequest = {
    model: typeof valid.model === 'string' ? valid.model : '',
    messages: translateTurns(valid, translation),
    max_completion_tokens: valid.max_tokens as number,
  };
  const tools = translateTools(valid.tools, translation);
  if (tools !== undefined && tools.length > 0) {
    request.tools = tools;
    translateToolChoice(valid.tool_choice, request);
  }
  translateParameters(valid, request, translation);
  translateOutputConfig(valid.output_config, request, translation);
  translateExtras(valid, request, translation);
  return {
    request,
    warnings: translation.warnings,
    nativeOnly: translation.nativeOnly,
    citations: asksForCitations(valid.messages),
    forwarded: translation.forwarded,
  };
}
