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
// A request parked in a plugin's hook (an approval's `Prefer: wait`, a third-party plugin waiting on
// something of its own) is ended too: the core races an asynchronous hook stage against the drain
// (`untilDrainEnds`, run by core/lifecycle/runner.ts), so a hook that ignores the shutdown still
// cannot hold it past the deadline. Hooks learn of the shutdown through `services.shutdown`
// (ShutdownSignals, core/spec/services.ts): `draining` at its start, for a wait that only a person or
// another instance ends (nothing in progress to finish: the approvals plugin ends its wait there),
// `ended` at the deadline. Each signal's reason is the DrainEnded to throw. Before this, such a request
// held the shutdown for as long as the hook waited (up to a minute for an approval) and no signal
// ended it.
//
// A Set of callbacks rather than an AbortSignal for requests: a signal's listeners are removed by a
// linear search, which costs tens of microseconds per request once thousands are open. The two
// AbortSignals are for plugins, whose waits are few.

import { KeywayError } from '../errors.ts';
import type { ShutdownSignals } from '../spec/services.ts';

/** What ended the requests in flight: the drain deadline, or a second shutdown signal. */
export type DrainCause = 'deadline' | 'signal';

/** What ended a request: the two above, or the shutdown's start (a hook's wait that cannot finish meaningfully). */
export type DrainEndCause = DrainCause | 'start';

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
  private readonly draining = new AbortController();
  private readonly ending = new AbortController();
  /** What plugins are handed as `services.shutdown`: aborted at the drain's start and at its end. */
  readonly signals: ShutdownSignals = { draining: this.draining.signal, ended: this.ending.signal };

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

  /** Arms the deadline `afterMs` from now, and tells the plugins the drain began; a second call changes nothing. */
  start(afterMs: number): void {
    if (!this.draining.signal.aborted) this.draining.abort(new DrainEnded('start'));
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
    if (!this.draining.signal.aborted) this.draining.abort(new DrainEnded(cause));
    this.ending.abort(new DrainEnded(cause));
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

/** What a request ended by `cause` is told. */
function drainEndedDetail(cause: DrainEndCause): string {
  if (cause === 'start') {
    return 'Keyway is shutting down: the request was ended as the shutdown began, while it waited for something that may take longer than the shutdown allows. Send it again.';
  }
  return `Keyway is shutting down: the request was ended ${endedBy(cause)} before its answer came. Send it again.`;
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
  constructor(readonly drainCause: DrainEndCause) {
    super('not_ready', { detail: drainEndedDetail(drainCause) }, { retryAfterSeconds: 1, headers: { 'x-should-retry': 'true', connection: 'close' } });
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

/**
 * A hook stage still running (a plugin's hook went asynchronous), ended with a DrainEnded when the
 * drain ends requests: the request is then answered 503 `not_ready` whatever the hook goes on doing
 * (its later result is dropped, its failure handled). Only a request whose hooks went asynchronous
 * pays for it: one promise and one watcher, next to what the asynchronous hook allocates itself.
 */
export function untilDrainEnds(pending: Promise<void>, drain: DrainWatch): Promise<void> {
  if (drain.expired) {
    pending.catch(() => undefined);
    return Promise.reject(new DrainEnded(drain.cause ?? 'deadline'));
  }
  return new Promise<void>((resolve, reject) => {
    const unwatch = drain.watch((cause) => reject(new DrainEnded(cause)));
    pending.then(
      () => {
        unwatch();
        resolve();
      },
      (error: unknown) => {
        unwatch();
        reject(error);
      },
    );
  });
}
