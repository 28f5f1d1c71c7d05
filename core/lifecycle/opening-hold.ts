// The opening hold of a stream (docs/routing.md, "Streams"). A request falls back until the first byte
// reaches the client, but a provider's first events carry nothing generated (Anthropic's message_start
// and ping, Cohere's message-start, an OpenAI role chunk), and an error can follow them before any
// content (Anthropic's overloaded_error, Cohere's ERROR finish): sent at once, they had begun the
// client's stream, and the error ended it instead of falling back (QA18). So once the upstream's first
// byte is in hand (it meets the first-byte deadline, as ever), the events that carry no generated
// content are held back for at most `KEYWAY_STREAM_OPENING_HOLD_MS`. An error inside that window fails
// the attempt before anything reached the client, and the request falls back as for an error in the
// first event; the first content, or the window's end, hands the held events on at once. The window is
// a bound, not a deadline: a reasoning model that thinks past it is not cut, its opening goes out when
// the window ends and its content when it comes.
//
// What carries no content is read from the stream-part vocabulary alone, never from a provider's name.

import { errorFromDescriptor } from '../errors.ts';
import type { OpenAIChunk, OpenAIChunkChoice, StreamPart } from '../spec/vocabulary.ts';
import { scheduleDeadline } from './deadlines.ts';
import type { OpenedStream } from './respond.ts';

/** Whether a part carries nothing generated: the opening hold may hold it back. Unsure is content. */
export function carriesNoContent(part: StreamPart): boolean {
  switch (part.type) {
    case 'start':
    case 'keepalive':
    case 'usage':
    case 'extra-fields':
      return true;
    case 'text-delta':
      return part.text === '';
    case 'reasoning-delta':
      return part.text === '' && (part.signature === undefined || part.signature === '');
    case 'openai-chunk':
      return !chunkCarriesContent(part.chunk);
    case 'native-event':
      return part.noContent === true;
    default:
      // Tool calls, a finish, an error: content, or the end of the stream.
      return false;
  }
}

/** A chunk whose choices say anything beyond their role: text, a refusal, a tool call, a finish, any field of a later API. */
function chunkCarriesContent(chunk: OpenAIChunk): boolean {
  const choices: unknown = chunk.choices;
  return Array.isArray(choices) && choices.some((choice: OpenAIChunkChoice) => choiceCarriesContent(choice));
}

function choiceCarriesContent(choice: OpenAIChunkChoice): boolean {
  if (choice === null || typeof choice !== 'object') return false;
  if (choice.finish_reason !== null && choice.finish_reason !== undefined) return true;
  const delta: unknown = choice.delta;
  if (delta === null || typeof delta !== 'object') return false;
  for (const [name, value] of Object.entries(delta)) {
    if (name !== 'role' && isFilled(value)) return true;
  }
  return false;
}

function isFilled(value: unknown): boolean {
  return value !== null && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0);
}

const WINDOW_ENDED = Symbol('the opening hold ended');

/**
 * Holds a stream's contentless opening for at most `holdMs` after its first part. Rejects with the
 * upstream's error when one arrives inside the window (the attempt then failed before its first byte
 * reached the client); otherwise resolves, at the first content or at the window's end, with the stream
 * whose iterator gives the held parts first. Nothing is held when the first part is content or `holdMs` is 0.
 */
export async function holdOpening(opened: OpenedStream, holdMs: number): Promise<OpenedStream> {
  if (holdMs <= 0 || !carriesNoContent(opened.first)) return opened;
  const { iterator } = opened;
  const held: StreamPart[] = [];
  let endWindow: (ended: typeof WINDOW_ENDED) => void = () => undefined;
  const windowEnded = new Promise<typeof WINDOW_ENDED>((resolve) => {
    endWindow = resolve;
  });
  const window = scheduleDeadline(holdMs, () => endWindow(WINDOW_ENDED));
  try {
    for (;;) {
      const next = iterator.next();
      const result = await Promise.race([next, windowEnded]);
      if (result === WINDOW_ENDED) return { first: opened.first, iterator: new ReplayingIterator(iterator, held, next) };
      // A stream that ended with its opening alone is passed on as it came.
      if (result.done === true) return { first: opened.first, iterator: new ReplayingIterator(iterator, held, undefined) };
      const part = result.value;
      if (part.type === 'error') throw errorFromDescriptor(part.error);
      held.push(part);
      if (!carriesNoContent(part)) return { first: opened.first, iterator: new ReplayingIterator(iterator, held, undefined) };
    }
  } finally {
    window.cancel();
  }
}

/** The held parts, then the read the window interrupted, then the upstream's own iterator. */
class ReplayingIterator implements AsyncIterator<StreamPart> {
  private position = 0;

  constructor(
    private readonly source: AsyncIterator<StreamPart>,
    private readonly held: readonly StreamPart[],
    private interrupted: Promise<IteratorResult<StreamPart>> | undefined,
  ) {
    // Read later by the stream, or never if the client leaves first: its failure must not go unhandled meanwhile.
    interrupted?.catch(() => undefined);
  }

  next(): Promise<IteratorResult<StreamPart>> {
    const part = this.held[this.position];
    if (part !== undefined) {
      this.position++;
      return Promise.resolve({ done: false, value: part });
    }
    const interrupted = this.interrupted;
    if (interrupted === undefined) return this.source.next();
    this.interrupted = undefined;
    return interrupted;
  }

  return(value?: unknown): Promise<IteratorResult<StreamPart>> {
    return this.source.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
  }
}
