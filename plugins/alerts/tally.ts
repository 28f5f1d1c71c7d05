// What the request path feeds the alerts, in memory and O(1) per request: each cost rule's spend in its
// current period (so a threshold fires within seconds, before the usage batch reaches the roll-up),
// and per-minute request and error counts per account and provider for error-rate windows.

const MINUTES = 1440;
const MINUTE_MS = 60_000;

/** Spend per rule and period, counted by this process since it started. */
export class CostTally {
  private readonly totals = new Map<string, { period: string; usd: number }>();

  add(ruleId: string, period: string, usd: number): number {
    const entry = this.totals.get(ruleId);
    if (entry === undefined || entry.period !== period) {
      this.totals.set(ruleId, { period, usd });
      return usd;
    }
    entry.usd += usd;
    return entry.usd;
  }

  get(ruleId: string, period: string): number {
    const entry = this.totals.get(ruleId);
    return entry !== undefined && entry.period === period ? entry.usd : 0;
  }

  forget(ruleId: string): void {
    this.totals.delete(ruleId);
  }
}

interface MinuteRing {
  minute: Float64Array;
  requests: Uint32Array;
  errors: Uint32Array;
}

/** A day of per-minute counts per key (`account\0provider`, and `account\0*` for all providers). */
export class ErrorWindows {
  private readonly rings = new Map<string, MinuteRing>();

  record(key: string, failed: boolean, epochMs: number): void {
    let ring = this.rings.get(key);
    if (ring === undefined) {
      ring = { minute: new Float64Array(MINUTES).fill(-1), requests: new Uint32Array(MINUTES), errors: new Uint32Array(MINUTES) };
      this.rings.set(key, ring);
    }
    const minute = Math.floor(epochMs / MINUTE_MS);
    const slot = minute % MINUTES;
    if (ring.minute[slot] !== minute) {
      ring.minute[slot] = minute;
      ring.requests[slot] = 0;
      ring.errors[slot] = 0;
    }
    ring.requests[slot] = (ring.requests[slot] ?? 0) + 1;
    if (failed) ring.errors[slot] = (ring.errors[slot] ?? 0) + 1;
  }

  /** Requests and errors over the last `minutes` minutes, the current one included. */
  sum(key: string, minutes: number, epochMs: number): { requests: number; errors: number } {
    const ring = this.rings.get(key);
    if (ring === undefined) return { requests: 0, errors: 0 };
    const now = Math.floor(epochMs / MINUTE_MS);
    let requests = 0;
    let errors = 0;
    for (let minute = now - Math.min(minutes, MINUTES) + 1; minute <= now; minute++) {
      const slot = minute % MINUTES;
      if (ring.minute[slot] !== minute) continue;
      requests += ring.requests[slot] ?? 0;
      errors += ring.errors[slot] ?? 0;
    }
    return { requests, errors };
  }
}
