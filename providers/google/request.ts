// OpenAI ChatRequest → Gemini generateContent body (reference §3.2, §7). Pure functions: everything
// the request cannot carry to Gemini is reported in `warnings`, never silently lost.

import { refuseLegacyFunctions } from '../../core/wire/legacy-functions.ts';
import { invalidField, KeywayError } from '../../core/errors.ts';
import type { EmbeddingsRequest, ProviderKeySettings } from '../../core/spec/plugin.ts';
import { parseDataUrl, parseToolArguments, portableMessages } from '../../core/wire/provider-kit.ts';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../core/spec/vocabulary.ts';
import { PROVIDER_NAME } from './errors.ts';
import { decodeToolCallId, geminiCallId, type GeminiPart } from './response.ts';
import { safetySettingsFrom } from './safety.ts';
import { toGeminiParameters, toGeminiSchema } from './schema.ts';
import { thinkingConfigFor } from './thinking.ts';

export interface GeminiContent {
  role: 'user' | 'model';
  parts: GeminiPart[];
}

interface TranslationContext {
  model: string;
  warnings: string[];
  /** OpenAI tool messages carry only an id; Gemini's functionResponse needs the function name. */
  toolNames: Map<string, string>;
  /** Each tool call's place among its assistant turn's calls, by id: tool results go back in that order. */
  callPositions: Map<string, number>;
  /** The call place of each functionResponse part written so far (callPositions, read when it was written). */
  responsePositions: WeakMap<GeminiPart, number>;
}

/** Fields this translation reads; any other field the client set is reported as ignored. */
const HANDLED_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'provider',
  'routing',
  'temperature',
  'top_p',
  'top_k',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'response_format',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning_effort',
  'thinking',
  'cached_content',
]);

/**
 * Gemini 3 rejects a replayed function call without a thought signature. For calls that never came
 * from Gemini (another provider served that turn) Google documents this placeholder.
 */
const PLACEHOLDER_THOUGHT_SIGNATURE = 'skip_thought_signature_validator';

/**
 * Gemini refuses an empty text part and a request without contents, where OpenAI takes an empty user
 * message: this minimal text keeps such a turn (the Anthropic adapter uses the same).
 */
const PLACEHOLDER_USER_TEXT = '.';

export function geminiHeaders(apiKey: string, stream: boolean): Record<string, string> {
  return { 'x-goog-api-key': apiKey, 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' };
}

/** `models/<name>` for the URL; a name that already carries its collection (`tunedModels/…`) is kept. */
export function geminiModelPath(model: string): string {
  const path = model.startsWith('models/') || model.startsWith('tunedModels/') ? model : `models/${model}`;
  return path.split('/').map(encodeURIComponent).join('/');
}

export function buildGeminiRequest(request: ChatRequest, model: string, settings: ProviderKeySettings, warnings: string[]): Record<string, unknown> {
  refuseLegacyFunctions(request, PROVIDER_NAME);
  const context: TranslationContext = { model, warnings, toolNames: new Map(), callPositions: new Map(), responsePositions: new WeakMap() };
  // functionResponse carries a JSON response, no inline image.
  const { contents, systemInstruction } = translateMessages(portableMessages(request.messages, PROVIDER_NAME, warnings), context);
  const body: Record<string, unknown> = { contents };
  if (systemInstruction !== undefined) body.systemInstruction = systemInstruction;
  const generationConfig = buildGenerationConfig(request, settings, context);
  if (Object.keys(generationConfig).length > 0) body.generationConfig = generationConfig;
  const safetySettings = safetySettingsFrom(settings.safety_settings, warnings);
  if (safetySettings !== undefined) body.safetySettings = safetySettings;
  Object.assign(body, buildTools(request, warnings));
  if (typeof request.cached_content === 'string') body.cachedContent = request.cached_content;
  warnIgnoredFields(request, warnings);
  return body;
}

function warnIgnoredFields(request: ChatRequest, warnings: string[]): void {
  for (const [field, value] of Object.entries(request)) {
    if (HANDLED_FIELDS.has(field) || value === undefined || value === null || value === false) continue;
    warnings.push(`google: '${field}' is not supported by Gemini and was ignored`);
  }
  if (request.parallel_tool_calls === false) warnings.push("google: 'parallel_tool_calls: false' is not supported by Gemini and was ignored");
}

// ---------------------------------------------------------------------------------------------
// Messages

function translateMessages(
  messages: ChatMessage[],
  context: TranslationContext,
): { contents: GeminiContent[]; systemInstruction: { parts: GeminiPart[] } | undefined } {
  const systemParts: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  messages.forEach((message, position) => {
    if (message.role === 'system' || message.role === 'developer') systemParts.push(...textParts(message.content));
    else if (message.role === 'user') appendContent(contents, 'user', userParts(message.content, position, context), true);
    else if (message.role === 'assistant') appendContent(contents, 'model', assistantParts(message, position, context));
    else if (message.role === 'tool' || message.role === 'function')
      appendFunctionResponse(contents, functionResponsePart(message, position, context), message, context);
  });
  fillEmptyTurns(contents);
  return { contents, systemInstruction: systemParts.length > 0 ? { parts: systemParts } : undefined };
}

/**
 * Adjacent same-role turns are merged, so parallel tool results land in one user content in call
 * order. A turn with nothing Gemini can take is dropped, except a user turn (`keepEmpty`): an empty
 * user message still asks for an answer, so it opens a turn that a later user message fills or
 * fillEmptyTurns gives the placeholder.
 */
function appendContent(contents: GeminiContent[], role: GeminiContent['role'], parts: GeminiPart[], keepEmpty = false): void {
  const last = contents[contents.length - 1];
  if (last !== undefined && last.role === role) last.parts.push(...parts);
  else if (parts.length > 0 || keepEmpty) contents.push({ role, parts });
}

/**
 * Gemini pairs the results of same-name calls with the calls by position, not by id (reference §7.2:
 * "in the same order as the calls"), while OpenAI clients send tool messages in any order: each result
 * moves ahead of the results of later calls of its turn, so Paris's weather never answers London's call.
 */
function appendFunctionResponse(contents: GeminiContent[], part: GeminiPart, message: ChatMessage, context: TranslationContext): void {
  appendContent(contents, 'user', [part]);
  const place = message.tool_call_id === undefined ? undefined : context.callPositions.get(message.tool_call_id);
  if (place === undefined) return;
  context.responsePositions.set(part, place);
  const parts = (contents[contents.length - 1] as GeminiContent).parts;
  for (let index = parts.length - 1; index > 0; index--) {
    const before = context.responsePositions.get(parts[index - 1] as GeminiPart);
    if (before === undefined || before <= place) break;
    parts[index] = parts[index - 1] as GeminiPart;
    parts[index - 1] = part;
  }
}

/** Turns left empty, or a conversation with none (system messages only), get the placeholder text. */
function fillEmptyTurns(contents: GeminiContent[]): void {
  if (contents.length === 0) contents.push({ role: 'user', parts: [] });
  for (const content of contents) if (content.parts.length === 0) content.parts.push({ text: PLACEHOLDER_USER_TEXT });
}

function textParts(content: ChatMessage['content']): GeminiPart[] {
  if (typeof content === 'string') return content.length > 0 ? [{ text: content }] : [];
  if (!Array.isArray(content)) return [];
  return content.filter((part) => part.type === 'text' && typeof part.text === 'string' && part.text.length > 0).map((part) => ({ text: part.text as string }));
}

/**
 * A tool result's text: its text parts a blank line apart, as Keyway joins texts wherever the target
 * takes one string (Cohere's system message, Perplexity's merged turns); run together, "pong-a" and
 * "pong-b" would read as one word.
 */
function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  return textParts(content)
    .map((part) => part.text)
    .join('\n\n');
}

function userParts(content: ChatMessage['content'], position: number, context: TranslationContext): GeminiPart[] {
  if (!Array.isArray(content)) return textParts(content);
  const parts: GeminiPart[] = [];
  content.forEach((part, partPosition) => {
    const translated = userPart(part, `messages[${position}].content[${partPosition}]`, context);
    if (translated !== undefined) parts.push(translated);
  });
  return parts;
}

function userPart(part: ContentPart, param: string, context: TranslationContext): GeminiPart | undefined {
  if (part.type === 'text') return typeof part.text === 'string' && part.text.length > 0 ? { text: part.text } : undefined;
  if (part.type === 'image_url') {
    const image = part.image_url as { url?: unknown; detail?: unknown } | undefined;
    warnImageDetail(image?.detail, context.warnings);
    return imagePart(image?.url, `${param}.image_url.url`);
  }
  if (part.type === 'input_audio') {
    const audio = part.input_audio as { data?: string; format?: string } | undefined;
    if (typeof audio?.data === 'string') return { inlineData: { mimeType: `audio/${audio.format ?? 'wav'}`, data: audio.data } };
  }
  if (part.type === 'file') {
    const fileData = (part.file as { file_data?: unknown } | undefined)?.file_data;
    const parsed = typeof fileData === 'string' ? parseDataUrl(fileData) : undefined;
    if (parsed !== undefined) return { inlineData: { mimeType: parsed.mediaType, data: parsed.data } };
    // A Files API id (or a URL) means nothing to Gemini: dropped, the file the prompt is about would be
    // missing from an answer that still looks whole. Refused, as Anthropic and Cohere refuse it (QA18).
    throw new KeywayError('unsupported_feature', { detail: `${param}: Gemini takes a file part only as a data URL (file_data), not a file_id` }, { param });
  }
  context.warnings.push(`google: the ${part.type} content part at ${param} cannot be sent to Gemini and was dropped`);
  return undefined;
}

/**
 * OpenAI's `detail` picks an image's resolution; Gemini's `inlineData` and `fileData` parts have no
 * such field (reference §3.2). `auto` asks for the default, so only another level is worth a
 * warning, said once however many images carry it.
 */
function warnImageDetail(detail: unknown, warnings: string[]): void {
  if (detail === undefined || detail === null || detail === 'auto') return;
  const warning = "google: ignored 'image_url.detail' (Gemini's image parts take no detail level)";
  if (!warnings.includes(warning)) warnings.push(warning);
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
  pdf: 'application/pdf',
  mp3: 'audio/mp3',
  wav: 'audio/wav',
  mp4: 'video/mp4',
};

/**
 * A data URL is inlined. An http(s) or gs:// URL is handed to Gemini as `fileData` rather than
 * fetched by the gateway: no outbound fetch of client-chosen URLs (SSRF), no buffering of large
 * files, and Gemini fetches public URLs itself. The MIME type is guessed from the extension.
 */
function imagePart(url: unknown, param: string): GeminiPart {
  if (typeof url !== 'string') throw invalidField(param, 'an image part needs a url');
  const inline = parseDataUrl(url);
  if (inline !== undefined) return { inlineData: { mimeType: inline.mediaType, data: inline.data } };
  if (/^(https?|gs):\/\//i.test(url)) return { fileData: { mimeType: guessMimeType(url), fileUri: url } };
  throw invalidField(param, 'Gemini takes a base64 data: URL or an http(s) URL');
}

function guessMimeType(url: string): string {
  const path = url.split(/[?#]/)[0] ?? '';
  const extension = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return (extension !== undefined ? MIME_BY_EXTENSION[extension] : undefined) ?? 'image/jpeg';
}

function assistantParts(message: ChatMessage, position: number, context: TranslationContext): GeminiPart[] {
  const parts = textParts(message.content);
  const needsSignature = requiresThoughtSignatures(context.model);
  (message.tool_calls ?? []).forEach((toolCall, callPosition) => {
    const part = functionCallPart(toolCall, `messages[${position}].tool_calls[${callPosition}]`, context);
    context.callPositions.set(toolCall.id, callPosition);
    if (callPosition === 0 && needsSignature && part.thoughtSignature === undefined) part.thoughtSignature = PLACEHOLDER_THOUGHT_SIGNATURE;
    parts.push(part);
  });
  return parts;
}

function functionCallPart(toolCall: ToolCall, param: string, context: TranslationContext): GeminiPart {
  // OpenAI's custom tool calls carry free text (`custom.input`), which no functionCall holds.
  if (typeof toolCall.function !== 'object' || toolCall.function === null) {
    throw new KeywayError('unsupported_feature', { detail: `${param}: Gemini takes only function tool calls` }, { param: `${param}.type` });
  }
  const name = toolCall.function.name;
  if (typeof name !== 'string' || name === '') throw invalidField(`${param}.function.name`, 'a tool call needs a function name');
  context.toolNames.set(toolCall.id, name);
  const args = parseToolArguments(PROVIDER_NAME, toolCall.function.arguments, `${param}.function.arguments`);
  const id = geminiCallId(toolCall.id);
  const part: GeminiPart = { functionCall: id === undefined ? { name, args } : { id, name, args } };
  const signature = extraContentSignature(toolCall) ?? decodeToolCallId(toolCall.id ?? '').thoughtSignature;
  if (signature !== undefined) part.thoughtSignature = signature;
  return part;
}

/** Google's own OpenAI-compatible endpoint returns signatures in `extra_content.google`; honour it. */
function extraContentSignature(toolCall: ToolCall): string | undefined {
  const extra = (toolCall as ToolCall & { extra_content?: { google?: { thought_signature?: unknown } } }).extra_content;
  const signature = extra?.google?.thought_signature;
  return typeof signature === 'string' && signature !== '' ? signature : undefined;
}

function requiresThoughtSignatures(model: string): boolean {
  const major = Number(/^(?:models\/)?gemini-(\d+)/.exec(model)?.[1] ?? 0);
  return major >= 3;
}

/** A tool result: a JSON object is the response itself, anything else becomes `{output: <text>}`. */
function functionResponsePart(message: ChatMessage, position: number, context: TranslationContext): GeminiPart {
  const name = (message.tool_call_id !== undefined ? context.toolNames.get(message.tool_call_id) : undefined) ?? message.name;
  if (name === undefined || name === '') {
    throw invalidField(`messages[${position}].tool_call_id`, 'no earlier assistant tool call has this id, and Gemini needs the function name');
  }
  const text = contentText(message.content);
  const id = geminiCallId(message.tool_call_id);
  return { functionResponse: { ...(id === undefined ? {} : { id }), name, response: jsonObjectOrUndefined(text) ?? { output: text } } };
}

function jsonObjectOrUndefined(text: string): Record<string, unknown> | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Generation config

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function buildGenerationConfig(request: ChatRequest, settings: ProviderKeySettings, context: TranslationContext): Record<string, unknown> {
  const config: Record<string, unknown> = {
    temperature: numberOrUndefined(request.temperature) ?? numberOrUndefined(settings.temperature_default),
    topP: numberOrUndefined(request.top_p),
    topK: numberOrUndefined(request.top_k),
    maxOutputTokens:
      numberOrUndefined(request.max_completion_tokens) ?? numberOrUndefined(request.max_tokens) ?? numberOrUndefined(settings.max_tokens_default),
    stopSequences: stopSequences(request.stop),
    candidateCount: numberOrUndefined(request.n),
    seed: numberOrUndefined(request.seed),
    presencePenalty: numberOrUndefined(request.presence_penalty),
    frequencyPenalty: numberOrUndefined(request.frequency_penalty),
    thinkingConfig: thinkingConfigFor(request, context.model, context.warnings),
    ...responseFormatConfig(request.response_format),
  };
  for (const key of Object.keys(config)) if (config[key] === undefined) delete config[key];
  return config;
}

function stopSequences(stop: ChatRequest['stop']): string[] | undefined {
  if (typeof stop === 'string') return stop.length > 0 ? [stop] : undefined;
  return Array.isArray(stop) && stop.length > 0 ? stop : undefined;
}

/** json_schema uses the same cleaned `responseSchema` as tools, which every Gemini model accepts. */
function responseFormatConfig(format: ChatRequest['response_format']): Record<string, unknown> {
  if (format?.type === 'json_object') return { responseMimeType: 'application/json' };
  if (format?.type !== 'json_schema') return {};
  const schema = format.json_schema?.schema;
  return schema === undefined ? { responseMimeType: 'application/json' } : { responseMimeType: 'application/json', responseSchema: toGeminiSchema(schema) };
}

// ---------------------------------------------------------------------------------------------
// Tools

function buildTools(request: ChatRequest, warnings: string[]): Record<string, unknown> {
  const tools = request.tools ?? [];
  const functionDeclarations = tools.flatMap((tool) => {
    if (tool.type !== 'function' || tool.function === undefined) {
      warnings.push(`google: a tool of type '${String(tool.type)}' cannot be sent to Gemini and was dropped`);
      return [];
    }
    const declaration: Record<string, unknown> = { name: tool.function.name };
    if (tool.function.description !== undefined) declaration.description = tool.function.description;
    const parameters = toGeminiParameters(tool.function.parameters);
    if (parameters !== undefined) declaration.parameters = parameters;
    return [declaration];
  });
  if (functionDeclarations.length === 0) return {};
  const result: Record<string, unknown> = { tools: [{ functionDeclarations }] };
  const functionCallingConfig = functionCallingConfigFrom(request.tool_choice);
  if (functionCallingConfig !== undefined) result.toolConfig = { functionCallingConfig };
  return result;
}

function functionCallingConfigFrom(choice: ChatRequest['tool_choice']): Record<string, unknown> | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto') return { mode: 'AUTO' };
  if (choice === 'none') return { mode: 'NONE' };
  if (choice === 'required') return { mode: 'ANY' };
  if (typeof choice === 'object' && typeof choice.function?.name === 'string') return { mode: 'ANY', allowedFunctionNames: [choice.function.name] };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Embeddings

/** One `batchEmbedContents` request per input. Gemini embeds text only. */
export function buildGeminiEmbeddingsRequest(request: EmbeddingsRequest, model: string): { body: Record<string, unknown>; inputs: string[] } {
  const inputs = typeof request.input === 'string' ? [request.input] : request.input;
  if (!Array.isArray(inputs) || !inputs.every((input): input is string => typeof input === 'string')) {
    throw invalidField('input', 'Gemini embeds text only; send a string or an array of strings, not token ids');
  }
  const modelName = model.startsWith('models/') ? model : `models/${model}`;
  const requests = inputs.map((text) => {
    const entry: Record<string, unknown> = { model: modelName, content: { parts: [{ text }] } };
    if (typeof request.dimensions === 'number') entry.outputDimensionality = request.dimensions;
    if (typeof request.task_type === 'string') entry.taskType = request.task_type;
    return entry;
  });
  return { body: { requests }, inputs };
}
