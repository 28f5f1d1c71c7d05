// What the request path feeds the alerts, in memory and O(1) per request: each cost rule's spend in its
// current period (so a threshold fires within seconds, before the usage batch reaches the roll-up),
// and per-minute request and error counts per account and provider for error-rate windows, which a
// background job adds to the counters every process shares (shared-windows.ts).

export const MINUTES = 1440;
export const MINUTE_MS = 60_000;
/** Minutes whose counts can still be taken for sharing: counts the shared counters refused for longer stay this process's own. */
const TAKEN_MINUTES = 60;

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
  /** What of each slot's counts has been taken to be shared, and for which minute (the slot's own may be newer). */
  takenMinute: Float64Array;
  takenRequests: Uint32Array;
  takenErrors: Uint32Array;
}

/** Counts of one key and minute not yet added to the shared counters. */
export interface MinuteCounts {
  key: string;
  minute: number;
  requests: number;
  errors: number;
}

function newRing(): MinuteRing {
  return {
    minute: new Float64Array(MINUTES).fill(-1),
    requests: new Uint32Array(MINUTES),
    errors: new Uint32Array(MINUTES),
    takenMinute: new Float64Array(TAKEN_MINUTES).fill(-1),
    takenRequests: new Uint32Array(TAKEN_MINUTES),
    takenErrors: new Uint32Array(TAKEN_MINUTES),
  };
}

/** A day of per-minute counts per key (`account\0provider`, and `account\0*` for all providers). */
export class ErrorWindows {
  private readonly rings = new Map<string, MinuteRing>();

  record(key: string, failed: boolean, epochMs: number): void {
    let ring = this.rings.get(key);
    if (ring === undefined) {
      ring = newRing();
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

  /**
   * What was recorded in the minutes from `fromMinute` to the current one and not taken before, marked
   * as taken. Off the request path (once a second): the ring is read, never changed by `record`'s side.
   */
  take(fromMinute: number, epochMs: number): MinuteCounts[] {
    const now = Math.floor(epochMs / MINUTE_MS);
    const taken: MinuteCounts[] = [];
    for (const [key, ring] of this.rings) {
      for (let minute = Math.max(fromMinute, now - TAKEN_MINUTES + 1); minute <= now; minute++) {
        const slot = minute % MINUTES;
        const takenSlot = minute % TAKEN_MINUTES;
        if (ring.minute[slot] !== minute) continue;
        if (ring.takenMinute[takenSlot] !== minute) {
          ring.takenMinute[takenSlot] = minute;
          ring.takenRequests[takenSlot] = 0;
          ring.takenErrors[takenSlot] = 0;
        }
        const requests = (ring.requests[slot] ?? 0) - (ring.takenRequests[takenSlot] ?? 0);
        const errors = (ring.errors[slot] ?? 0) - (ring.takenErrors[takenSlot] ?? 0);
        if (requests === 0 && errors === 0) continue;
        ring.takenRequests[takenSlot] = ring.requests[slot] ?? 0;
        ring.takenErrors[takenSlot] = ring.errors[slot] ?? 0;
        taken.push({ key, minute, requests, errors });
      }
    }
    return taken;
  }

  /** Gives back counts `take` handed out that the shared counters did not accept, so the next `take` has them again. */
  giveBack(counts: MinuteCounts): void {
    const ring = this.rings.get(counts.key);
    const slot = counts.minute % TAKEN_MINUTES;
    if (ring === undefined || ring.takenMinute[slot] !== counts.minute) return;
    ring.takenRequests[slot] = (ring.takenRequests[slot] ?? 0) - counts.requests;
    ring.takenErrors[slot] = (ring.takenErrors[slot] ?? 0) - counts.errors;
  }
}
