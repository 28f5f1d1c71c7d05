// The opening hold's two rules, without a gateway: which stream parts carry no generated content (read
// from the part vocabulary alone), and what the hold does with them: content flushes at once, an error
// inside the window rejects, the window's end hands the held parts on with the read it interrupted.

import { describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import { carriesNoContent, holdOpening } from '../../core/lifecycle/opening-hold.ts';
import type { OpenAIChunk, StreamPart } from '../../core/spec/vocabulary.ts';

const START: StreamPart = { type: 'start', id: 'msg_1', model: 'model', created: 1 };
const TEXT: StreamPart = { type: 'text-delta', index: 0, text: 'Hello' };
const KEEPALIVE: StreamPart = { type: 'keepalive' };
/** Longer than any test runs: a test that waited for it would time out. */
const LONG_HOLD_MS = 60_000;

function chunkOf(choices: OpenAIChunk['choices']): StreamPart {
  const parsed: OpenAIChunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices };
  return { type: 'openai-chunk', raw: JSON.stringify(parsed), chunk: parsed };
}

function chunk(delta: Record<string, unknown>, finishReason: string | null = null): StreamPart {
  return chunkOf([{ index: 0, delta, finish_reason: finishReason }]);
}

function nativeEvent(event: string, noContent?: boolean): StreamPart {
  return { type: 'native-event', event, data: { type: event }, raw: '{}', ...(noContent === undefined ? {} : { noContent }) };
}

const upstreamError = (): StreamPart => ({
  type: 'error',
  error: new KeywayError('upstream_error', { detail: 'anthropic answered: Overloaded' }, { reason: 'server_error' }).toDescriptor(),
});

/** An upstream whose parts come when the test sends them; `first` is already read, as openStream reads it. */
class ScriptedUpstream implements AsyncIterator<StreamPart> {
  private readonly waiting: Array<(result: IteratorResult<StreamPart>) => void> = [];
  private readonly ready: IteratorResult<StreamPart>[] = [];

  send(part: StreamPart): void {
    this.deliver({ done: false, value: part });
  }

  end(): void {
    this.deliver({ done: true, value: undefined });
  }

  next(): Promise<IteratorResult<StreamPart>> {
    const result = this.ready.shift();
    if (result !== undefined) return Promise.resolve(result);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private deliver(result: IteratorResult<StreamPart>): void {
    const waiter = this.waiting.shift();
    if (waiter === undefined) this.ready.push(result);
    else waiter(result);
  }
}

async function drain(iterator: AsyncIterator<StreamPart>): Promise<StreamPart[]> {
  const parts: StreamPart[] = [];
  for (let result = await iterator.next(); result.done !== true; result = await iterator.next()) parts.push(result.value);
  return parts;
}

describe('what carries no generated content', () => {
  test.each([
    ['a stream start', START, true],
    ['a keep-alive', KEEPALIVE, true],
    ['an OpenAI role chunk', chunk({ role: 'assistant', content: '', refusal: null }), true],
    ['an OpenAI chunk with no choices (a usage chunk, filter results)', chunkOf([]), true],
    ['an empty text delta', { type: 'text-delta', index: 0, text: '' } as StreamPart, true],
    ['a native opening event', nativeEvent('message_start', true), true],
    ['text', TEXT, false],
    ['reasoning', { type: 'reasoning-delta', index: 0, text: 'hmm' } as StreamPart, false],
    ['a thinking signature', { type: 'reasoning-delta', index: 0, text: '', signature: 'sig' } as StreamPart, false],
    ['an OpenAI content chunk', chunk({ content: 'Hi' }), false],
    ['an OpenAI tool call', chunk({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'lookup', arguments: '' } }] }), false],
    ['an OpenAI finish', chunk({}, 'stop'), false],
    ["a field of a later API in an OpenAI delta ('unsure' is content)", chunk({ role: 'assistant', reasoning: 'thinking…' }), false],
    ['a native event the adapter did not mark', nativeEvent('content_block_start'), false],
    ['a tool call start', { type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_1', name: 'lookup' } as StreamPart, false],
    ['a finish', { type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'stop' } } as StreamPart, false],
  ])('%s: %p', (_name, part, expected) => {
    expect(carriesNoContent(part)).toBe(expected);
  });
});

describe('the hold', () => {
  test('the first content flushes the held parts at once, however long the window', async () => {
    const upstream = new ScriptedUpstream();
    const holding = holdOpening({ first: START, iterator: upstream }, LONG_HOLD_MS);
    upstream.send(KEEPALIVE);
    upstream.send(TEXT);
    upstream.send(chunk({}, 'stop'));
    upstream.end();
    const opened = await holding;
    expect(opened.first).toBe(START);
    expect(await drain(opened.iterator)).toEqual([KEEPALIVE, TEXT, chunk({}, 'stop')]);
  });

  test('an error inside the window fails the attempt with it', async () => {
    const upstream = new ScriptedUpstream();
    const holding = holdOpening({ first: START, iterator: upstream }, LONG_HOLD_MS);
    upstream.send(KEEPALIVE);
    upstream.send(upstreamError());
    const failure = await holding.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(KeywayError);
    expect((failure as KeywayError).code).toBe('upstream_error');
    expect((failure as KeywayError).reason).toBe('server_error');
  });

  test("the window's end hands the held parts on; the read it interrupted and the rest follow in order", async () => {
    const upstream = new ScriptedUpstream();
    upstream.send(KEEPALIVE);
    const opened = await holdOpening({ first: START, iterator: upstream }, 20);
    const reading = drain(opened.iterator);
    upstream.send(TEXT);
    upstream.send(upstreamError());
    upstream.end();
    // After the window an error is the stream's, as before the hold: the stream ends with it.
    expect(await reading).toEqual([KEEPALIVE, TEXT, upstreamError()]);
  });

  test('a first part that is content, or a hold of 0, holds nothing', async () => {
    const upstream = new ScriptedUpstream();
    const content = { first: TEXT, iterator: upstream };
    expect(await holdOpening(content, LONG_HOLD_MS)).toBe(content);
    const opening = { first: START, iterator: upstream };
    expect(await holdOpening(opening, 0)).toBe(opening);
  });
});
