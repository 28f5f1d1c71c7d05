// Request validation of the Anthropic Messages simulator. Messages copy the real API's wording
// ("path: problem", pydantic style) so gateway tests see what production would answer.
import type { JsonObject } from './native-helpers.ts';
import { digest, isBase64, isObject, isString } from './native-helpers.ts';

export class AnthropicRejection extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

function invalid(message: string): never {
  throw new AnthropicRejection(400, 'invalid_request_error', message);
}

export interface AnthropicModel {
  id: string;
  displayName: string;
  createdAt: string;
  maxInputTokens: number;
  maxTokens: number;
  thinking: boolean;
}

/** A content block with the path the real API would name in an error. */
export interface LocatedBlock {
  block: JsonObject;
  path: string;
}

/** Consecutive same-role messages, combined as the real API does server-side. */
export interface AnthropicTurn {
  role: 'user' | 'assistant';
  messageIndex: number;
  blocks: LocatedBlock[];
}

export interface ValidatedAnthropicRequest {
  model: AnthropicModel;
  maxTokens: number | undefined;
  system: LocatedBlock[];
  turns: AnthropicTurn[];
  tools: JsonObject[];
  toolChoice: JsonObject | undefined;
  thinkingBudget: number | undefined;
  stopSequences: string[];
  jsonMode: boolean;
  stream: boolean;
  /** Top-level `cache_control` caches the whole prompt (automatic caching). */
  cacheEverything: boolean;
}

const messageFields = [
  'model',
  'messages',
  'max_tokens',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'stream',
  'metadata',
  'service_tier',
  'thinking',
  'tools',
  'tool_choice',
  'output_config',
  'cache_control',
  'container',
  'mcp_servers',
  'context_management',
];
const countFields = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'output_config', 'cache_control', 'mcp_servers', 'context_management'];
const userBlockTypes = ['text', 'image', 'document', 'search_result', 'tool_result'];
const assistantBlockTypes = ['text', 'tool_use', 'thinking', 'redacted_thinking', 'server_tool_use', 'web_search_tool_result'];
const blockFields: Record<string, string[]> = {
  text: ['type', 'text', 'cache_control', 'citations'],
  image: ['type', 'source', 'cache_control'],
  document: ['type', 'source', 'cache_control', 'citations', 'context', 'title'],
  search_result: ['type', 'source', 'title', 'content', 'citations', 'cache_control'],
  tool_result: ['type', 'tool_use_id', 'content', 'is_error', 'cache_control'],
  tool_use: ['type', 'id', 'name', 'input', 'cache_control'],
  thinking: ['type', 'thinking', 'signature'],
  redacted_thinking: ['type', 'data'],
};
const imageMediaTypes = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
const base64Signatures: [string, string][] = [
  ['/9j/', 'image/jpeg'],
  ['iVBORw0KGgo', 'image/png'],
  ['R0lGOD', 'image/gif'],
  ['UklGR', 'image/webp'],
];
const serverToolPrefixes = ['web_search_', 'web_fetch_', 'bash_', 'text_editor_', 'computer_', 'code_execution_', 'memory_'];

/** Signatures the simulator issues for thinking blocks; replayed blocks must carry the same one. */
export function thinkingSignature(thinking: string): string {
  return `sig_${digest(`keyway-simulator:${thinking}`).slice(0, 48)}`;
}

export function validateAnthropicRequest(body: unknown, models: AnthropicModel[], endpoint: 'messages' | 'count_tokens'): ValidatedAnthropicRequest {
  if (!isObject(body)) invalid('Input should be a valid dictionary');
  const allowed = endpoint === 'messages' ? messageFields : countFields;
  for (const key of Object.keys(body)) if (!allowed.includes(key)) invalid(`${key}: Extra inputs are not permitted`);
  const model = requireModel(body.model, models);
  const maxTokens = endpoint === 'messages' ? requireMaxTokens(body.max_tokens, model) : undefined;
  if (body.messages === undefined) invalid('messages: Field required');
  if (!Array.isArray(body.messages)) invalid('messages: Input should be a valid list');
  if (body.messages.length === 0) invalid('messages: at least one message is required');
  checkRange('temperature', body.temperature, 0, 1);
  checkRange('top_p', body.top_p, 0, 1);
  if (body.top_k !== undefined && !(Number.isInteger(body.top_k) && (body.top_k as number) >= 0))
    invalid('top_k: Input should be a valid integer greater than or equal to 0');
  if (body.stream !== undefined && typeof body.stream !== 'boolean') invalid('stream: Input should be a valid boolean');
  if (body.metadata !== undefined) {
    if (!isObject(body.metadata)) invalid('metadata: Input should be a valid dictionary');
    for (const key of Object.keys(body.metadata)) if (key !== 'user_id') invalid(`metadata.${key}: Extra inputs are not permitted`);
  }
  if (body.service_tier !== undefined && body.service_tier !== 'auto' && body.service_tier !== 'standard_only')
    invalid("service_tier: Input should be 'auto' or 'standard_only'");
  const stopSequences = validateStopSequences(body.stop_sequences);
  const thinkingBudget = validateThinking(body, model, maxTokens);
  const system = validateSystem(body.system);
  const turns = combineTurns(body.messages);
  const tools = validateTools(body.tools);
  const toolChoice = validateToolChoice(body.tool_choice, tools, thinkingBudget !== undefined);
  const jsonMode = validateOutputConfig(body.output_config);
  if (body.cache_control !== undefined) validateCacheControl(body.cache_control, 'cache_control');
  countCacheBreakpoints(system, turns, tools);
  checkSearchResultCitations(turns);
  checkToolPairing(turns);
  checkThinkingReplay(turns, thinkingBudget !== undefined);
  return {
    model,
    maxTokens,
    system,
    turns,
    tools,
    toolChoice,
    thinkingBudget,
    stopSequences,
    jsonMode,
    stream: body.stream === true,
    cacheEverything: body.cache_control !== undefined,
  };
}

function requireModel(value: unknown, models: AnthropicModel[]): AnthropicModel {
  if (value === undefined) invalid('model: Field required');
  if (!isString(value)) invalid('model: Input should be a valid string');
  const found = findAnthropicModel(value, models);
  if (!found) throw new AnthropicRejection(404, 'not_found_error', `model: ${value}`);
  return found;
}

/**
 * Ids match exactly or by alias, as the real API resolves aliases: the id without its date suffix, and
 * that name with `-latest` or `-0` (`claude-3-7-sonnet-latest`, `claude-sonnet-4-0`).
 */
export function findAnthropicModel(name: string, models: AnthropicModel[]): AnthropicModel | undefined {
  return models.find((model) => {
    const alias = model.id.replace(/-\d{8}$/, '');
    return model.id === name || name === alias || name === `${alias}-latest` || name === `${alias}-0`;
  });
}

function requireMaxTokens(value: unknown, model: AnthropicModel): number {
  if (value === undefined) invalid('max_tokens: Field required');
  if (!Number.isInteger(value)) invalid('max_tokens: Input should be a valid integer');
  const maxTokens = value as number;
  if (maxTokens < 1) invalid('max_tokens: Input should be greater than or equal to 1');
  if (maxTokens > model.maxTokens)
    invalid(`max_tokens: ${maxTokens} > ${model.maxTokens}, which is the maximum allowed number of output tokens for ${model.id}`);
  return maxTokens;
}

function checkRange(name: string, value: unknown, minimum: number, maximum: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number') invalid(`${name}: Input should be a valid number`);
  if (value < minimum) invalid(`${name}: Input should be greater than or equal to ${minimum}`);
  if (value > maximum) invalid(`${name}: Input should be less than or equal to ${maximum}`);
}

function validateStopSequences(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('stop_sequences: Input should be a valid list');
  value.forEach((sequence, index) => {
    if (!isString(sequence)) invalid(`stop_sequences.${index}: Input should be a valid string`);
    if (sequence.trim().length === 0) invalid('stop_sequences: each stop sequence must contain non-whitespace');
  });
  return value as string[];
}

function validateThinking(body: JsonObject, model: AnthropicModel, maxTokens: number | undefined): number | undefined {
  const thinking = body.thinking;
  if (thinking === undefined) return undefined;
  if (!isObject(thinking)) invalid('thinking: Input should be a valid dictionary');
  if (thinking.type === 'disabled') return undefined;
  if (thinking.type !== 'enabled' && thinking.type !== 'adaptive')
    invalid(`thinking: Input tag '${String(thinking.type)}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'`);
  if (!model.thinking) invalid(`'${model.id}' does not support thinking.`);
  let budget = 1024;
  if (thinking.type === 'enabled') {
    if (thinking.budget_tokens === undefined) invalid('thinking.enabled.budget_tokens: Field required');
    if (!Number.isInteger(thinking.budget_tokens)) invalid('thinking.enabled.budget_tokens: Input should be a valid integer');
    budget = thinking.budget_tokens as number;
    if (budget < 1024) invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (maxTokens !== undefined && maxTokens <= budget)
      invalid(
        '`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size',
      );
  }
  if (body.temperature !== undefined && body.temperature !== 1) {
    invalid(
      '`temperature` may only be set to 1 when thinking is enabled or in interleaved thinking mode. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking',
    );
  }
  return budget;
}

function validateSystem(value: unknown): LocatedBlock[] {
  if (value === undefined) return [];
  if (isString(value)) return value.length === 0 ? [] : [{ block: { type: 'text', text: value }, path: 'system' }];
  if (!Array.isArray(value)) invalid('system: Input should be a valid string or a valid list');
  return value.map((block, index) => {
    const path = `system.${index}`;
    if (!isObject(block) || block.type !== 'text') invalid(`${path}: Input should be a text block`);
    validateBlock(block, path, ['text']);
    return { block, path };
  });
}

function combineTurns(messages: unknown[]): AnthropicTurn[] {
  const turns: AnthropicTurn[] = [];
  messages.forEach((message, index) => {
    const path = `messages.${index}`;
    if (!isObject(message)) invalid(`${path}: Input should be a valid dictionary`);
    for (const key of Object.keys(message)) if (key !== 'role' && key !== 'content') invalid(`${path}.${key}: Extra inputs are not permitted`);
    if (message.role === 'system')
      invalid('Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    if (message.role !== 'user' && message.role !== 'assistant') invalid(`${path}.role: Input should be 'user' or 'assistant'`);
    const role = message.role;
    if (message.content === undefined) invalid(`${path}.content: Field required`);
    const isFinal = index === messages.length - 1;
    const blocks = normalizeContent(message.content, path, role, isFinal);
    const previous = turns[turns.length - 1];
    if (previous && previous.role === role) previous.blocks.push(...blocks);
    else turns.push({ role, messageIndex: index, blocks });
  });
  return turns;
}

function normalizeContent(content: unknown, path: string, role: 'user' | 'assistant', isFinal: boolean): LocatedBlock[] {
  const emptyAllowed = role === 'assistant' && isFinal;
  const emptyMessage = `${path}: all messages must have non-empty content except for the optional final assistant message`;
  if (isString(content)) {
    if (content.length === 0 && !emptyAllowed) invalid(emptyMessage);
    if (role === 'assistant' && isFinal && /\s$/.test(content)) invalid('messages: final assistant content cannot end with trailing whitespace');
    return content.length === 0 ? [] : [{ block: { type: 'text', text: content }, path: `${path}.content` }];
  }
  if (!Array.isArray(content)) invalid(`${path}.content: Input should be a valid string or a valid list`);
  if (content.length === 0 && !emptyAllowed) invalid(emptyMessage);
  return content.map((block, index) => {
    const blockPath = `${path}.content.${index}`;
    validateBlock(block, blockPath, role === 'user' ? userBlockTypes : assistantBlockTypes);
    return { block: block as JsonObject, path: blockPath };
  });
}

function validateBlock(block: unknown, path: string, allowedTypes: string[]): void {
  if (!isObject(block)) invalid(`${path}: Input should be a valid dictionary`);
  const type = block.type;
  if (!isString(type) || !allowedTypes.includes(type)) {
    invalid(
      `${path}: Input tag '${String(type)}' found using 'type' does not match any of the expected tags: ${allowedTypes.map((name) => `'${name}'`).join(', ')}`,
    );
  }
  const fields = blockFields[type];
  if (fields) for (const key of Object.keys(block)) if (!fields.includes(key)) invalid(`${path}.${type}.${key}: Extra inputs are not permitted`);
  if (block.cache_control !== undefined) validateCacheControl(block.cache_control, `${path}.${type}.cache_control`);
  switch (type) {
    case 'text':
      if (!isString(block.text)) invalid(`${path}.text.text: Input should be a valid string`);
      if (block.text.length === 0) invalid('messages: text content blocks must be non-empty');
      return;
    case 'image':
      return validateImageSource(block.source, `${path}.image.source`);
    case 'document':
      return validateDocument(block, `${path}.document`);
    case 'search_result':
      return validateSearchResult(block, `${path}.search_result`);
    case 'tool_use':
      if (!isString(block.id) || !/^[a-zA-Z0-9_-]+$/.test(block.id)) invalid(`${path}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
      if (!isString(block.name) || block.name.length === 0) invalid(`${path}.tool_use.name: Field required`);
      if (!isObject(block.input)) invalid(`${path}.tool_use.input: Input should be a valid dictionary`);
      return;
    case 'tool_result':
      if (!isString(block.tool_use_id)) invalid(`${path}.tool_result.tool_use_id: Field required`);
      if (block.is_error !== undefined && typeof block.is_error !== 'boolean') invalid(`${path}.tool_result.is_error: Input should be a valid boolean`);
      if (block.content === undefined || isString(block.content)) return;
      if (!Array.isArray(block.content)) invalid(`${path}.tool_result.content: Input should be a valid string or a valid list`);
      block.content.forEach((inner, index) => validateBlock(inner, `${path}.tool_result.content.${index}`, ['text', 'image', 'document', 'search_result']));
      return;
    case 'thinking':
      if (!isString(block.thinking)) invalid(`${path}.thinking.thinking: Field required`);
      if (!isString(block.signature)) invalid(`${path}.thinking.signature: Field required`);
      return;
    case 'redacted_thinking':
      if (!isString(block.data)) invalid(`${path}.redacted_thinking.data: Field required`);
      return;
  }
}

/** The fields of each document source (DocumentBlockParam's Base64PDFSource, PlainTextSource, ContentBlockSource, URLPDFSource, FileDocumentSource). */
const documentSourceFields: Record<string, string[]> = {
  base64: ['type', 'media_type', 'data'],
  text: ['type', 'media_type', 'data'],
  content: ['type', 'content'],
  url: ['type', 'url'],
  file: ['type', 'file_id'],
};

/** DocumentBlockParam: a known source with its fields; `title` and `context` strings; citations `{enabled?}`. */
function validateDocument(block: JsonObject, path: string): void {
  const source = block.source;
  if (!isObject(source)) invalid(`${path}.source: Field required`);
  const fields = documentSourceFields[String(source.type)];
  if (fields === undefined)
    invalid(
      `${path}.source: Input tag '${String(source.type)}' found using 'type' does not match any of the expected tags: 'base64', 'content', 'file', 'text', 'url'`,
    );
  const sourcePath = `${path}.source.${String(source.type)}`;
  for (const key of Object.keys(source)) if (!fields.includes(key)) invalid(`${sourcePath}.${key}: Extra inputs are not permitted`);
  if (source.type === 'base64' && source.media_type !== 'application/pdf') invalid(`${sourcePath}.media_type: Input should be 'application/pdf'`);
  if (source.type === 'text' && source.media_type !== 'text/plain') invalid(`${sourcePath}.media_type: Input should be 'text/plain'`);
  if ((source.type === 'base64' || source.type === 'text') && !isString(source.data)) invalid(`${sourcePath}.data: Field required`);
  if (source.type === 'base64' && !isBase64(source.data as string)) invalid(`${sourcePath}.data: Input should be a valid base64 string`);
  if (source.type === 'url' && (!isString(source.url) || !/^https?:\/\//.test(source.url))) invalid(`${sourcePath}.url: Input should be a valid URL`);
  if (source.type === 'file' && !isString(source.file_id)) invalid(`${sourcePath}.file_id: Field required`);
  if (source.type === 'content') {
    if (isString(source.content)) return validateDocumentFields(block, path);
    if (!Array.isArray(source.content)) invalid(`${sourcePath}.content: Input should be a valid string or a valid list`);
    source.content.forEach((inner, index) => validateBlock(inner, `${sourcePath}.content.${index}`, ['text', 'image']));
  }
  validateDocumentFields(block, path);
}

function validateDocumentFields(block: JsonObject, path: string): void {
  for (const field of ['title', 'context'] as const)
    if (block[field] !== undefined && block[field] !== null && !isString(block[field])) invalid(`${path}.${field}: Input should be a valid string`);
  if (block.citations === undefined || block.citations === null) return;
  if (!isObject(block.citations)) invalid(`${path}.citations: Input should be a valid dictionary`);
  if (block.citations.enabled !== undefined && typeof block.citations.enabled !== 'boolean')
    invalid(`${path}.citations.enabled: Input should be a valid boolean`);
}

/** SearchResultBlockParam: `source`, `title` and at least one text block required; `citations` is `{enabled?: boolean}`. */
function validateSearchResult(block: JsonObject, path: string): void {
  for (const field of ['source', 'title'] as const) {
    if (block[field] === undefined) invalid(`${path}.${field}: Field required`);
    if (!isString(block[field])) invalid(`${path}.${field}: Input should be a valid string`);
  }
  if (block.content === undefined) invalid(`${path}.content: Field required`);
  if (!Array.isArray(block.content)) invalid(`${path}.content: Input should be a valid list`);
  if (block.content.length === 0) invalid(`${path}.content: List should have at least 1 item after validation, not 0`);
  block.content.forEach((inner, index) => validateBlock(inner, `${path}.content.${index}`, ['text']));
  if (block.citations === undefined) return;
  if (!isObject(block.citations)) invalid(`${path}.citations: Input should be a valid dictionary`);
  for (const key of Object.keys(block.citations)) if (key !== 'enabled') invalid(`${path}.citations.${key}: Extra inputs are not permitted`);
  if (block.citations.enabled !== undefined && typeof block.citations.enabled !== 'boolean')
    invalid(`${path}.citations.enabled: Input should be a valid boolean`);
}

/**
 * Every block of `type` (`search_result`, `document`) in the conversation, top level or inside a tool
 * result, in the order they appear: the order a citation's `search_result_index` or `document_index` counts.
 */
export function blocksOfType(turns: AnthropicTurn[], type: string): JsonObject[] {
  const found: JsonObject[] = [];
  for (const { block } of turns.flatMap((turn) => turn.blocks)) {
    if (block.type === type) found.push(block);
    if (block.type === 'tool_result' && Array.isArray(block.content))
      for (const inner of block.content) if (isObject(inner) && inner.type === type) found.push(inner);
  }
  return found;
}

/** Anthropic's search results take citations all or none: one request may not mix the two settings. */
function checkSearchResultCitations(turns: AnthropicTurn[]): void {
  const settings = new Set(blocksOfType(turns, 'search_result').map((result) => isObject(result.citations) && result.citations.enabled === true));
  if (settings.size > 1) invalid('Citations must be either enabled or disabled for all search results in a request; mixing the two settings is not supported.');
}

function validateImageSource(source: unknown, path: string): void {
  if (!isObject(source)) invalid(`${path}: Field required`);
  if (source.type === 'url') {
    if (!isString(source.url) || !/^https?:\/\//.test(source.url)) invalid(`${path}.url.url: Input should be a valid URL`);
    return;
  }
  if (source.type === 'file') {
    if (!isString(source.file_id)) invalid(`${path}.file.file_id: Field required`);
    return;
  }
  if (source.type !== 'base64')
    invalid(`${path}: Input tag '${String(source.type)}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'`);
  if (!isString(source.media_type) || !imageMediaTypes.includes(source.media_type)) {
    invalid(`${path}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
  }
  if (!isString(source.data) || !isBase64(source.data)) invalid(`${path}.base64.data: Input should be a valid base64 string`);
  const actual = base64Signatures.find(([prefix]) => (source.data as string).startsWith(prefix))?.[1];
  if (actual && actual !== source.media_type)
    invalid(`${path}.base64.data: The image was specified using the ${source.media_type} media type, but the image appears to be a ${actual} image`);
}

function validateCacheControl(value: unknown, path: string): void {
  if (!isObject(value) || value.type !== 'ephemeral') invalid(`${path}.type: Input should be 'ephemeral'`);
  if (value.ttl !== undefined && value.ttl !== '5m' && value.ttl !== '1h') invalid(`${path}.ttl: Input should be '5m' or '1h'`);
}

function countCacheBreakpoints(system: LocatedBlock[], turns: AnthropicTurn[], tools: JsonObject[]): void {
  const blocks = [...system, ...turns.flatMap((turn) => turn.blocks)].map((located) => located.block);
  const count = [...tools, ...blocks].filter((item) => item.cache_control !== undefined).length;
  if (count > 4) invalid(`A maximum of 4 blocks with cache_control may be provided. Found ${count}.`);
}

function validateTools(value: unknown): JsonObject[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('tools: Input should be a valid list');
  const names = new Set<string>();
  return value.map((tool, index) => {
    const path = `tools.${index}`;
    if (!isObject(tool)) invalid(`${path}: Input should be a valid dictionary`);
    const type = tool.type ?? 'custom';
    if (isString(type) && serverToolPrefixes.some((prefix) => type.startsWith(prefix))) return tool;
    if (type !== 'custom')
      invalid(
        `${path}: Input tag '${String(type)}' found using 'type' does not match any of the expected tags: 'custom', 'bash_20250124', 'code_execution_20250825', 'text_editor_20250728', 'web_search_20250305', 'web_fetch_20250910'`,
      );
    const fields = ['type', 'name', 'description', 'input_schema', 'cache_control', 'strict', 'input_examples'];
    for (const key of Object.keys(tool)) if (!fields.includes(key)) invalid(`${path}.custom.${key}: Extra inputs are not permitted`);
    if (!isString(tool.name) || !/^[a-zA-Z0-9_-]{1,128}$/.test(tool.name)) invalid(`${path}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
    if (tool.description !== undefined && !isString(tool.description)) invalid(`${path}.custom.description: Input should be a valid string`);
    if (tool.input_schema === undefined) invalid(`${path}.custom.input_schema: Field required`);
    if (!isObject(tool.input_schema)) invalid(`${path}.custom.input_schema: Input should be a valid dictionary`);
    if (tool.input_schema.type !== 'object') invalid(`${path}.custom.input_schema.type: Input should be 'object'`);
    if (tool.cache_control !== undefined) validateCacheControl(tool.cache_control, `${path}.custom.cache_control`);
    if (names.has(tool.name)) invalid('tools: Tool names must be unique.');
    names.add(tool.name);
    return tool;
  });
}

function validateToolChoice(value: unknown, tools: JsonObject[], thinking: boolean): JsonObject | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) invalid('tool_choice: Input should be a valid dictionary');
  const type = value.type;
  if (type !== 'auto' && type !== 'any' && type !== 'tool' && type !== 'none') {
    invalid(`tool_choice: Input tag '${String(type)}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'`);
  }
  const fields = type === 'none' ? ['type'] : type === 'tool' ? ['type', 'name', 'disable_parallel_tool_use'] : ['type', 'disable_parallel_tool_use'];
  for (const key of Object.keys(value)) if (!fields.includes(key)) invalid(`tool_choice.${type}.${key}: Extra inputs are not permitted`);
  if (value.disable_parallel_tool_use !== undefined && typeof value.disable_parallel_tool_use !== 'boolean')
    invalid(`tool_choice.${type}.disable_parallel_tool_use: Input should be a valid boolean`);
  if (type !== 'none' && tools.length === 0) invalid('tool_choice may only be specified while providing tools.');
  if (type === 'tool') {
    if (!isString(value.name)) invalid('tool_choice.tool.name: Field required');
    if (!tools.some((tool) => tool.name === value.name)) invalid(`tool_choice.tool.name: Tool '${value.name}' not found in tools`);
  }
  if (thinking && (type === 'any' || type === 'tool')) invalid('Thinking may not be enabled when tool_choice forces tool use.');
  return value;
}

function validateOutputConfig(value: unknown): boolean {
  if (value === undefined) return false;
  if (!isObject(value)) invalid('output_config: Input should be a valid dictionary');
  for (const key of Object.keys(value)) if (key !== 'format' && key !== 'effort') invalid(`output_config.${key}: Extra inputs are not permitted`);
  if (value.format === undefined || value.format === null) return false;
  if (!isObject(value.format) || value.format.type !== 'json_schema') invalid("output_config.format.type: Input should be 'json_schema'");
  if (!isObject(value.format.schema)) invalid('output_config.format.schema: Field required');
  return true;
}

function checkToolPairing(turns: AnthropicTurn[]): void {
  const seenIds = new Set<string>();
  turns.forEach((turn, turnIndex) => {
    const previous = turns[turnIndex - 1];
    if (turn.role === 'assistant') {
      for (const { block, path } of turn.blocks) {
        if (block.type !== 'tool_use') continue;
        const id = block.id as string;
        if (seenIds.has(id)) invalid(`${path.replace(/\.content\.\d+$/, '')}: \`tool_use\` ids must be unique`);
        seenIds.add(id);
      }
      return;
    }
    const offered =
      previous?.role === 'assistant' ? previous.blocks.filter(({ block }) => block.type === 'tool_use').map(({ block }) => block.id as string) : [];
    const answered = new Set<string>();
    let leadingResults = 0;
    let sawOther = false;
    for (const { block, path } of turn.blocks) {
      if (block.type !== 'tool_result') {
        sawOther = true;
        continue;
      }
      const id = block.tool_use_id as string;
      if (!offered.includes(id)) {
        invalid(
          `${path}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
        );
      }
      answered.add(id);
      if (!sawOther) leadingResults++;
    }
    if (offered.length === 0) return;
    const missing = offered.filter((id) => !answered.has(id));
    if (missing.length > 0) {
      invalid(
        `messages.${previous?.messageIndex}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
      );
    }
    if (leadingResults < offered.length) {
      invalid(
        `messages.${turn.messageIndex}: Did not find ${offered.length} \`tool_result\` block(s) at the beginning of this message. Messages following \`tool_use\` blocks must begin with a matching number of \`tool_result\` blocks.`,
      );
    }
  });
}

function checkThinkingReplay(turns: AnthropicTurn[], thinking: boolean): void {
  const last = turns[turns.length - 1];
  if (!thinking) {
    if (last?.role === 'assistant' && last.blocks.some(({ block }) => block.type === 'thinking' || block.type === 'redacted_thinking')) {
      invalid(
        `messages.${last.messageIndex}.content.0: When thinking is disabled, an \`assistant\` message in the final position cannot contain \`thinking\`. To use thinking blocks, enable \`thinking\` in your request.`,
      );
    }
    return;
  }
  for (const turn of turns) {
    for (const { block, path } of turn.blocks) {
      if (block.type === 'thinking' && block.signature !== thinkingSignature(block.thinking as string))
        invalid(`${path}: Invalid \`signature\` in \`thinking\` block`);
    }
  }
  // In a tool loop the assistant turn that called the tools must replay its thinking first.
  const inToolLoop = last?.role === 'user' && last.blocks.some(({ block }) => block.type === 'tool_result');
  const callingTurn = turns[turns.length - 2];
  const first = callingTurn?.blocks[0];
  if (!inToolLoop || !callingTurn || !first) return;
  if (first.block.type === 'thinking' || first.block.type === 'redacted_thinking') return;
  invalid(
    `${first.path}.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(first.block.type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking`,
  );
}
