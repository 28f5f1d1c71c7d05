// Counters in Redis, exact across every gateway that shares the server and prefix. Budgets
// (reserve, adjust) are single Lua scripts: one round trip, atomic on the server. Rate-limit windows
// and cooldowns are shared too, but when Redis is unreachable they fall back to this process's own
// memory (limits per instance, never none), while budget operations reject: a budgeted request
// fails closed rather than spend money no one can count (docs/deployment.md, "Redis").

import { RedisClient } from 'bun';
import type { Counters, Lease, Reservation, ReserveOptions, SeedEntry } from '../../core/spec/counters.ts';
import { ADJUST, COOL_DOWN, GET, HIT, LEASE_BATCH, RENEW_LEASES, RESERVE, SEED, type Script } from './scripts.ts';

export interface RedisCountersOptions {
  url: string;
  /** Every key starts with it, so several gateways (or test runs) can share one server. */
  prefix: string;
  clock: { now(): number };
  /** A command not answered within this many milliseconds fails (Redis is treated as unreachable). */
  timeoutMs: number;
  /** After a failed connection, commands fail at once for this long before the next attempt. */
  retryMs?: number;
  onStateChange?: (state: 'connected' | 'unreachable', detail: string) => void;
}

/** Redis's copy outlives the expiry by this much, so a clock a little behind still finds it. */
const GRACE_MS = 60_000;

/** Raised when Redis cannot answer; its message names the server without credentials. */
export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** Host and port of a Redis URL, without user or password: safe to log and to put in errors. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'redis (unparseable URL)';
  }
}

interface InFlight {
  startedAt: number;
  reject: (error: Error) => void;
}

/** One connection, reconnected on demand; commands never queue while it is down. */
export class Connection {
  private readonly client: RedisClient;
  private connecting: Promise<void> | undefined;
  /**
   * Commands awaiting an answer, oldest first. One watchdog checks their deadlines: a timer per
   * command (a budgeted request sends several) cost more than the command's own bookkeeping.
   */
  private readonly inFlight = new Set<InFlight>();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  /**
   * While Redis is marked unreachable, a PING on a timer: the flag (GET /ready's `degraded`) clears
   * when Redis answers, not on this instance's next budgeted request, which an idle or unbudgeted
   * instance may not get for a long time (QA15 #4).
   */
  private probe: ReturnType<typeof setInterval> | undefined;
  private probing = false;
  private failedAt = Number.NEGATIVE_INFINITY;
  private reachable = true;
  private closed = false;
  readonly where: string;

  constructor(private readonly options: Pick<RedisCountersOptions, 'url' | 'timeoutMs' | 'retryMs' | 'onStateChange'>) {
    this.where = describeRedisUrl(options.url);
    this.client = new RedisClient(options.url, {
      autoReconnect: false,
      enableOfflineQueue: false,
      connectionTimeout: options.timeoutMs,
    });
    this.client.onclose = () => {
      if (!this.closed) this.markUnreachable('connection closed');
    };
  }

  /** Whether the last command or connection attempt got an answer. */
  get isReachable(): boolean {
    return this.reachable;
  }

  private markUnreachable(reason: string): void {
    this.failedAt = Date.now();
    if (this.reachable) {
      this.reachable = false;
      this.options.onStateChange?.('unreachable', `${this.where}: ${reason}`);
      this.startProbe();
    }
  }

  private markReachable(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.stopProbe();
    this.options.onStateChange?.('connected', this.where);
  }

  private get retryMs(): number {
    return this.options.retryMs ?? 1_000;
  }

  private startProbe(): void {
    if (this.probe !== undefined || this.closed) return;
    // A few ticks per retry interval, each doing nothing until the interval since the last failure has
    // passed: Redis is tried again at most a quarter of an interval late.
    this.probe = setInterval(() => this.probeOnce(), Math.max(50, Math.floor(this.retryMs / 4)));
    // The probe must not keep a stopping process alive.
    this.probe.unref?.();
  }

  private stopProbe(): void {
    if (this.probe !== undefined) clearInterval(this.probe);
    this.probe = undefined;
  }

  private probeOnce(): void {
    if (this.reachable || this.closed) return this.stopProbe();
    if (this.probing || Date.now() - this.failedAt < this.retryMs) return;
    this.probing = true;
    // An answer marks Redis reachable (send); a failure only waits for the next tick.
    this.send('PING', [])
      .catch(() => undefined)
      .finally(() => {
        this.probing = false;
      });
  }

  private unavailable(): RedisUnavailableError {
    return new RedisUnavailableError(`Redis at ${this.where} is unreachable`);
  }

  async connect(): Promise<void> {
    if (this.client.connected) return;
    if (this.connecting !== undefined) return this.connecting;
    if (Date.now() - this.failedAt < this.retryMs) throw this.unavailable();
    this.connecting = this.client.connect().then(
      () => {
        this.connecting = undefined;
        this.markReachable();
      },
      (error: unknown) => {
        this.connecting = undefined;
        this.markUnreachable(error instanceof Error ? error.message : String(error));
        throw this.unavailable();
      },
    );
    return this.connecting;
  }

  /** Sends one command, within the timeout; any transport failure becomes RedisUnavailableError. */
  async send(command: string, args: string[]): Promise<unknown> {
    if (!this.client.connected) await this.connect();
    const entry: InFlight = { startedAt: performance.now(), reject: () => undefined };
    const answer = new Promise<unknown>((resolve, reject) => {
      entry.reject = reject;
      this.client.send(command, args).then(resolve, reject);
    });
    this.inFlight.add(entry);
    this.watch();
    try {
      const reply = await answer;
      // A command timed out on a connection that stayed open (Redis stalled, then resumed): the
      // next answer is the recovery.
      if (!this.reachable) this.markReachable();
      return reply;
    } catch (error) {
      if (error instanceof RedisUnavailableError || isServerError(error)) throw error;
      this.markUnreachable(error instanceof Error ? error.message : String(error));
      throw this.unavailable();
    } finally {
      this.inFlight.delete(entry);
    }
  }

  /** Starts the watchdog while commands are in flight; it stops itself when none are. */
  private watch(): void {
    if (this.watchdog !== undefined) return;
    const every = Math.max(5, Math.min(100, Math.floor(this.options.timeoutMs / 4)));
    this.watchdog = setInterval(() => this.expireLate(), every);
    // Waiting commands must not keep a stopping process alive.
    this.watchdog.unref?.();
  }

  private expireLate(): void {
    const now = performance.now();
    for (const entry of this.inFlight) {
      // Oldest first: the first one still in time ends the scan.
      if (now - entry.startedAt < this.options.timeoutMs) break;
      this.inFlight.delete(entry);
      this.markUnreachable(`no answer within ${this.options.timeoutMs} ms`);
      entry.reject(this.unavailable());
    }
    if (this.inFlight.size === 0 && this.watchdog !== undefined) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  /** EVALSHA, loading the script with EVAL the first time a server has not seen it. */
  async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.send('EVALSHA', [script.sha, ...tail]);
    } catch (error) {
      if (!isServerError(error) || !String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return this.send('EVAL', [script.source, ...tail]);
    }
  }

  close(): void {
    this.closed = true;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.stopProbe();
    this.client.close();
  }
}

export function isServerError(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_REDIS_SERVER_ERROR';
}

/** What rate limits and cooldowns use while Redis is unreachable: this process's memory. */
class LocalFallback {
  private readonly windows = new Map<string, { total: number; endsAt: number }>();
  private readonly cooldowns = new Map<string, number>();

  hit(key: string, amount: number, endsAt: number, now: number): number {
    const current = this.windows.get(key);
    const total = (current !== undefined && current.endsAt > now ? current.total : 0) + amount;
    this.windows.set(key, { total, endsAt });
    if (this.windows.size > 10_000) this.sweep(now);
    return total;
  }

  coolDown(key: string, until: number): void {
    const current = this.cooldowns.get(key);
    if (current === undefined || until > current) this.cooldowns.set(key, until);
  }

  coolingUntil(key: string, now: number): number | undefined {
    const until = this.cooldowns.get(key);
    return until !== undefined && until > now ? until : undefined;
  }

  sweep(now: number): void {
    for (const [key, entry] of this.windows) if (entry.endsAt <= now) this.windows.delete(key);
    for (const [key, until] of this.cooldowns) if (until <= now) this.cooldowns.delete(key);
  }
}

interface LeaseOperation {
  /** The counter's key, as the caller named it. */
  key: string;
  /** `r …` or `s …` without the counter's index: LEASE_BATCH's line for it. */
  kind: 'r' | 's';
  fields: string;
  resolve: (reply: BatchAnswer) => void;
  reject: (error: unknown) => void;
}

/** One operation's answer from LEASE_BATCH: a reservation's code, total and leased part; a settlement's total first. */
type BatchAnswer = [string, string, string];

const MAX_HELD_LEASES = 100_000;

/** A held lease's entry in RedisCounters.members: neither part holds whitespace (the id checked when reserved, the key when batched). */
function leaseKey(key: string, leaseId: string): string {
  return `${key} ${leaseId}`;
}

export class RedisCounters implements Counters {
  readonly name = 'redis';
  private readonly connection: Connection;
  private readonly local = new LocalFallback();
  /**
   * Lease reservations and settlements of one event-loop turn, sent as one script call (LEASE_BATCH):
   * at 64 requests in flight several share a command, which is what Redis spends most on.
   */
  private pending: LeaseOperation[] = [];
  /**
   * The lease-set member of each lease this gateway holds (`<id>:<amount>`), by counter and lease id:
   * a settlement or a renewal names the member, and only the gateway that reserved a lease settles it.
   */
  private readonly members = new Map<string, string>();
  private checkedKey: string | undefined;

  constructor(private readonly options: RedisCountersOptions) {
    this.connection = new Connection(options);
  }

  /** Connects now, so a misconfigured URL shows at start; an unreachable server is retried on use. */
  async connect(): Promise<boolean> {
    try {
      await this.connection.connect();
      return true;
    } catch {
      return false;
    }
  }

  /** A counter's hash and the sorted set of its leases. */
  private counterKeys(key: string): [string, string] {
    return [`${this.options.prefix}c:${key}`, `${this.options.prefix}l:${key}`];
  }

  async reserve(key: string, amount: number, limit: number, expiresAt: number, options?: ReserveOptions): Promise<Reservation> {
    const now = this.options.clock.now();
    const reply = (await this.connection.run(RESERVE, this.counterKeys(key), [
      String(now),
      String(GRACE_MS),
      String(expiresAt),
      String(amount),
      String(limit),
      options?.seeded === true ? '1' : '0',
    ])) as [number, string, string];
    const code = Number(reply[0]);
    if (code === 2) return { ok: false, total: Number(reply[1]), unseeded: true };
    return { ok: code === 1, total: Number(reply[1]) };
  }

  async adjust(key: string, delta: number, expiresAt: number): Promise<number> {
    const now = this.options.clock.now();
    const reply = await this.connection.run(ADJUST, this.counterKeys(key), [String(now), String(GRACE_MS), String(expiresAt), String(delta)]);
    return Number(reply);
  }

  async get(key: string): Promise<number> {
    return Number(await this.connection.run(GET, this.counterKeys(key), [String(this.options.clock.now())]));
  }

  async seed(entries: readonly SeedEntry[], expiresAt: number): Promise<number> {
    if (entries.length === 0) return 0;
    const keys: string[] = [];
    const args = [String(this.options.clock.now()), String(GRACE_MS), String(expiresAt)];
    for (const { key, amount } of entries) {
      keys.push(...this.counterKeys(key));
      args.push(String(amount));
    }
    return Number(await this.connection.run(SEED, keys, args));
  }

  async reserveLease(key: string, amount: number, limit: number, expiresAt: number, lease: Lease, options?: ReserveOptions): Promise<Reservation> {
    const now = this.options.clock.now();
    // The lease set's member names the amount, so a lapse or a settlement needs nothing else (scripts.ts).
    if (/\s/.test(lease.id)) throw new Error('a lease id holds whitespace');
    const member = `${lease.id}:${amount}`;
    const held = leaseKey(key, lease.id);
    // Far more than the requests one gateway has in flight: only a lease never settled stays, and the
    // oldest such is forgotten first (its settlement then adds the spend alone; the lease lapses).
    if (this.members.size >= MAX_HELD_LEASES) this.members.delete(this.members.keys().next().value as string);
    this.members.set(held, member);
    try {
      const seeded = options?.seeded === true ? 1 : 0;
      const [code, total, leased] = await this.batched(key, 'r', `${now} ${expiresAt} ${amount} ${limit} ${member} ${lease.until} ${seeded}`);
      if (code !== '1') this.members.delete(held);
      if (code === '2') return { ok: false, total: Number(total), unseeded: true };
      return code === '1' ? { ok: true, total: Number(total) } : { ok: false, total: Number(total), leased: Number(leased) };
    } catch (error) {
      // Whether the script ran is unknown: a lease that did land lapses unrenewed.
      this.members.delete(held);
      throw error;
    }
  }

  async settleLease(key: string, leaseId: string, spent: number, expiresAt: number): Promise<number> {
    const now = this.options.clock.now();
    const held = leaseKey(key, leaseId);
    // A lease this gateway does not hold (settled already, or never granted) adds the spend alone.
    const member = this.members.get(held) ?? '-';
    this.members.delete(held);
    const [total] = await this.batched(key, 's', `${now} ${expiresAt} ${member} ${spent}`);
    return Number(total);
  }

  /** Queues a lease operation for this turn's batch; each keeps the time it was asked at. */
  private batched(key: string, kind: 'r' | 's', fields: string): Promise<BatchAnswer> {
    // The fields are numbers and a member whose lease id was checked when it was reserved; the key is
    // checked once while it stays the same (a team's day on one provider: most operations share it).
    if (key !== this.checkedKey) {
      if (/\s/.test(key)) return Promise.reject(new Error('a budget counter key holds whitespace'));
      this.checkedKey = key;
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ key, kind, fields, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.sendBatch());
    });
  }

  private sendBatch(): void {
    const operations = this.pending;
    this.pending = [];
    // Each counter once (a turn's operations mostly share one), then one line per operation.
    const counters = new Map<string, number>();
    const keys: string[] = [];
    let lines = '';
    for (const operation of operations) {
      let index = counters.get(operation.key);
      if (index === undefined) {
        index = counters.size + 1;
        counters.set(operation.key, index);
        keys.push(...this.counterKeys(operation.key));
      }
      lines += `${operation.kind} ${index} ${operation.fields}\n`;
    }
    this.connection.run(LEASE_BATCH, keys, [String(GRACE_MS), lines]).then(
      (reply) => {
        const answers = String(reply).split('\n');
        for (let index = 0; index < operations.length; index++) {
          const operation = operations[index] as LeaseOperation;
          const answer = answers[index];
          if (answer === undefined) {
            operation.reject(new Error(`the lease batch answered ${answers.length} operations, not ${operations.length}`));
            continue;
          }
          if (operation.kind === 's') {
            operation.resolve([answer, '', '']);
            continue;
          }
          // `code total leased`
          const first = answer.indexOf(' ');
          const second = answer.indexOf(' ', first + 1);
          operation.resolve([answer.slice(0, first), answer.slice(first + 1, second), answer.slice(second + 1)]);
        }
      },
      (error: unknown) => {
        for (const operation of operations) operation.reject(error);
      },
    );
  }

  async renewLeases(leases: Array<{ key: string; id: string }>, until: number): Promise<void> {
    const now = String(this.options.clock.now());
    const byKey = new Map<string, string[]>();
    for (const lease of leases) {
      const member = this.members.get(leaseKey(lease.key, lease.id));
      if (member === undefined) continue;
      const members = byKey.get(lease.key);
      if (members === undefined) byKey.set(lease.key, [member]);
      else members.push(member);
    }
    // One script per counter, sent together: Bun's client pipelines them into one round trip.
    await Promise.all([...byKey].map(([key, members]) => this.connection.run(RENEW_LEASES, [this.counterKeys(key)[1]], [now, String(until), ...members])));
  }

  async hit(key: string, amount: number, windowMs: number): Promise<number> {
    const now = this.options.clock.now();
    const windowStart = now - (now % windowMs);
    // The window's start comes first: it has no colon, so no key's suffix can imitate it.
    const windowKey = `${this.options.prefix}w:${windowStart}:${key}`;
    try {
      const reply = await this.connection.run(HIT, [windowKey], [String(amount), String(windowStart + windowMs - now + GRACE_MS)]);
      return Number(reply);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      return this.local.hit(windowKey, amount, windowStart + windowMs, now);
    }
  }

  async coolDown(key: string, until: number): Promise<void> {
    const now = this.options.clock.now();
    this.local.coolDown(key, until);
    if (until <= now) return;
    try {
      await this.connection.run(COOL_DOWN, [`${this.options.prefix}cool:${key}`], [String(until), String(Math.ceil(until - now + GRACE_MS))]);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
    }
  }

  async coolingUntil(key: string): Promise<number | undefined> {
    const now = this.options.clock.now();
    try {
      const reply = (await this.connection.send('GET', [`${this.options.prefix}cool:${key}`])) as string | null;
      if (reply === null) return undefined;
      const until = Number(reply);
      return until > now ? until : undefined;
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      return this.local.coolingUntil(key, now);
    }
  }

  reachable(): boolean {
    return this.connection.isReachable;
  }

  close(): void {
    this.connection.close();
  }
}
