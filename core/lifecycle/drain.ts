// The shutdown drain's deadline for streams. At SIGTERM the server stops taking requests and waits
// for those in flight; a stream can run for minutes, so in-flight streams are given until
// KEYWAY_DRAIN_TIMEOUT_MS and then end with an error event in their dialect (streamAnswer in
// core/lifecycle/respond.ts watches this). They are booked once, like any stream, with estimated
// usage when the provider had not sent its own yet. A second signal ends them at once.
//
// A Set of callbacks rather than an AbortSignal: a signal's listeners are removed by a linear
// search, which costs tens of microseconds per stream once thousands are open.

/** What a stream watches: `watch` returns the function that stops watching. */
export interface DrainWatch {
  readonly expired: boolean;
  watch(end: () => void): () => void;
}

export class DrainDeadline implements DrainWatch {
  private readonly watchers = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private done = false;

  get expired(): boolean {
    return this.done;
  }

  watch(end: () => void): () => void {
    this.watchers.add(end);
    return () => {
      this.watchers.delete(end);
    };
  }

  /** Arms the deadline `afterMs` from now; a second call changes nothing. */
  start(afterMs: number): void {
    if (this.timer !== undefined || this.done) return;
    if (afterMs <= 0) {
      this.expire();
      return;
    }
    this.timer = setTimeout(() => this.expire(), afterMs);
    this.timer.unref?.();
  }

  /** Ends in-flight streams now. */
  expire(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.done) return;
    this.done = true;
    for (const end of [...this.watchers]) {
      try {
        end();
      } catch {
        // One stream failing to end must not keep the others running.
      }
    }
    this.watchers.clear();
  }

  /** The drain finished before the deadline: the timer is no longer needed. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}
