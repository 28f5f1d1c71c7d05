// The deterministic "model" behind the OpenAI-style simulators (OpenAI, and Perplexity which reuses it), plus the
// stream plumbing they share. Everything here is pure so gateway tests can compute expected values
// (token counts, tool arguments) with the same functions the simulators use.

import {
  countTokens,
  echoReply,
  frameStream,
  pausedAfterOpening,
  pausedBeforeClosing,
  sampleArguments as sampleArgumentValues,
  sleep,
  type ClosingPause,
  type Fault,
  type OpeningPause,
} from './common.ts';

export type JsonObject = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomToken(length: number, alphabet = ALPHANUMERIC): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let token = '';
  for (const byte of bytes) token += alphabet[byte % alphabet.length];
  return token;
}

/** A message's text: the string content, or its text parts concatenated. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join('');
}

function imageCount(content: unknown): number {
  if (!Array.isArray(content)) return 0;
  return content.filter((part) => isRecord(part) && part.type === 'image_url').length;
}

function messagesOf(body: JsonObject): JsonObject[] {
  return Array.isArray(body.messages) ? body.messages.filter(isRecord) : [];
}

function lastUserMessage(messages: JsonObject[]): JsonObject | undefined {
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index];
    if (message?.role === 'user') return message;
  }
  return undefined;
}

export function lastUserText(body: JsonObject): string {
  return contentText(lastUserMessage(messagesOf(body))?.content);
}

/**
 * Prompt tokens as every OpenAI-style simulator reports them: countTokens over all message text
 * (content text plus assistant tool-call arguments) concatenated, plus 3 per message.
 */
export function promptTokensFor(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let text = '';
  for (const message of messages) {
    if (!isRecord(message)) continue;
    text += contentText(message.content);
    if (Array.isArray(message.tool_calls)) {
      for (const call of message.tool_calls) {
        if (isRecord(call) && isRecord(call.function) && typeof call.function.arguments === 'string') text += call.function.arguments;
      }
    }
  }
  return countTokens(text) + 3 * messages.length;
}

/** The arguments JSON the simulated model gives a tool: every required property filled by type. */
export function sampleArguments(parameters: unknown): string {
  return JSON.stringify(sampleArgumentValues(parameters));
}

export interface PlannedToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ReplyPlan {
  /** Null when the reply is tool calls. */
  content: string | null;
  toolCalls: PlannedToolCall[];
  finishReason: 'stop' | 'length' | 'tool_calls';
  completionTokens: number;
}

function functionTools(body: JsonObject): JsonObject[] {
  if (!Array.isArray(body.tools)) return [];
  return body.tools.filter((tool): tool is JsonObject => isRecord(tool) && tool.type === 'function' && isRecord(tool.function));
}

function chooseTools(body: JsonObject, messages: JsonObject[]): JsonObject[] {
  const tools = functionTools(body);
  if (tools.length === 0 || messages.at(-1)?.role !== 'user' || body.tool_choice === 'none') return [];
  const choice = body.tool_choice;
  if (isRecord(choice) && isRecord(choice.function)) {
    const forced = tools.find((tool) => isRecord(tool.function) && tool.function.name === (choice.function as JsonObject).name);
    return forced ? [forced] : [];
  }
  const wantsAll = lastUserText(body).toLowerCase().includes('call all tools');
  // parallel_tool_calls:false means at most one call per turn, as with the real model.
  if (wantsAll && body.parallel_tool_calls !== false) return tools;
  return tools.slice(0, 1);
}

function trailingToolContents(messages: JsonObject[]): string[] {
  const contents: string[] = [];
  for (let index = messages.length - 1; index >= 0 && messages[index]?.role === 'tool'; index--) {
    contents.unshift(contentText(messages[index]?.content));
  }
  return contents;
}

function cutAtStop(text: string, stop: unknown): { text: string; stopped: boolean } {
  const sequences = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop.filter((entry): entry is string => typeof entry === 'string') : [];
  let cut = -1;
  for (const sequence of sequences) {
    const position = sequence.length > 0 ? text.indexOf(sequence) : -1;
    if (position !== -1 && (cut === -1 || position < cut)) cut = position;
  }
  return cut === -1 ? { text, stopped: false } : { text: text.slice(0, cut), stopped: true };
}

export interface PlanOptions {
  /** Perplexity never answers with tool calls. */
  allowToolCalls: boolean;
}

/** Decides one choice of the deterministic reply to a chat request that already passed validation. */
export function planReply(body: JsonObject, options: PlanOptions): ReplyPlan {
  const messages = messagesOf(body);
  const tools = options.allowToolCalls ? chooseTools(body, messages) : [];
  if (tools.length > 0) {
    const toolCalls = tools.map((tool) => {
      const definition = tool.function as JsonObject;
      return { id: `call_${randomToken(24)}`, name: String(definition.name), arguments: sampleArguments(definition.parameters) };
    });
    const completionTokens = toolCalls.reduce((sum, call) => sum + countTokens(call.arguments), 0);
    return { content: null, toolCalls, finishReason: 'tool_calls', completionTokens };
  }

  let text: string;
  const toolContents = trailingToolContents(messages);
  const formatType = isRecord(body.response_format) ? body.response_format.type : undefined;
  if (toolContents.length > 0) text = `Tool results: ${toolContents.join(' | ')}`;
  else if (formatType === 'json_object' || formatType === 'json_schema') text = JSON.stringify({ echo: lastUserText(body) });
  else {
    const lastUser = lastUserMessage(messages);
    const images = imageCount(lastUser?.content);
    text = echoReply(contentText(lastUser?.content)) + (images > 0 ? ` [images: ${images}]` : '');
  }

  const afterStop = cutAtStop(text, body.stop);
  text = afterStop.text;
  let finishReason: ReplyPlan['finishReason'] = 'stop';
  const limit = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : typeof body.max_tokens === 'number' ? body.max_tokens : undefined;
  if (limit !== undefined && countTokens(text) > limit) {
    text = text.slice(0, limit * 4);
    finishReason = 'length';
  }
  return { content: text, toolCalls: [], finishReason, completionTokens: countTokens(text) };
}

export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

export { connectionResetResponse } from './common.ts';

/**
 * Emits frames then cuts the connection. Bun only flushes enqueued bytes on a later tick, and an error
 * before the flush discards them (the client then sees no response at all), hence the pause before the cut.
 */
function cutStream(frames: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        for (const frame of frames) {
          controller.enqueue(encoder.encode(frame));
          await sleep(0);
        }
        await sleep(10);
        controller.error();
      } catch {
        // The client went away first.
      }
    },
  });
}

export interface StreamPlan {
  /** Frames before the content (OpenAI's role chunk). */
  leading: string[];
  /** Content frames: the ones mid-stream faults count. */
  content: string[];
  /** Closing chunk, usage chunk, terminator. */
  trailing: string[];
  /** The provider's in-stream error frame. */
  errorFrame: string;
}

export type StreamFault =
  | { kind: 'mid_stream_error' | 'mid_stream_reset'; afterChunks: number }
  | { kind: 'slow_stream'; delayMs: number }
  | OpeningPause
  | ClosingPause
  | undefined;

/** The fault that shapes a stream's body, when the request's fault is one. */
export function streamFaultOf(fault: Fault | undefined): StreamFault {
  switch (fault?.kind) {
    case 'mid_stream_error':
    case 'mid_stream_reset':
    case 'slow_stream':
    case 'opening_pause':
    case 'closing_pause':
      return fault;
    default:
      return undefined;
  }
}

/** The SSE body for a stream, with any mid-stream fault applied. */
export function streamBody(plan: StreamPlan, fault: StreamFault): ReadableStream<Uint8Array> {
  if (fault?.kind === 'mid_stream_reset') return cutStream([...plan.leading, ...plan.content.slice(0, fault.afterChunks)]);
  if (fault?.kind === 'mid_stream_error') return frameStream([...plan.leading, ...plan.content.slice(0, fault.afterChunks), plan.errorFrame]);
  if (fault?.kind === 'opening_pause') return frameStream(pausedAfterOpening([...plan.leading, ...plan.content, ...plan.trailing], plan.leading.length, fault));
  const frames = [...plan.leading, ...plan.content, ...plan.trailing];
  if (fault?.kind === 'closing_pause') return frameStream(pausedBeforeClosing(frames, fault));
  return frameStream(frames, fault?.kind === 'slow_stream' ? { delayMs: fault.delayMs } : {});
}

/** Formats a duration the way Go's time.Duration prints it (OpenAI's x-ratelimit-reset-* headers). */
export function goDuration(milliseconds: number): string {
  const rounded = Math.max(0, Math.round(milliseconds));
  if (rounded === 0) return '0s';
  if (rounded < 1000) return `${rounded}ms`;
  const hours = Math.floor(rounded / 3_600_000);
  const minutes = Math.floor((rounded % 3_600_000) / 60_000);
  const seconds = `${(rounded % 60_000) / 1000}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}
