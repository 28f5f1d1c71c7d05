// The counters contract: shared numbers for budgets, rate limits and cooldowns. In memory for one
// process (core/counters/memory.ts); a shared implementation (Redis) makes them exact across
// instances. Every operation is atomic on its key. Run test/conformance/counters.ts against any
// implementation.

type MaybePromise<T> = T | Promise<T>;

export interface Reservation {
  /** Whether the amount was added (the total stayed within the limit). */
  ok: boolean;
  /** The counter's total after the call (unchanged when refused). */
  total: number;
  /**
   * Set (with `ok` false, nothing added) when the call asked for a seeded counter
   * (`ReserveOptions.seeded`) and the counter is not seeded: seed it (`seed`) and ask again.
   */
  unseeded?: boolean;
  /**
   * On a refused lease reservation: what the counter's live leases hold of `total`, every process's
   * (reservations in flight, which settle to their real cost within seconds). Implementations that keep
   * leases should set it, so a refusal can tell settled spend from reservations that will clear.
   */
  leased?: number;
}

export interface ReserveOptions {
  /**
   * Reserve only on a counter `seed` has marked: otherwise answer `unseeded` and add nothing. Checked
   * in the same atomic step as the reservation, so a shared store that lost its data (a restart
   * without persistence, an eviction, a failover to a replica that was behind) is noticed on the
   * very next reservation instead of counting again from zero.
   */
  seeded?: boolean;
}

/** One counter `seed` fills: what was already spent on it (from the system of record). */
export interface SeedEntry {
  key: string;
  amount: number;
}

export interface Counters {
  readonly name: string;
  /**
   * Adds `amount` unless the total would exceed `limit`, atomically: concurrent reservations can
   * never overshoot. The counter lives until `expiresAt` (epoch milliseconds), then reads as 0.
   */
  reserve(key: string, amount: number, limit: number, expiresAt: number, options?: ReserveOptions): MaybePromise<Reservation>;
  /**
   * Adds `delta` (negative to settle below a reservation or release it); never below 0. Returns the
   * total. A later `expiresAt` than the counter's extends its life; an earlier one never shortens it.
   */
  adjust(key: string, delta: number, expiresAt: number): MaybePromise<number>;
  get(key: string): MaybePromise<number>;
  /**
   * Counts `amount` in the fixed window of `windowMs` that contains now (rate limits), returning
   * the window's total including this hit.
   */
  hit(key: string, amount: number, windowMs: number): MaybePromise<number>;
  /** Marks `key` as cooling down until `until` (epoch milliseconds); a later `until` wins. */
  coolDown(key: string, until: number): MaybePromise<void>;
  /** When the cooldown ends, or undefined when the key is not cooling down. */
  coolingUntil(key: string): MaybePromise<number | undefined>;
  /**
   * Optional, for shared implementations: a reservation held as a lease that lapses at `lease.until`
   * unless renewed, so the reservations of a crashed process free themselves. Counted in the total
   * like `reserve` while live.
   */
  reserveLease?(key: string, amount: number, limit: number, expiresAt: number, lease: Lease, options?: ReserveOptions): MaybePromise<Reservation>;
  /** Ends a lease: its amount (if still live) leaves the total and `spent` (≥ 0) is added. Returns the total. */
  settleLease?(key: string, leaseId: string, spent: number, expiresAt: number): MaybePromise<number>;
  /** Extends live leases to `until`; one that already lapsed stays released. */
  renewLeases?(leases: Array<{ key: string; id: string }>, until: number): MaybePromise<void>;
  /**
   * Optional (every built-in implementation has it; the cost cap needs it to notice lost data): adds
   * each entry's amount to its counter and marks the counter seeded, unless it is seeded already (then
   * it is left alone), atomically, so concurrent seeders add once. A counter that expired or whose data
   * is gone reads as not seeded again. Returns how many counters this call seeded.
   */
  seed?(entries: readonly SeedEntry[], expiresAt: number): MaybePromise<number>;
  close?(): MaybePromise<void>;
  /**
   * Optional, for shared implementations: whether the shared server answered the last command. GET
   * /ready reports it (as degraded, still ready: every instance shares the server, so taking them out
   * of the balancer would turn a budget outage into a full one).
   */
  reachable?(): boolean;
}

export interface Lease {
  id: string;
  until: number;
}

export interface CountersDriver {
  name: string;
  accepts(url: string): boolean;
  /**
   * The URL schemes `accepts` takes, as an operator writes them (`redis://`, `rediss://`). Optional
   * (older drivers lack it); when KEYWAY_REDIS_URL is refused because no driver accepts it, the start
   * names these, so the operator learns what would work without core keeping a list of its own.
   */
  schemes?: readonly string[];
  /** `clock` is the gateway's; a shared implementation may use its server's time instead. */
  open(url: string, options: { clock: { now(): number } }): Promise<Counters>;
}
