// The shutdown drain's end for requests in flight. At SIGTERM the server stops taking connections and
// waits for the requests in flight; a stream can run for minutes and a non-streamed call waits for
// its whole answer (up to KEYWAY_TOTAL_TIMEOUT_MS, 10 minutes), so at KEYWAY_DRAIN_TIMEOUT_MS, or at
// once on a second signal, every request still in flight is ended. A stream ends with an error event
// in its dialect (streamAnswer in core/lifecycle/respond.ts watches this); a request still waiting
// for its upstream (a non-streamed answer, a stream's first byte, a backoff between attempts) has its
// upstream call aborted and is answered 503 `not_ready`, to be sent again elsewhere (DrainStop, run
// by core/lifecycle/attempts.ts). Each is booked once, with estimated usage when its upstream was
// called and the provider had not reported its own. Before this, only streams were ended: a
// non-streamed call held the shutdown for as long as its upstream took (QA17 SRE: 46 s past a 1 s
// drain deadline and a second signal, past any Kubernetes grace period).
//
// A Set of callbacks rather than an AbortSignal: a signal's listeners are removed by a linear
// search, which costs tens of microseconds per request once thousands are open.

import { KeywayError } from '../errors.ts';

/** What ended the requests in flight: the drain deadline, or a second shutdown signal. */
export type DrainCause = 'deadline' | 'signal';

/** What a request watches: `watch` returns the function that stops watching. */
export interface DrainWatch {
  readonly expired: boolean;
  /** Set once expired. */
  readonly cause: DrainCause | undefined;
  watch(end: (cause: DrainCause) => void): () => void;
}

export class DrainDeadline implements DrainWatch {
  private readonly watchers = new Set<(cause: DrainCause) => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private endedBy: DrainCause | undefined;

  get expired(): boolean {
    return this.endedBy !== undefined;
  }

  get cause(): DrainCause | undefined {
    return this.endedBy;
  }

  watch(end: (cause: DrainCause) => void): () => void {
    this.watchers.add(end);
    return () => {
      this.watchers.delete(end);
    };
  }

  /** Arms the deadline `afterMs` from now; a second call changes nothing. */
  start(afterMs: number): void {
    if (this.timer !== undefined || this.expired) return;
    if (afterMs <= 0) {
      this.expire('deadline');
      return;
    }
    this.timer = setTimeout(() => this.expire('deadline'), afterMs);
    this.timer.unref?.();
  }

  /** Ends the requests in flight now; `cause` names why in what each client is told. */
  expire(cause: DrainCause): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.expired) return;
    this.endedBy = cause;
    for (const end of [...this.watchers]) {
      try {
        end(cause);
      } catch {
        // One request failing to end must not keep the others running.
      }
    }
    this.watchers.clear();
  }

  /** The drain finished before the deadline: the timer is no longer needed. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/** How the message names the cause. */
function endedBy(cause: DrainCause): string {
  return cause === 'signal' ? 'by a second shutdown signal' : 'at the drain deadline (KEYWAY_DRAIN_TIMEOUT_MS)';
}

/** The error event a stream still running gets. */
export function streamEnded(cause: DrainCause): KeywayError {
  return new KeywayError('not_ready', { detail: `Keyway is shutting down: the stream was ended ${endedBy(cause)}.` });
}

/**
 * The answer of a request the drain ended before its upstream answered: 503 `not_ready`, which the
 * official SDKs retry (`x-should-retry: true` says so to any client, `Retry-After: 1` how soon), on a
 * new connection (`Connection: close`), so behind a balancer the retry reaches an instance that serves.
 */
export class DrainEnded extends KeywayError {
  constructor(readonly drainCause: DrainCause) {
    super(
      'not_ready',
      { detail: `Keyway is shutting down: the request was ended ${endedBy(drainCause)} before its answer came. Send it again.` },
      { retryAfterSeconds: 1, headers: { 'x-should-retry': 'true', connection: 'close' } },
    );
  }
}

/**
 * One request's part in the drain, while it waits for an upstream: the controller it follows (its
 * attempt's, or its backoff's) is aborted with a DrainEnded when the drain ends requests, and
 * `failure` says the request must not go on. Created per request by runAttempts; `dispose` once the
 * answer is in hand (a stream is then watched by streamAnswer).
 */
export class DrainStop {
  failure: DrainEnded | undefined;
  private followed: AbortController | undefined;
  private readonly unwatch: (() => void) | undefined;

  constructor(drain: DrainWatch) {
    if (drain.expired) {
      this.failure = new DrainEnded(drain.cause ?? 'deadline');
      return;
    }
    this.unwatch = drain.watch((cause) => {
      this.failure = new DrainEnded(cause);
      this.followed?.abort(this.failure);
    });
  }

  /** The controller to abort at the drain: aborted at once when the drain already ended requests. */
  follow(controller: AbortController): void {
    this.followed = controller;
    if (this.failure !== undefined) controller.abort(this.failure);
  }

  dispose(): void {
    this.unwatch?.();
    this.followed = undefined;
  }
}
