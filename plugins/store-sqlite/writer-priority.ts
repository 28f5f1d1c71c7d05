// The usage writer's share of a busy core. Its work (decoding the journal, the INSERTs, the roll-up
// sums) is background work: every row it writes is already safe in the usage journal, and nothing on
// the request path reads what it writes. So it runs under SCHED_IDLE, on CPU time no request wants:
// under a burst that saturates the core it waits, and catches up as soon as the core has time to
// spare. It may wait only so long: once a batch's oldest row has waited `lagMs` (a saturation that
// lasts), the thread is raised to SCHED_BATCH, its ordinary share, until it has caught up, so
// analytics, alerts and `GET /v1/usage/me` lag by about `lagMs` at worst, and the journal cannot grow
// without bound. bench/RESULTS.md (session 11) has the figures; docs/configuration.md the settings.

import { SCHED_BATCH, SCHED_IDLE } from '../../core/process/thread-scheduling.ts';

export type WriterPolicy = typeof SCHED_BATCH | typeof SCHED_IDLE;

export interface WriterPriorityOptions {
  /** How long a row may wait for spare CPU before the writer takes its ordinary share. */
  lagMs: number;
  /** Sets the writer thread's policy; false where it could not (the writer then stays as it is). */
  setPolicy: (policy: WriterPolicy) => Promise<boolean>;
  now?: () => number;
  /** How often a raise is considered while batches are outstanding. */
  checkEveryMs?: number;
}

export class WriterPriority {
  /** Outstanding batches: when their oldest row was booked (epoch milliseconds). */
  private readonly outstanding = new Map<number, number>();
  private raised = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: WriterPriorityOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A batch went to the writer; `oldestAt` is when its oldest row was booked, if known. */
  sent(id: number, oldestAt: number | undefined): void {
    const now = this.now();
    this.outstanding.set(id, oldestAt !== undefined && Number.isFinite(oldestAt) ? Math.min(oldestAt, now) : now);
    this.check();
    if (this.timer === undefined && !this.raised) {
      this.timer = setInterval(() => this.check(), this.options.checkEveryMs ?? 250);
      this.timer.unref();
    }
  }

  /** The writer finished a batch (written or failed). */
  done(id: number): void {
    this.outstanding.delete(id);
    if (this.outstanding.size > 0) return;
    this.stopTimer();
    if (this.raised) {
      this.raised = false;
      void this.options.setPolicy(SCHED_IDLE);
    }
  }

  /** Whether the writer currently runs with its ordinary share. */
  get isRaised(): boolean {
    return this.raised;
  }

  close(): void {
    this.stopTimer();
    this.outstanding.clear();
  }

  private check(): void {
    if (this.raised || this.outstanding.size === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const at of this.outstanding.values()) if (at < oldest) oldest = at;
    if (this.now() - oldest < this.options.lagMs) return;
    this.raised = true;
    this.stopTimer();
    void this.options.setPolicy(SCHED_BATCH);
  }

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
