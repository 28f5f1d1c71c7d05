// What the request path feeds the alerts, in memory and O(1) per request: each cost rule's spend in its
// current period, aligned with the store's figure at every judgement (so a threshold fires within
// seconds, before the usage batch reaches the roll-up, even when most of the spend was booked before
// this process started or by another one), and per-minute request and error counts per account and
// provider for error-rate windows, which a background job adds to the counters every process shares
// (shared-windows.ts).

export const MINUTES = 1440;
export const MINUTE_MS = 60_000;
/** Minutes whose counts can still be taken for sharing: counts the shared counters refused for longer stay this process's own. */
const TAKEN_MINUTES = 60;

interface TallyEntry {
  period: string;
  /** What this process booked in the period since it started: a lower bound of the period's spend. */
  own: number;
  /** The period's spend as last judged from the store (here, or by another process: `align`). */
  judged: number;
  /** What this process booked between the judgement before last and the last one. */
  previous: number;
  /** What this process booked since the last judgement. */
  current: number;
}

/**
 * Spend per cost rule and period, for the request path's trigger. `add` answers an estimate of the
 * period's whole spend: the last judged figure (the usage roll-up, which holds what earlier processes,
 * other workers and other instances wrote) plus what this process booked since the judgement before
 * last. Rows booked just before a judgement may not have been written when it read the store, so the
 * interval before the last judgement is counted too: the overlap can count one interval's own spend
 * twice, and an estimate too high only costs an early judgement; one too low would miss a crossing
 * until the next periodic pass. Until the first judgement the estimate is this process's own spend.
 */
export class CostTally {
  private readonly entries = new Map<string, TallyEntry>();

  private entry(ruleId: string, period: string): TallyEntry {
    let entry = this.entries.get(ruleId);
    if (entry === undefined || entry.period !== period) {
      entry = { period, own: 0, judged: 0, previous: 0, current: 0 };
      this.entries.set(ruleId, entry);
    }
    return entry;
  }

  /** Adds a booked cost; answers the estimate of the period's spend. */
  add(ruleId: string, period: string, usd: number): number {
    const entry = this.entry(ruleId, period);
    entry.own += usd;
    entry.current += usd;
    return entry.judged + entry.previous + entry.current;
  }

  /** What this process booked in the period since it started. */
  own(ruleId: string, period: string): number {
    const entry = this.entries.get(ruleId);
    return entry !== undefined && entry.period === period ? entry.own : 0;
  }

  /** The estimate `add` would answer, without adding. */
  estimate(ruleId: string, period: string): number {
    const entry = this.entries.get(ruleId);
    return entry !== undefined && entry.period === period ? entry.judged + entry.previous + entry.current : 0;
  }

  /** A judgement read the period's spend from the store: the estimate starts again from it. */
  align(ruleId: string, period: string, judgedUsd: number): void {
    // A figure of a period this process has already left (judged elsewhere just before midnight UTC)
    // must not replace the new period's count. Keys of one kind of period sort in time order.
    const current = this.entries.get(ruleId)?.period;
    if (current !== undefined && current.length === period.length && current > period) return;
    const entry = this.entry(ruleId, period);
    entry.judged = judgedUsd;
    entry.previous = entry.current;
    entry.current = 0;
  }

  forget(ruleId: string): void {
    this.entries.delete(ruleId);
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
