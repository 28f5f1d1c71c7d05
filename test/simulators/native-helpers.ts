// Helpers shared by the Anthropic, Gemini and Cohere simulators: the deterministic answer every
// simulator gives, fake tool arguments, stream framing with stream faults, per-run memory and
// embedding vectors. Provider-specific shapes stay in each simulator.
import type { Fault, HandlerContext, SimulatorState } from './common.ts';
import { countTokens, echoReply, frameStream, pausedAfterOpening, sampleArguments } from './common.ts';

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

export type ParsedBody = { ok: true; value: unknown } | { ok: false; text: string };

/** Reads and records the body; a body that is not JSON is recorded as raw text so tests can see it. */
export async function readBody(request: Request, context: HandlerContext): Promise<ParsedBody> {
  const text = await request.text();
  try {
    const value: unknown = JSON.parse(text);
    context.record(value);
    return { ok: true, value };
  } catch {
    context.record(text.length > 0 ? text : undefined);
    return { ok: false, text };
  }
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

const runMemories = new WeakMap<object, Set<string>>();

/**
 * Memory that lasts one test run. common.ts replaces `state.requests` with a new array on every
 * reset (handle or control route), so keying on that array forgets everything on reset without a hook.
 */
export function runMemory(state: SimulatorState): Set<string> {
  let memory = runMemories.get(state.requests);
  if (!memory) {
    memory = new Set();
    runMemories.set(state.requests, memory);
  }
  return memory;
}

export function digest(text: string): string {
  return new Bun.CryptoHasher('sha256').update(text).digest('hex');
}

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomId(prefix: string, length = 24): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let id = prefix;
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return id;
}

/** RFC 3339 without milliseconds, as Anthropic's reset headers and model dates use. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function isBase64(data: string): boolean {
  return data.length > 0 && data.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(data);
}

/** What a simulator knows about the conversation once it has validated a request. */
export interface ConversationFacts {
  lastUserText: string;
  imageCount: number;
  /** Set when the last turn carries tool results: the results as text, in order. */
  toolResults: string[] | undefined;
  /** Tools the model may call, already narrowed by the provider's allow-list. */
  tools: { name: string; schema: unknown }[];
  toolsDisabled: boolean;
  forcedTool: string | undefined;
  parallelToolCalls: boolean;
  jsonMode: boolean;
  /** Tokens left for the visible answer (thinking already subtracted). */
  maxTokens: number | undefined;
  stopSequences: string[];
}

export interface PlannedToolCall {
  name: string;
  arguments: JsonObject;
}

export type ReplyPlan =
  | { kind: 'text'; text: string; finish: 'complete' | 'length' | 'stop_sequence'; stopSequence: string | undefined }
  | { kind: 'tool_calls'; calls: PlannedToolCall[] };

/** The deterministic behaviour every native simulator shares (see the test-suite brief). */
export function planReply(facts: ConversationFacts): ReplyPlan {
  if (facts.toolResults === undefined && facts.tools.length > 0 && !facts.toolsDisabled) {
    return { kind: 'tool_calls', calls: chooseTools(facts).map((tool) => ({ name: tool.name, arguments: sampleArguments(tool.schema) })) };
  }
  let text: string;
  if (facts.toolResults !== undefined) text = `Tool results: ${facts.toolResults.join(' | ')}`;
  else if (facts.jsonMode) text = JSON.stringify({ echo: facts.lastUserText });
  else text = echoReply(facts.lastUserText) + (facts.imageCount > 0 ? ` [images: ${facts.imageCount}]` : '');
  return { kind: 'text', ...shapeText(text, facts.maxTokens, facts.stopSequences) };
}

function chooseTools(facts: ConversationFacts): { name: string; schema: unknown }[] {
  const forced = facts.forcedTool === undefined ? undefined : facts.tools.find((tool) => tool.name === facts.forcedTool);
  if (forced) return [forced];
  if (facts.lastUserText.toLowerCase().includes('call all tools') && facts.parallelToolCalls) return facts.tools;
  return facts.tools.slice(0, 1);
}

/** Applies stop sequences, then the token limit (four characters a token), whichever cuts first. */
export function shapeText(
  text: string,
  maxTokens: number | undefined,
  stopSequences: string[],
): { text: string; finish: 'complete' | 'length' | 'stop_sequence'; stopSequence: string | undefined } {
  let cut = text;
  let finish: 'complete' | 'length' | 'stop_sequence' = 'complete';
  let stopSequence: string | undefined;
  let earliest = -1;
  for (const sequence of stopSequences) {
    const index = sequence.length > 0 ? text.indexOf(sequence) : -1;
    if (index >= 0 && (earliest < 0 || index < earliest)) {
      earliest = index;
      stopSequence = sequence;
    }
  }
  if (earliest >= 0) {
    cut = text.slice(0, earliest);
    finish = 'stop_sequence';
  }
  if (maxTokens !== undefined && countTokens(cut) > maxTokens) {
    cut = cut.slice(0, Math.max(0, maxTokens) * 4);
    finish = 'length';
    stopSequence = undefined;
  }
  return { text: cut, finish, stopSequence };
}

export function toolCallTokens(calls: PlannedToolCall[]): number {
  return calls.reduce((sum, call) => sum + countTokens(call.name + JSON.stringify(call.arguments)), 0);
}

export function sseEvent(data: unknown, event?: string, lineEnd = '\n'): string {
  const lines = event === undefined ? [`data: ${JSON.stringify(data)}`] : [`event: ${event}`, `data: ${JSON.stringify(data)}`];
  return lines.join(lineEnd) + lineEnd + lineEnd;
}

/** One stream event; `content` marks the events the `afterChunks` of stream faults count. */
export interface StreamFrame {
  text: string;
  content: boolean;
}

export function isStreamFault(fault: Fault | undefined): boolean {
  return fault?.kind === 'mid_stream_error' || fault?.kind === 'mid_stream_reset' || fault?.kind === 'slow_stream' || fault?.kind === 'opening_pause';
}

/**
 * Turns frames into a body, applying the stream faults. The cut falls just before the content event
 * that follows the first `afterChunks` ones, so set-up events (starts, pings) still go out first; a
 * reply with fewer content events is cut before its final event. `errorFrames` replace everything
 * after the cut for `mid_stream_error`; `opening_pause` waits at that cut with no afterChunks.
 */
export function faultedStream(frames: StreamFrame[], fault: Fault | undefined, errorFrames: string[]): ReadableStream<Uint8Array> {
  const texts = frames.map((frame) => frame.text);
  if (fault?.kind === 'slow_stream') return frameStream(texts, { delayMs: fault.delayMs });
  if (fault?.kind === 'opening_pause') return frameStream(pausedAfterOpening(texts, cutIndex(frames, 0), fault));
  if (fault?.kind === 'mid_stream_reset') return frameStream(texts, { resetAfter: cutIndex(frames, fault.afterChunks) });
  if (fault?.kind === 'mid_stream_error') return frameStream([...texts.slice(0, cutIndex(frames, fault.afterChunks)), ...errorFrames]);
  if (fault?.kind === 'omit_stream_event') return frameStream(texts.filter((text) => !text.startsWith(`event: ${fault.event}\n`)));
  return frameStream(texts);
}

function cutIndex(frames: StreamFrame[], afterChunks: number): number {
  let seen = 0;
  for (let index = 0; index < frames.length; index++) {
    if (!frames[index]?.content) continue;
    if (seen >= afterChunks) return index;
    seen++;
  }
  return Math.max(0, frames.length - 1);
}

export const streamHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

/** A unit vector that depends only on the text, so equal texts embed equally. */
export function embeddingVector(text: string, dimensions: number): number[] {
  let seed = Bun.hash.crc32(text) || 1;
  const values: number[] = [];
  for (let index = 0; index < dimensions; index++) {
    // xorshift32: cheap, deterministic and good enough for fake vectors.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    values.push(((seed >>> 0) / 0xffffffff) * 2 - 1);
  }
  const length = Math.hypot(...values) || 1;
  return values.map((value) => Math.round((value / length) * 1e6) / 1e6);
}
