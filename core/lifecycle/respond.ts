// Writes an inference answer in the client's dialect, streamed or not, with the spec's response
// headers; a stream books its outcome when it ends, fails or is cancelled.

import type { Accountant } from '../accounting/account.ts';
import { StreamObserver } from '../accounting/stream-observer.ts';
import { estimatedUsage } from '../accounting/token-estimate.ts';
import { lacksInputCount, lacksOutputCount } from '../accounting/usage-limits.ts';
import { keySearchOf, StreamKeyFilter, type KeySearch } from '../credentials/key-echo.ts';
import { descriptorFromError, errorHeaders, KeywayError } from '../errors.ts';
import type { Dialect, StreamEncoder } from '../spec/dialect.ts';
import type { AttemptRecord, RequestContext } from '../spec/lifecycle.ts';
import { unreportedUsage, type ChatResult, type ErrorDescriptor, type StreamPart } from '../spec/vocabulary.ts';
import { endedAtEventLimit } from '../wire/provider-kit.ts';
import { SSE_HEADERS } from '../wire/sse.ts';
import type { AttemptSuccess } from './attempts.ts';
import { descriptorWithoutSecret } from './attempt-failures.ts';
import { streamEnded, type DrainCause, type DrainWatch } from './drain.ts';

const textEncoder = new TextEncoder();

/** Typographic punctuation warnings use, spelled in ASCII rather than lost to '?'. */
const ASCII_PUNCTUATION: Record<string, string> = {
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '-',
  '\u2013': '-',
  '\u2014': '-',
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2026': '...',
  '\u2192': '->',
};

/**
 * Header values must be single-line ASCII. Typographic punctuation becomes its ASCII look-alike; any
 * other character outside printable ASCII is written as a `\uXXXX` escape, so a warning quoting a
 * non-breaking space or an ideographic one still says which (it read "?", QA15 re-verification).
 */
function headerSafe(text: string): string {
  return text
    .replace(/[\u2010-\u2014\u2018\u2019\u201c\u201d\u2026\u2192]/g, (character) => ASCII_PUNCTUATION[character] ?? '?')
    .replace(/[^\x20-\x7e]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .slice(0, 2000);
}

/**
 * The attempt whose failure an error answers, when it called its upstream: the last one neither
 * skipped nor set aside, since a candidate skipped after it (its translation refused the request) or a
 * substitute's 400 set aside after it does not make the answer. None when every candidate was skipped,
 * or when the answering attempt ended before any upstream call (Cohere's translation refusing a sixth
 * stop sequence): a header naming a provider that was never asked would say it refused the request
 * (QA14 docs N8).
 */
function answeringAttempt(attempts: readonly AttemptRecord[]): AttemptRecord | undefined {
  const answering = attempts.findLast((attempt) => attempt.skipped !== true && attempt.setAside !== true);
  return answering?.upstreamCalled === false ? undefined : answering;
}

export function inferenceHeaders(context: RequestContext, servedModel: string | undefined, costUsd: number | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    ...context.responseHeaders,
    'x-request-id': context.requestId,
    'x-fallback-attempts': String(context.attempts.length),
  };
  // Nothing served (every attempt failed): the answering attempt's, so a client can tell whose rate
  // limit or refusal it met; a request no upstream was called for has none.
  const served = context.served ?? answeringAttempt(context.attempts);
  if (served !== undefined) {
    headers['x-provider-used'] = served.provider;
    headers['x-byok-used'] = served.owner === 'account' ? 'true' : 'false';
    // The provider's own name for the model is upstream text: it may echo the key (key-echo.ts).
    const model = servedModel || served.model;
    headers['x-model-used'] = headerSafe(context.served?.redactKey?.(model) ?? model);
    headers['x-key-id'] = served.keyId;
  }
  if (costUsd !== undefined) headers['x-keyway-cost'] = costUsd.toFixed(9).replace(/0+$/, '').replace(/\.$/, '.0');
  if (context.warnings.length > 0) headers['x-keyway-warnings'] = headerSafe(context.warnings.join('; '));
  return headers;
}

export function errorResponse(dialect: Dialect, descriptor: ErrorDescriptor, requestId: string, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(dialect.errorBody(descriptor, requestId)), {
    status: descriptor.status,
    headers: { ...errorHeaders(descriptor), ...extraHeaders, 'x-request-id': requestId },
  });
}

/**
 * A 200 with its body, which must not hold the provider key the upstream was called with
 * (`upstreamKey`, key-echo.ts): searched in the text as sent, passed through or serialised here, so an
 * answer without it is neither copied nor serialised again.
 */
export function jsonAnswer(body: unknown, headers: Record<string, string>, upstreamKey: KeySearch | undefined): Response {
  headers['content-type'] = 'application/json';
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Response(upstreamKey === undefined ? text : upstreamKey.redact(text), { status: 200, headers });
}

/**
 * A 200 whose generation failed (Cohere's ERROR/TIMEOUT finish, Gemini's malformed function call)
 * is a server-side failure, not an answer: it may fall back like any other.
 */
export function rejectFailedGeneration(provider: string, result: ChatResult): ChatResult {
  if (result.choices.length === 0 || !result.choices.every((choice) => choice.finishReason.unified === 'error')) return result;
  const raw = result.choices[0]?.finishReason.raw ?? 'error';
  throw new KeywayError(
    'upstream_error',
    { detail: `${provider} ended the generation with ${raw}` },
    { reason: raw === 'TIMEOUT' ? 'timeout' : 'server_error', extra: { provider } },
  );
}

/**
 * The answer, booked first. An answer whose provider reported no usable prompt count waits for the
 * provider's tokenizer to count the prompt (Accountant.promptTokensOf), so the row books that count
 * rather than the rougher estimate; every other answer is booked and sent at once.
 */
export function chatAnswer(
  accountant: Accountant,
  dialect: Dialect,
  context: RequestContext,
  success: AttemptSuccess<ChatResult>,
): Response | Promise<Response> {
  if (lacksInputCount(success.value.usage)) {
    return accountant.promptTokensOf(context).then((promptTokens) => bookedChatAnswer(accountant, dialect, context, success, promptTokens));
  }
  return bookedChatAnswer(accountant, dialect, context, success, undefined);
}

function bookedChatAnswer(
  accountant: Accountant,
  dialect: Dialect,
  context: RequestContext,
  success: AttemptSuccess<ChatResult>,
  promptTokens: number | undefined,
): Response | Promise<Response> {
  const result = success.value;
  const outcome = accountant.account(
    context,
    { status: 200, usage: result.usage, finishReason: result.choices[0]?.finishReason, error: undefined, streamed: false, servedModel: result.model },
    result,
    promptTokens,
  );
  const body = dialect.encodeResult(result, context);
  const settling = dialect.settle?.(context);
  const answer = (): Response => jsonAnswer(body, inferenceHeaders(context, result.model, outcome.costUsd), keySearchOf(success.call.credential));
  return settling === undefined ? answer() : settling.then(answer);
}

/**
 * A stream that ended well without usable usage from its provider (an OpenAI-compatible server that
 * ignores `stream_options`, a Perplexity stream without its usage) is booked at Keyway's estimate
 * (docs/costs.md). The client's closing usage (the usage chunk it asked for, message_delta,
 * response.completed) shows those booked counts too: it showed zeros, or no usage chunk at all, while
 * the row billed the estimate, so a client that tracks its spend from usage saw $0 (QA18 streams F3).
 */
function showBookedUsage(encoder: StreamEncoder, context: RequestContext, observer: StreamObserver): void {
  const booked = context.outcome;
  if (booked?.usageEstimated !== true || booked.usage === undefined) return;
  if (!lacksInputCount(observer.usage) && !lacksOutputCount(observer.usage)) return;
  encoder.encode({ type: 'usage', usage: booked.usage });
}

function withoutSecretPart(part: Extract<StreamPart, { type: 'error' }>, secret: string | undefined): StreamPart {
  const error = descriptorWithoutSecret(part.error, secret);
  return error === part.error ? part : { type: 'error', error };
}

export interface OpenedStream {
  iterator: AsyncIterator<StreamPart>;
  first: StreamPart;
}

export function streamAnswer(
  accountant: Accountant,
  dialect: Dialect,
  context: RequestContext,
  success: AttemptSuccess<OpenedStream>,
  drain?: DrainWatch,
): Response {
  const { iterator, first } = success.value;
  const observer = new StreamObserver();
  observer.observe(first);
  accountant.streaming(context, observer);
  const encoder: StreamEncoder = dialect.createStreamEncoder(context, observer.model ?? success.candidate.model);
  let pendingFirst: StreamPart | undefined = first;
  /** Set once the stream is over, whoever ended it: later events change nothing. */
  let ended = false;
  let output: ReadableStreamDefaultController<Uint8Array> | undefined;
  // Every byte out is checked for the key the upstream was called with (key-echo.ts).
  const upstreamKey = keySearchOf(success.call.credential);
  const keyFilter = upstreamKey === undefined ? undefined : new StreamKeyFilter(upstreamKey);
  /** False when nothing went out (the whole frame is held): the pull must then read on, or the stream would stall. */
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, frame: string | Uint8Array): boolean => {
    const bytes = typeof frame === 'string' ? textEncoder.encode(frame) : frame;
    const checked = keyFilter === undefined ? bytes : keyFilter.chunk(bytes);
    if (checked.length === 0) return false;
    controller.enqueue(checked);
    return true;
  };
  /** The last frame, what the key check still holds, and the end of the stream. */
  const sendLast = (controller: ReadableStreamDefaultController<Uint8Array>, frame: string | Uint8Array): void => {
    send(controller, frame);
    const held = keyFilter?.flush();
    if (held !== undefined && held.length > 0) controller.enqueue(held);
    controller.close();
  };

  // `cut`: the stream stopped before its end while the provider kept working (the client left, or
  // the drain deadline passed). The provider's usage is billed if it came; otherwise an estimate of
  // what it has not reported (the prompt's usage, when stated up front, is kept as reported). A
  // stream the provider broke off (an error event, a dropped connection) after content reached the
  // client is estimated too: the prompt was read and the tokens delivered, and the provider bills
  // them; booked as nothing, the row would be free and a budget could be spent past its cap.
  // A stream that ends well without usage (an OpenAI-compatible server that ignores `stream_options`)
  // was served: its counts are left for the account stage to estimate, never booked as free.
  const finish = (status: number, error: ErrorDescriptor | undefined, cut = false, promptTokens?: number): void => {
    ended = true;
    unwatch?.();
    if (context.outcome !== undefined) return;
    success.done();
    const estimate = observer.usage === undefined && (cut || (error !== undefined && observer.streamedTokens > 0));
    const usage = estimate
      ? estimatedUsage(context.request, observer.streamedTokens, observer.promptUsage, accountant.countedPrompt(context))
      : (observer.usage ?? (error === undefined ? unreportedUsage() : undefined));
    accountant.account(
      context,
      {
        status,
        usage,
        finishReason: observer.finishReason,
        error,
        streamed: true,
        servedModel: observer.model,
        ...(estimate ? { usageEstimated: true } : {}),
      },
      observer,
      promptTokens,
    );
  };

  const journaled = (): Promise<void> | undefined => accountant.journaled();

  /**
   * The stream's end as if its upstream had ended it: booked (and journaled) first, then the booked
   * usage where the provider gave none, the dialect's closing events and what the key check holds.
   */
  const closeServed = async (controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> => {
    await journaled();
    showBookedUsage(encoder, context, observer);
    const last = encoder.end();
    const remade = await encoder.settle?.();
    sendLast(controller, typeof remade === 'string' ? remade : last);
  };

  /** Set while the client has the finish and the provider's usage: only the terminator is still to come. */
  let answerOut = false;
  /** The served close the drain started, which a failing upstream read must not cut short. */
  let closing: Promise<void> | undefined;

  // Shutdown: a stream still running at the drain deadline, or at a second signal, ends with an error
  // event in its dialect that names which of the two ended it. One whose answer and usage are out,
  // waiting only for its upstream's terminator (OpenAI's `[DONE]`), is closed as served with that
  // usage: an error event there made the client throw away a complete answer, and the row a 503 at an
  // estimate (QA19 ops L4).
  const onDrain = (cause: DrainCause): void => {
    if (ended) return;
    if (answerOut && output !== undefined) {
      const controller = output;
      success.abort.abort(new KeywayError('upstream_error', { detail: 'Keyway is shutting down' }, { reason: 'server_error' }));
      void iterator.return?.()?.catch?.(() => undefined);
      finish(200, undefined);
      closing = closeServed(controller).catch(() => undefined);
      return;
    }
    const descriptor = descriptorFromError(streamEnded(cause), context.requestId);
    try {
      if (output !== undefined) sendLast(output, encoder.encode({ type: 'error', error: descriptor }));
    } catch {
      // The client is already gone.
    }
    success.abort.abort(new KeywayError('upstream_error', { detail: 'Keyway is shutting down' }, { reason: 'server_error' }));
    void iterator.return?.()?.catch?.(() => undefined);
    finish(descriptor.status, descriptor, true);
  };
  const unwatch = drain?.watch(onDrain);

  // Pull-based: the next upstream part is read only when the client is ready for more, so a slow
  // client slows the upstream instead of filling memory.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      output = controller;
      if (drain?.expired === true) onDrain(drain.cause ?? 'deadline');
    },
    async pull(controller) {
      try {
        while (!ended) {
          let part: StreamPart;
          if (pendingFirst !== undefined) {
            part = pendingFirst;
            pendingFirst = undefined;
          } else {
            const next = await iterator.next();
            if (ended) return;
            if (next.done) {
              // Booked, and journaled, before the last bytes are handed over: a client that has the
              // whole stream has its row on disk. Without a usable prompt count from the provider, the
              // provider's tokenizer counts it first; the stream is over, so a client leaving or the
              // drain deadline meanwhile changes nothing (`ended`).
              if (lacksInputCount(observer.usage)) {
                ended = true;
                finish(200, undefined, false, await accountant.promptTokensOf(context));
              } else finish(200, undefined);
              await closeServed(controller);
              return;
            }
            // An upstream's error event is scrubbed of the attempt key's forms, as a failed attempt's error is.
            part = next.value.type === 'error' ? withoutSecretPart(next.value, success.call.credential.apiKey) : next.value;
            observer.observe(part);
          }
          const frame = encoder.encodeBytes === undefined ? encoder.encode(part) : encoder.encodeBytes(part);
          if (part.type === 'error') {
            // An event over the size limit is Keyway's cut, not the provider's end: it was still
            // sending, so the stream is booked as cut (an estimate), whatever reached the client.
            finish(part.error.status, part.error, endedAtEventLimit(part.error));
            await journaled();
            sendLast(controller, frame);
            void iterator.return?.();
            return;
          }
          // A frame that must wait (a stored response's row, written before its client learns it is complete).
          let sent = frame;
          const settling = encoder.settle?.();
          if (settling !== undefined) {
            const remade = await settling;
            if (ended) return;
            if (typeof remade === 'string') sent = remade;
          }
          answerOut = observer.finishReason !== undefined && !lacksInputCount(observer.usage) && !lacksOutputCount(observer.usage);
          if (sent.length > 0 && send(controller, sent)) return;
        }
      } catch (error) {
        if (ended) {
          if (closing !== undefined) return;
          try {
            controller.close();
          } catch {
            // Already closed.
          }
          return;
        }
        const descriptor = descriptorFromError(error, context.requestId);
        finish(descriptor.status, descriptor);
        await journaled();
        sendLast(controller, encoder.encode({ type: 'error', error: descriptor }));
      }
    },
    cancel() {
      if (ended) return;
      success.abort.abort(new KeywayError('upstream_error', { detail: 'the client closed the stream' }, { reason: 'server_error' }));
      void iterator.return?.();
      finish(499, new KeywayError('client_closed', { detail: 'The client closed the stream.' }).toDescriptor(), true);
    },
  });
  const headers = inferenceHeaders(context, observer.model, undefined);
  Object.assign(headers, SSE_HEADERS);
  return new Response(body, { status: 200, headers });
}
