// Counters in this process's memory: exact for one instance, the default. Expired entries are
// dropped when touched and by a sweep every minute, so idle keys do not accumulate.

import type { Counters, Reservation, ReserveOptions, SeedEntry } from '../spec/counters.ts';
import type { Clock } from '../spec/services.ts';

interface Entry {
  value: number;
  expiresAt: number;
  /** Marked by `seed`: the counter holds what the store had booked (core/spec/counters.ts). */
  seeded: boolean;
}

const SWEEP_INTERVAL_MS = 60_000;

export class MemoryCounters implements Counters {
  readonly name = 'memory';
  private readonly values = new Map<string, Entry>();
  private readonly cooldowns = new Map<string, number>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly clock: Clock = { now: () => Date.now() }) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref?.();
  }

  private live(key: string): Entry | undefined {
    const entry = this.values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.values.delete(key);
      return undefined;
    }
    return entry;
  }

  reserve(key: string, amount: number, limit: number, expiresAt: number, options?: ReserveOptions): Reservation {
    const entry = this.live(key);
    const total = entry?.value ?? 0;
    if (options?.seeded === true && entry?.seeded !== true) return { ok: false, total, unseeded: true };
    if (total + amount > limit) return { ok: false, total };
    this.store(key, total + amount, expiresAt, entry);
    return { ok: true, total: total + amount };
  }

  adjust(key: string, delta: number, expiresAt: number): number {
    const entry = this.live(key);
    const total = Math.max(0, (entry?.value ?? 0) + delta);
    this.store(key, total, expiresAt, entry);
    return total;
  }

  get(key: string): number {
    return this.live(key)?.value ?? 0;
  }

  seed(entries: readonly SeedEntry[], expiresAt: number): number {
    let seeded = 0;
    for (const { key, amount } of entries) {
      const entry = this.live(key);
      if (entry?.seeded === true) continue;
      this.store(key, (entry?.value ?? 0) + amount, expiresAt, entry);
      (this.values.get(key) as Entry).seeded = true;
      seeded += 1;
    }
    return seeded;
  }

  hit(key: string, amount: number, windowMs: number): number {
    const now = this.clock.now();
    const windowStart = now - (now % windowMs);
    const windowKey = `${key}\u0000${windowStart}`;
    return this.adjust(windowKey, amount, windowStart + windowMs);
  }

  coolDown(key: string, until: number): void {
    const current = this.cooldowns.get(key);
    if (current === undefined || until > current) this.cooldowns.set(key, until);
  }

  coolingUntil(key: string): number | undefined {
    const until = this.cooldowns.get(key);
    if (until === undefined) return undefined;
    if (until <= this.clock.now()) {
      this.cooldowns.delete(key);
      return undefined;
    }
    return until;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private store(key: string, value: number, expiresAt: number, entry: Entry | undefined): void {
    if (entry === undefined) this.values.set(key, { value, expiresAt, seeded: false });
    else {
      entry.value = value;
      // A later expiry wins: a settlement never shortens the life of a day's budget.
      entry.expiresAt = Math.max(entry.expiresAt, expiresAt);
    }
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.values) if (entry.expiresAt <= now) this.values.delete(key);
    for (const [key, until] of this.cooldowns) if (until <= now) this.cooldowns.delete(key);
  }
}
