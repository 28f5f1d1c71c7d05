// What a provider itself answered: token usage and finish reason read straight out of the native
// body or stream, with the mapping written out from the provider reference (§7.5, §7.6) rather
// than imported from providers/*, so the suite checks the adapters instead of reusing them.
//
// The method: after a call through the gateway, the request the simulator recorded (the adapter's
// translation, byte for byte) is sent again straight to the simulator. The simulators are
// deterministic in everything but ids, so that second answer is the one the gateway translated,
// and the usage in it is what the client and the usage row must report. One exception: simulator
// memory (prompt caches) can make the replay a cache hit where the first call was a miss, so the
// requests measured this way stay short and carry no cache_control or prompt_cache_key.

import type { RecordedRequest, SimulatorHandle } from '../simulators/common.ts';

export type JsonObject = Record<string, unknown>;

export interface TokenCounts {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface NativeAnswer {
  usage: TokenCounts;
  /** In OpenAI's vocabulary: stop, length, tool_calls, content_filter. */
  finishReason: string;
}

/** Reads a native body (one payload) or a native stream (every data payload, in order). */
export type NativeReader = (payloads: JsonObject[]) => NativeAnswer;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function counts(prompt: number, completion: number, total = prompt + completion): TokenCounts {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total };
}

function mapped(table: Record<string, string>, raw: unknown): string {
  const value = typeof raw === 'string' ? table[raw] : undefined;
  if (value === undefined) throw new Error(`the native answer has an unexpected finish reason ${JSON.stringify(raw)}`);
  return value;
}

/** OpenAI and Perplexity: `usage` on the body or on the final chunk(s); the last one wins. */
export const readOpenAIAnswer: NativeReader = (payloads) => {
  let usage: JsonObject | undefined;
  let finishReason: unknown;
  for (const payload of payloads) {
    if (isObject(payload.usage)) usage = payload.usage;
    const choices = Array.isArray(payload.choices) ? payload.choices : [];
    for (const choice of choices) if (isObject(choice) && typeof choice.finish_reason === 'string') finishReason = choice.finish_reason;
  }
  if (usage === undefined) throw new Error('the native answer carries no usage');
  return { usage: counts(count(usage.prompt_tokens), count(usage.completion_tokens), count(usage.total_tokens)), finishReason: String(finishReason) };
};

const ANTHROPIC_FINISH: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

/**
 * Anthropic: the prompt is input plus cache writes plus cache reads. In a stream, message_start
 * holds the input side and message_delta the cumulative output (§7.6: prefer the larger input).
 */
export const readAnthropicAnswer: NativeReader = (payloads) => {
  let input = 0;
  let output = 0;
  let stopReason: unknown;
  const take = (usage: unknown): void => {
    if (!isObject(usage)) return;
    input = Math.max(input, count(usage.input_tokens) + count(usage.cache_creation_input_tokens) + count(usage.cache_read_input_tokens));
    if (typeof usage.output_tokens === 'number') output = usage.output_tokens;
  };
  for (const payload of payloads) {
    if (payload.type === 'message') {
      take(payload.usage);
      stopReason = payload.stop_reason;
    } else if (payload.type === 'message_start' && isObject(payload.message)) {
      take(payload.message.usage);
    } else if (payload.type === 'message_delta') {
      take(payload.usage);
      if (isObject(payload.delta)) stopReason = payload.delta.stop_reason;
    }
  }
  return { usage: counts(input, output), finishReason: mapped(ANTHROPIC_FINISH, stopReason) };
};

const GEMINI_FINISH: Record<string, string> = { STOP: 'stop', MAX_TOKENS: 'length', SAFETY: 'content_filter', RECITATION: 'content_filter', OTHER: 'stop' };

/**
 * Gemini: the last usageMetadata is the total; thoughts are output. Gemini has no tool finish
 * reason: STOP with a functionCall part anywhere in the answer is a tool call.
 */
export const readGeminiAnswer: NativeReader = (payloads) => {
  let metadata: JsonObject | undefined;
  let finishReason: unknown;
  let calledFunction = false;
  for (const payload of payloads) {
    if (isObject(payload.usageMetadata)) metadata = payload.usageMetadata;
    for (const candidate of Array.isArray(payload.candidates) ? payload.candidates : []) {
      if (!isObject(candidate)) continue;
      if (candidate.finishReason !== undefined) finishReason = candidate.finishReason;
      const parts = isObject(candidate.content) && Array.isArray(candidate.content.parts) ? candidate.content.parts : [];
      if (parts.some((part) => isObject(part) && isObject(part.functionCall))) calledFunction = true;
    }
  }
  if (metadata === undefined) throw new Error('the native answer carries no usageMetadata');
  const prompt = count(metadata.promptTokenCount) + count(metadata.toolUsePromptTokenCount);
  const completion = count(metadata.candidatesTokenCount) + count(metadata.thoughtsTokenCount);
  const finish = finishReason === 'STOP' && calledFunction ? 'tool_calls' : mapped(GEMINI_FINISH, finishReason);
  return { usage: counts(prompt, completion, count(metadata.totalTokenCount)), finishReason: finish };
};

const COHERE_FINISH: Record<string, string> = { COMPLETE: 'stop', STOP_SEQUENCE: 'stop', MAX_TOKENS: 'length', TOOL_CALL: 'tool_calls' };

/**
 * Cohere: `billed_units`, what the key's owner pays for. `tokens` also counts Cohere's prompt
 * template, and the reference allows either; Keyway reports billed units, so that is the expectation.
 */
export const readCohereAnswer: NativeReader = (payloads) => {
  let usage: JsonObject | undefined;
  let finishReason: unknown;
  for (const payload of payloads) {
    if (payload.type === 'message-end' && isObject(payload.delta)) {
      usage = isObject(payload.delta.usage) ? payload.delta.usage : usage;
      finishReason = payload.delta.finish_reason;
    } else if (payload.finish_reason !== undefined) {
      usage = isObject(payload.usage) ? payload.usage : usage;
      finishReason = payload.finish_reason;
    }
  }
  const billed = isObject(usage?.billed_units) ? usage.billed_units : undefined;
  if (billed === undefined) throw new Error('the native answer carries no billed_units');
  return { usage: counts(count(billed.input_tokens), count(billed.output_tokens)), finishReason: mapped(COHERE_FINISH, finishReason) };
};

/** Headers that belong to the first connection, not to the request. */
const CONNECTION_HEADERS = new Set(['host', 'content-length', 'connection', 'accept-encoding', 'transfer-encoding']);

/** The data payloads of an SSE body; CRLF framing (Gemini) and a `[DONE]` terminator are accepted. */
export function ssePayloads(text: string): JsonObject[] {
  const payloads: JsonObject[] = [];
  for (const event of text.replace(/\r\n/g, '\n').split(/\n\n/)) {
    const data = event
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    if (data.length === 0 || data === '[DONE]') continue;
    const parsed: unknown = JSON.parse(data);
    if (isObject(parsed)) payloads.push(parsed);
  }
  return payloads;
}

/**
 * Sends a recorded request again, straight to the simulator, and answers its payloads. It counts as
 * an inference request in the simulator's record, so read the record before replaying.
 */
export async function replayNative(simulator: SimulatorHandle, recorded: RecordedRequest): Promise<JsonObject[]> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(recorded.headers)) if (!CONNECTION_HEADERS.has(name)) headers[name] = value;
  const response = await fetch(`${simulator.url}${recorded.path}${recorded.search}`, { method: 'POST', headers, body: JSON.stringify(recorded.body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`the replayed request failed: ${response.status} ${text.slice(0, 300)}`);
  if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) return ssePayloads(text);
  const body: unknown = JSON.parse(text);
  if (!isObject(body)) throw new Error('the replayed request answered something that is not a JSON object');
  return [body];
}
