// Fair shares of the process's upstream connections. Every upstream attempt holds two slots from its
// start until its answer is complete (a stream: until it ends, fails or is cancelled): one of its
// account's, one of its upstream origin's. An account may hold at most `perAccount` of them, an
// upstream at most `perUpstream`; beyond that attempts wait in FIFO order, for at most their queue
// timeout, and are then refused with Keyway's own 503 `gateway_busy`, which no provider's health
// ever sees.
//
// The uncontended path is a counter check: `tryAcquire` is synchronous, allocates nothing and makes
// no promise. Only a waiting attempt gets a promise, a queue entry and a deadline on the shared
// deadline ticker.
//
// Waiting happens in two stages: first for an account slot, then (holding it) for an upstream slot.
// Slots are always taken in that order, and an upstream slot never waits for an account slot, so no
// cycle can form; and an account's waiters count against its own share, so one account's backlog on
// a congested upstream cannot crowd other accounts out of that upstream's queue beyond its share.

import { KeywayError } from '../errors.ts';
import type { ProviderAdapter, RouteCandidate } from '../spec/plugin.ts';
import { scheduleDeadline, type DeadlineHandle } from './deadlines.ts';

export type SlotScope = 'account' | 'upstream';

/** One account's or one upstream origin's slots and queue. */
export interface SlotPool {
  readonly scope: SlotScope;
  /** The account id, or the upstream's origin (scheme, host and port: never a path or credentials). */
  readonly name: string;
  readonly limit: number;
  inFlight: number;
  /** Attempts waiting in this pool's queue now (those that gave up excluded). */
  waiting: number;
  queuedTotal: number;
  timedOutTotal: number;
  /** Provider names seen using this upstream (upstream pools only). */
  readonly providers: Set<string>;
  /** FIFO: entries before `head` are consumed; entries of waiters that gave up are skipped. */
  queue: Waiter[];
  head: number;
}

const STAGE_ACCOUNT = 0;
const STAGE_UPSTREAM = 1;
const STAGE_SETTLED = 2;

interface Waiter {
  account: SlotPool;
  upstream: SlotPool;
  /** Which queue it is in: account, upstream, or none any more (granted, timed out, gone). */
  stage: number;
  enqueuedAt: number;
  settle: (refusal: KeywayError | undefined) => void;
  deadline: DeadlineHandle | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** For the refusal's message. */
  provider: string;
}

export interface UpstreamSlotsOptions {
  perAccount: number;
  perUpstream: number;
  /** The longest any attempt waits; an attempt's own first-byte deadline can make it shorter. */
  queueTimeoutMs: number;
  /** The process's fetch connection limit, reported alongside. */
  connections?: number;
  /** For `KEYWAY_<PROVIDER>_BASE_URL`: the address a provider uses when its key names none. */
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => number;
  /** How far back the wait percentiles look. */
  waitWindowMs?: number;
}

const WAIT_SAMPLES = 4096;
const DEFAULT_WAIT_WINDOW_MS = 60_000;
/** What a refused client is told to wait before retrying. */
const BUSY_RETRY_AFTER_SECONDS = 1;

export interface PoolReport {
  name: string;
  in_flight: number;
  limit: number;
  queued: number;
  queued_total: number;
  timed_out_total: number;
  providers?: string[];
}

export interface ConnectionsReport {
  limits: { upstream_connections: number | null; per_account: number; per_upstream: number; queue_timeout_ms: number };
  in_flight: number;
  queued: number;
  acquired_total: number;
  queued_total: number;
  timed_out_total: number;
  abandoned_total: number;
  /** Time spent queued by attempts that had to wait (granted or timed out), over the window. */
  wait_ms: { window_seconds: number; samples: number; p50: number | null; p99: number | null; max: number | null };
  accounts: PoolReport[];
  upstreams: PoolReport[];
}

function newPool(scope: SlotScope, name: string, limit: number): SlotPool {
  return { scope, name, limit, inFlight: 0, waiting: 0, queuedTotal: 0, timedOutTotal: 0, providers: new Set(), queue: [], head: 0 };
}

function originOf(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

export class UpstreamSlots {
  readonly perAccount: number;
  readonly perUpstream: number;
  readonly queueTimeoutMs: number;
  private readonly accounts = new Map<string, SlotPool>();
  /** By provider name (no `base_url` on the key) and by a key's `base_url`: both lead to an origin's pool. */
  private readonly byProvider = new Map<string, SlotPool>();
  private readonly byBaseUrl = new Map<string, SlotPool>();
  private readonly byOrigin = new Map<string, SlotPool>();
  private readonly now: () => number;
  private readonly waitTimes = new Float64Array(WAIT_SAMPLES);
  private readonly waitStamps = new Float64Array(WAIT_SAMPLES);
  private waitCursor = 0;
  private waitCount = 0;
  private inFlightTotal = 0;
  private waitingTotal = 0;
  private acquiredTotal = 0;
  private queuedTotal = 0;
  private timedOutTotal = 0;
  private abandonedTotal = 0;

  constructor(private readonly options: UpstreamSlotsOptions) {
    this.perAccount = Math.max(1, Math.floor(options.perAccount));
    this.perUpstream = Math.max(1, Math.floor(options.perUpstream));
    this.queueTimeoutMs = Math.max(1, options.queueTimeoutMs);
    this.now = options.now ?? (() => performance.now());
  }

  account(accountId: string): SlotPool {
    let pool = this.accounts.get(accountId);
    if (pool === undefined) {
      pool = newPool('account', accountId, this.perAccount);
      this.accounts.set(accountId, pool);
    }
    return pool;
  }

  /**
   * The pool of the origin a candidate's calls go to: its key's `base_url`, else the provider's
   * `KEYWAY_<PROVIDER>_BASE_URL`, else its default address. (A base URL set in a provider plugin's
   * own configuration is not visible here; such a provider gets the pool of its default address.)
   */
  upstream(candidate: RouteCandidate, adapter: ProviderAdapter): SlotPool {
    const baseUrl = candidate.key.settings.base_url;
    if (typeof baseUrl === 'string') {
      const pool = this.byBaseUrl.get(baseUrl);
      if (pool !== undefined) return pool;
      return this.remember(this.byBaseUrl, baseUrl, originOf(baseUrl) ?? `provider:${adapter.name}`, adapter.name);
    }
    const pool = this.byProvider.get(adapter.name);
    if (pool !== undefined) return pool;
    const configured = this.options.env?.[`KEYWAY_${adapter.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_BASE_URL`];
    const origin = (configured ? originOf(configured) : undefined) ?? originOf(adapter.defaultBaseUrl) ?? `provider:${adapter.name}`;
    return this.remember(this.byProvider, adapter.name, origin, adapter.name);
  }

  private remember(cache: Map<string, SlotPool>, key: string, origin: string, provider: string): SlotPool {
    let pool = this.byOrigin.get(origin);
    if (pool === undefined) {
      pool = newPool('upstream', origin, this.perUpstream);
      this.byOrigin.set(origin, pool);
    }
    pool.providers.add(provider);
    // A bounded cache: keys' base URLs come and go with provider keys.
    if (cache.size >= 10_000) cache.clear();
    cache.set(key, pool);
    return pool;
  }

  /**
   * An attempt's way in: both slots for the candidate's account and upstream. Returns the function
   * that gives them back (idempotent: call it on every path) synchronously when they are free;
   * otherwise a promise of it, or of the refusal, after waiting at most the queue timeout or
   * `deadlineMs` (the attempt's first-byte deadline), whichever is shorter.
   */
  enter(
    accountId: string,
    candidate: RouteCandidate,
    adapter: ProviderAdapter,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): (() => void) | Promise<(() => void) | KeywayError> {
    const account = this.account(accountId);
    const upstream = this.upstream(candidate, adapter);
    if (this.tryAcquire(account, upstream)) return this.releaser(account, upstream);
    return this.acquire(account, upstream, Math.min(this.queueTimeoutMs, deadlineMs), signal, adapter.name).then(
      (refusal) => refusal ?? this.releaser(account, upstream),
    );
  }

  private releaser(account: SlotPool, upstream: SlotPool): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.release(account, upstream);
    };
  }

  /** Takes both slots if both are free and nobody waits for either: synchronous, no allocation, no promise. */
  tryAcquire(account: SlotPool, upstream: SlotPool): boolean {
    if (account.inFlight >= account.limit || account.waiting > 0 || upstream.inFlight >= upstream.limit || upstream.waiting > 0) return false;
    account.inFlight++;
    upstream.inFlight++;
    this.inFlightTotal++;
    this.acquiredTotal++;
    return true;
  }

  /**
   * Waits in line for both slots. Resolves with undefined once they are held (release them with
   * `release`), or with the refusal: `gateway_busy` after `timeoutMs`, or the client's departure
   * when `signal` aborts. Never rejects. Call it after `tryAcquire` failed.
   */
  acquire(account: SlotPool, upstream: SlotPool, timeoutMs: number, signal?: AbortSignal, provider = ''): Promise<KeywayError | undefined> {
    if (this.tryAcquire(account, upstream)) return Promise.resolve(undefined);
    if (signal?.aborted) return Promise.resolve(clientGone());
    return new Promise<KeywayError | undefined>((settle) => {
      const waiter: Waiter = {
        account,
        upstream,
        stage: STAGE_ACCOUNT,
        enqueuedAt: this.now(),
        settle,
        deadline: undefined,
        signal,
        onAbort: undefined,
        provider,
      };
      this.queuedTotal++;
      this.waitingTotal++;
      if (account.inFlight < account.limit && account.waiting === 0) {
        account.inFlight++;
        this.toUpstream(waiter);
      } else {
        this.enqueue(account, waiter);
      }
      if (waiter.stage === STAGE_SETTLED) return;
      waiter.deadline = scheduleDeadline(Math.max(0, timeoutMs), () => this.giveUp(waiter, true));
      if (signal !== undefined) {
        waiter.onAbort = () => this.giveUp(waiter, false);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  /** Gives both slots back and hands them to the first in line. Call exactly once per acquisition. */
  release(account: SlotPool, upstream: SlotPool): void {
    upstream.inFlight--;
    account.inFlight--;
    this.inFlightTotal--;
    if (upstream.waiting > 0) this.drain(upstream);
    if (account.waiting > 0) this.drain(account);
  }

  /** For GET /v1/platform/connections. */
  report(): ConnectionsReport {
    const now = this.now();
    const windowMs = this.options.waitWindowMs ?? DEFAULT_WAIT_WINDOW_MS;
    const recent: number[] = [];
    const stored = Math.min(this.waitCount, WAIT_SAMPLES);
    for (let index = 0; index < stored; index++) {
      if (now - (this.waitStamps[index] as number) <= windowMs) recent.push(this.waitTimes[index] as number);
    }
    recent.sort((left, right) => left - right);
    const percentile = (fraction: number): number | null =>
      recent.length === 0 ? null : round(recent[Math.min(recent.length - 1, Math.ceil(fraction * recent.length) - 1)] as number);
    const listed = (pools: Iterable<SlotPool>, withProviders: boolean): PoolReport[] =>
      [...pools]
        .filter((pool) => pool.inFlight > 0 || pool.waiting > 0 || pool.queuedTotal > 0)
        .sort((left, right) => right.inFlight + right.waiting - (left.inFlight + left.waiting) || left.name.localeCompare(right.name))
        .map((pool) => ({
          name: pool.name,
          in_flight: pool.inFlight,
          limit: pool.limit,
          queued: pool.waiting,
          queued_total: pool.queuedTotal,
          timed_out_total: pool.timedOutTotal,
          ...(withProviders ? { providers: [...pool.providers].sort() } : {}),
        }));
    return {
      limits: {
        upstream_connections: this.options.connections ?? null,
        per_account: this.perAccount,
        per_upstream: this.perUpstream,
        queue_timeout_ms: this.queueTimeoutMs,
      },
      in_flight: this.inFlightTotal,
      queued: this.waitingTotal,
      acquired_total: this.acquiredTotal,
      queued_total: this.queuedTotal,
      timed_out_total: this.timedOutTotal,
      abandoned_total: this.abandonedTotal,
      wait_ms: { window_seconds: windowMs / 1000, samples: recent.length, p50: percentile(0.5), p99: percentile(0.99), max: percentile(1) },
      accounts: listed(this.accounts.values(), false),
      upstreams: listed(this.byOrigin.values(), true),
    };
  }

  private enqueue(pool: SlotPool, waiter: Waiter): void {
    waiter.stage = pool.scope === 'account' ? STAGE_ACCOUNT : STAGE_UPSTREAM;
    pool.queue.push(waiter);
    pool.waiting++;
    pool.queuedTotal++;
  }

  /** The waiter holds its account slot; now the upstream's, at once if free and nobody is ahead. */
  private toUpstream(waiter: Waiter): void {
    const upstream = waiter.upstream;
    if (upstream.inFlight < upstream.limit && upstream.waiting === 0) {
      upstream.inFlight++;
      this.grant(waiter);
    } else {
      this.enqueue(upstream, waiter);
    }
  }

  /** Hands free slots of `pool` to its queue, first come first served. */
  private drain(pool: SlotPool): void {
    while (pool.waiting > 0 && pool.inFlight < pool.limit) {
      const waiter = this.shift(pool);
      if (waiter === undefined) break;
      pool.inFlight++;
      if (pool.scope === 'account') this.toUpstream(waiter);
      else this.grant(waiter);
    }
  }

  private shift(pool: SlotPool): Waiter | undefined {
    while (pool.head < pool.queue.length) {
      const waiter = pool.queue[pool.head] as Waiter;
      pool.queue[pool.head] = undefined as unknown as Waiter;
      pool.head++;
      if (waiter.stage === STAGE_SETTLED) continue;
      pool.waiting--;
      this.compact(pool);
      return waiter;
    }
    this.compact(pool);
    return undefined;
  }

  private compact(pool: SlotPool): void {
    if (pool.head === pool.queue.length) {
      pool.queue.length = 0;
      pool.head = 0;
    } else if (pool.head > 1024 && pool.head * 2 > pool.queue.length) {
      pool.queue = pool.queue.slice(pool.head);
      pool.head = 0;
    }
  }

  private grant(waiter: Waiter): void {
    this.inFlightTotal++;
    this.acquiredTotal++;
    this.settle(waiter, undefined);
  }

  /** The deadline passed (`timedOut`) or the client left: out of the queue, and any slot held back. */
  private giveUp(waiter: Waiter, timedOut: boolean): void {
    if (waiter.stage === STAGE_SETTLED) return;
    const pool = waiter.stage === STAGE_ACCOUNT ? waiter.account : waiter.upstream;
    pool.waiting--;
    if (pool.waiting === 0) {
      // Everything left in the array gave up: drop it at once.
      pool.queue.length = 0;
      pool.head = 0;
    }
    if (timedOut) {
      pool.timedOutTotal++;
      this.timedOutTotal++;
    } else {
      this.abandonedTotal++;
    }
    const waitedMs = this.now() - waiter.enqueuedAt;
    this.settle(waiter, timedOut ? busy(pool, waitedMs, waiter.provider) : clientGone());
    if (pool.scope === 'upstream') {
      // It held its account slot while waiting for the upstream.
      const account = waiter.account;
      account.inFlight--;
      if (account.waiting > 0) this.drain(account);
    }
  }

  private settle(waiter: Waiter, refusal: KeywayError | undefined): void {
    waiter.stage = STAGE_SETTLED;
    this.waitingTotal--;
    waiter.deadline?.cancel();
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    const now = this.now();
    const slot = this.waitCursor;
    this.waitTimes[slot] = now - waiter.enqueuedAt;
    this.waitStamps[slot] = now;
    this.waitCursor = (slot + 1) % WAIT_SAMPLES;
    this.waitCount++;
    waiter.settle(refusal);
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function busy(pool: SlotPool, waitedMs: number, provider: string): KeywayError {
  const what = pool.scope === 'account' ? 'this account' : provider === '' ? 'this upstream' : `the ${provider} upstream`;
  return new KeywayError(
    'gateway_busy',
    {
      detail: `Keyway is busy: ${what} already has ${pool.limit} calls in flight, and this request waited ${Math.round(waitedMs)} ms for a slot. Retry shortly.`,
    },
    { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS, extra: { limit_scope: pool.scope } },
  );
}

function clientGone(): KeywayError {
  return new KeywayError('upstream_error', { detail: 'the client closed the connection' }, { reason: 'server_error' });
}
