// Error-rate windows over the whole account's traffic. Each process counts its own requests per minute
// in memory (ErrorWindows, O(1) on the request path, nothing awaited) and a background job adds what it
// counted to the shared counters once a second (`services.counters`: the primary's for the workers of
// one instance, Redis across instances), so the one process that judges the alerts under the cluster
// lease reads every worker's and every instance's minutes. Why not the usage rows: a request that no
// provider served (a 500 from Google) is booked with no provider (core/accounting/usage-row.ts), so the
// rows cannot say that Google failed it; the window counts it on the provider it was routed to.

import type { Services } from '../../core/spec/services.ts';
import { type ErrorWindows, MINUTE_MS, MINUTES, type MinuteCounts } from './tally.ts';

/** How often each process adds its counts to the shared counters: the lag of another worker's requests in a window. */
export const SHARE_INTERVAL_MS = 1_000;

export interface WindowCounts {
  requests: number;
  errors: number;
}

function accountOf(windowKey: string): string {
  return windowKey.split('\u0000')[0] ?? '';
}

/** `alerts:<requests|errors>:<provider or *>:<minute>:<account>`; provider names hold no `:`, so no two windows share a key. */
function counterKey(what: 'requests' | 'errors', windowKey: string, minute: number): string {
  const [accountId = '', provider = '*'] = windowKey.split('\u0000');
  return `alerts:${what}:${provider}:${minute}:${accountId}`;
}

export class SharedErrorWindows {
  /** The first minute the next share looks at: the one before the last share's (counts may still have come in), or an older one a failure left. */
  private nextFrom = Number.NEGATIVE_INFINITY;
  /** When a failed share was last logged: a Redis outage would otherwise log once a second per process. */
  private loggedFailureAt = Number.NEGATIVE_INFINITY;

  /**
   * `windowOf` answers the longest `window_minutes` of the account's error_rate rules, or undefined when it
   * has none: only those accounts' counts are shared, and only for as long as a window can reach them,
   * so the shared counters hold a few keys per minute per account that asked, not per account served.
   */
  constructor(
    private readonly services: Services,
    private readonly windows: ErrorWindows,
    private readonly windowOf: (accountId: string) => number | undefined,
  ) {}

  /**
   * Adds this process's counts since the last share to the shared counters; counts they refuse are
   * tried again next time (a warning says so, at most once a minute). Never rejects.
   */
  async share(): Promise<void> {
    const now = this.services.clock.now();
    const minute = Math.floor(now / MINUTE_MS);
    const taken = this.windows.take(this.nextFrom, now).filter((counts) => this.windowOf(accountOf(counts.key)) !== undefined);
    this.nextFrom = minute - 1;
    if (taken.length === 0) return;
    // A minute's counters live as long as the account's longest window can still reach it.
    const expiresAt = (counts: MinuteCounts) => (counts.minute + 1 + Math.min(this.windowOf(accountOf(counts.key)) ?? MINUTES, MINUTES)) * MINUTE_MS;
    const counters = this.services.counters;
    const results = await Promise.allSettled(
      taken.flatMap((counts) => [
        Promise.resolve(counters.adjust(counterKey('requests', counts.key, counts.minute), counts.requests, expiresAt(counts))).then(() => ({
          ...counts,
          errors: 0,
        })),
        Promise.resolve(counters.adjust(counterKey('errors', counts.key, counts.minute), counts.errors, expiresAt(counts))).then(() => ({
          ...counts,
          requests: 0,
        })),
      ]),
    );
    let failure: unknown;
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      failure = result.reason;
      const counts = taken[index >> 1] as MinuteCounts;
      this.windows.giveBack(index % 2 === 0 ? { ...counts, errors: 0 } : { ...counts, requests: 0 });
      this.nextFrom = Math.min(this.nextFrom, counts.minute);
    });
    if (failure === undefined || now - this.loggedFailureAt < MINUTE_MS) return;
    this.loggedFailureAt = now;
    this.services.logger.warn(
      { error: this.services.errors.redact(String(failure)) },
      "this process's request counts could not be added to the shared error-rate windows; they are tried again",
    );
  }

  /**
   * Requests and errors over the last `minutes` minutes (the current one included) across every process.
   * Should the shared counters not answer, or hold less than this process counted itself (Redis lost its
   * data), this process's own window stands in: a lower bound either way.
   */
  async sum(windowKey: string, minutes: number, epochMs: number): Promise<WindowCounts> {
    const own = this.windows.sum(windowKey, minutes, epochMs);
    const now = Math.floor(epochMs / MINUTE_MS);
    const wanted = Array.from({ length: Math.min(minutes, MINUTES) }, (_, back) => now - back);
    const counters = this.services.counters;
    try {
      const [requests, errors] = await Promise.all(
        (['requests', 'errors'] as const).map(async (what) => {
          const values = await Promise.all(wanted.map((minute) => counters.get(counterKey(what, windowKey, minute))));
          return values.reduce((total, value) => total + value, 0);
        }),
      );
      const shared = { requests: requests ?? 0, errors: errors ?? 0 };
      return shared.requests >= own.requests ? shared : own;
    } catch (error) {
      this.services.logger.warn(
        { error: this.services.errors.redact(String(error)) },
        "the shared error-rate counts could not be read; this process's own requests are judged",
      );
      return own;
    }
  }
}
