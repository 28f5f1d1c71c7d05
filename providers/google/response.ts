import type { EmbeddingsResult } from '../../core/spec/plugin.ts';
import { upstreamFailure } from '../../core/wire/provider-kit.ts';
import { emptyUsage, unreportedUsage, type ChatMessage, type ChatResult, type ResultChoice, type ToolCall } from '../../core/spec/vocabulary.ts';
import { PROVIDER_NAME } from './errors.ts';
import { blockedPromptFinishReason, mapGeminiFinishReason } from './finish-reason.ts';
import { usageFromGemini, type GeminiUsageMetadata } from './usage.ts';

export interface GeminiFunctionCall {
  id?: string;
  name?: string;
  args?: Record<string, unknown>;
}

export interface GeminiPart {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  functionCall?: GeminiFunctionCall;
  functionResponse?: { id?: string; name: string; response: Record<string, unknown> };
  [extra: string]: unknown;
}

export interface GeminiCandidate {
  content?: { role?: string; parts?: GeminiPart[] };
  finishReason?: string;
  /** Gemini's explanation of an unusual finish (the broken call of a MALFORMED_FUNCTION_CALL). */
  finishMessage?: string;
  index?: number;
  [extra: string]: unknown;
}

export interface GeminiResponse {
  candidates?: GeminiCandidate[];
  promptFeedback?: { blockReason?: string; [extra: string]: unknown };
  usageMetadata?: GeminiUsageMetadata;
  modelVersion?: string;
  responseId?: string;
  error?: unknown;
  [extra: string]: unknown;
}

// Thought signatures ride inside the OpenAI tool-call id: `<id>__thought__<signature as base64url>`.
// Every OpenAI client sends tool-call ids back (they link tool results), while most drop unknown
// fields, and Gemini 3 rejects a replayed function call without its signature. base64url keeps the id
// within [A-Za-z0-9_-].
const SIGNATURE_SEPARATOR = '__thought__';

export function encodeToolCallId(baseId: string, thoughtSignature: string | undefined): string {
  if (thoughtSignature === undefined || thoughtSignature === '') return baseId;
  const urlSafe = thoughtSignature.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return `${baseId}${SIGNATURE_SEPARATOR}${urlSafe}`;
}

export function decodeToolCallId(id: string): { baseId: string; thoughtSignature: string | undefined } {
  const position = id.indexOf(SIGNATURE_SEPARATOR);
  if (position === -1) return { baseId: id, thoughtSignature: undefined };
  const urlSafe = id.slice(position + SIGNATURE_SEPARATOR.length);
  if (urlSafe === '') return { baseId: id.slice(0, position), thoughtSignature: undefined };
  const standard = urlSafe.replace(/-/g, '+').replace(/_/g, '/');
  return { baseId: id.slice(0, position), thoughtSignature: standard.padEnd(Math.ceil(standard.length / 4) * 4, '=') };
}

/**
 * Gemini often sends function calls without ids. The factory names them `call_<random>_<n>`: unique
 * within a response (which is all OpenAI needs) and, thanks to the random part, across turns too,
 * so clients that key tool calls by id never see a repeat.
 */
export function createToolCallIdFactory(): (geminiId: string | undefined) => string {
  const prefix = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
  let counter = 0;
  return (geminiId) => (geminiId !== undefined && geminiId !== '' ? geminiId : `call_${prefix}_${counter++}`);
}

const SYNTHESIZED_ID = /^call_[0-9a-f]{8}_\d+$/;

/**
 * The id Gemini links a replayed call and its result by (`functionCall.id`, `functionResponse.id`):
 * the tool-call id without its thought signature, unless Keyway made it up (createToolCallIdFactory),
 * which Gemini never saw. Ids Gemini sent, and another provider's in a moved conversation, go back.
 */
export function geminiCallId(toolCallId: string | undefined): string | undefined {
  if (toolCallId === undefined || toolCallId === '') return undefined;
  const { baseId } = decodeToolCallId(toolCallId);
  return baseId === '' || SYNTHESIZED_ID.test(baseId) ? undefined : baseId;
}

export function toolCallFromPart(part: GeminiPart & { functionCall: GeminiFunctionCall }, nextId: (geminiId: string | undefined) => string): ToolCall {
  return {
    id: encodeToolCallId(nextId(part.functionCall.id), part.thoughtSignature),
    type: 'function',
    function: { name: part.functionCall.name ?? '', arguments: JSON.stringify(part.functionCall.args ?? {}) },
  };
}

export function hasFunctionCall(part: GeminiPart): part is GeminiPart & { functionCall: GeminiFunctionCall } {
  return part.functionCall !== null && typeof part.functionCall === 'object';
}

/** Reads a generateContent body. A prompt Gemini blocked is a content-filter result, not a failure. */
export function parseGeminiChatResponse(body: GeminiResponse, requestedModel: string): ChatResult {
  const candidates = Array.isArray(body.candidates) ? body.candidates : [];
  const blockReason = body.promptFeedback?.blockReason;
  if (candidates.length === 0 && blockReason === undefined) {
    throw upstreamFailure({ provider: PROVIDER_NAME, status: 200, reason: 'server_error', message: 'the response has no candidates' });
  }
  const nextId = createToolCallIdFactory();
  const choices =
    candidates.length > 0 ? candidates.map((candidate, position) => choiceFromCandidate(candidate, position, nextId)) : [blockedChoice(blockReason as string)];
  const result: ChatResult = {
    id: body.responseId ?? `gemini-${crypto.randomUUID()}`,
    model: body.modelVersion ?? requestedModel,
    created: Math.floor(Date.now() / 1000),
    choices,
    usage: usageFromGemini(body.usageMetadata) ?? unreportedUsage(),
  };
  if (candidates.length === 0) result.extraFields = { prompt_feedback: body.promptFeedback };
  return result;
}

function choiceFromCandidate(candidate: GeminiCandidate, position: number, nextId: (geminiId: string | undefined) => string): ResultChoice {
  const texts: string[] = [];
  const thoughts: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const part of candidate.content?.parts ?? []) {
    if (hasFunctionCall(part)) toolCalls.push(toolCallFromPart(part, nextId));
    else if (typeof part.text === 'string') (part.thought === true ? thoughts : texts).push(part.text);
  }
  const message: ChatMessage = { role: 'assistant', content: texts.length > 0 ? texts.join('') : toolCalls.length > 0 ? null : '' };
  if (thoughts.length > 0) message.reasoning_content = thoughts.join('');
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return { index: candidate.index ?? position, message, finishReason: mapGeminiFinishReason(candidate.finishReason, toolCalls.length > 0) };
}

function blockedChoice(blockReason: string): ResultChoice {
  return { index: 0, message: { role: 'assistant', content: null }, finishReason: blockedPromptFinishReason(blockReason) };
}

// ---------------------------------------------------------------------------------------------
// Embeddings

interface GeminiEmbeddingsResponse {
  embeddings?: Array<{ values?: number[] }>;
  usageMetadata?: { promptTokenCount?: number };
}

/**
 * `batchEmbedContents` answers vectors in request order. It reports no token usage, so usage is
 * estimated at four characters a token (the same rule the simulators use) unless Gemini sends some.
 */
export function parseGeminiEmbeddings(
  body: GeminiEmbeddingsResponse,
  inputs: readonly string[],
  model: string,
  encodingFormat: 'float' | 'base64' | undefined,
): EmbeddingsResult {
  const embeddings = Array.isArray(body.embeddings) ? body.embeddings : [];
  const data = embeddings.map((embedding, index) => {
    const values = Array.isArray(embedding.values) ? embedding.values : [];
    return { index, embedding: encodingFormat === 'base64' ? floatsToBase64(values) : values };
  });
  const reported = body.usageMetadata?.promptTokenCount;
  const inputTokens = typeof reported === 'number' ? reported : inputs.reduce((sum, input) => sum + Math.ceil(input.length / 4), 0);
  return { model, data, usage: { ...emptyUsage(), inputTokens, totalTokens: inputTokens } };
}

/** OpenAI's base64 embedding format: little-endian float32. */
function floatsToBase64(values: readonly number[]): string {
  const buffer = new ArrayBuffer(values.length * 4);
  const view = new DataView(buffer);
  values.forEach((value, index) => view.setFloat32(index * 4, value, true));
  return Buffer.from(buffer).toString('base64');
}
