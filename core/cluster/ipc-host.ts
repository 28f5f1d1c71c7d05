// The primary process's side of the worker protocol (ipc-protocol.ts): it holds the one set of
// counters every worker reserves against, the cluster leases, and relays bus messages. Each worker
// is a member; when one leaves (it exited, or was killed) its budget reservations and job leases are
// released at once, since no request of that process can settle them any more. A worker's question to
// all the others (GET /metrics: every worker's samples in one scrape) is gathered here (ipc-gather.ts).
// Each worker's liveness is watched here too (ipc-liveness.ts): nobody waits for one that stopped
// answering, and the primary replaces one silent past its timeout.

import { GATHER_TIMEOUT_MS, type GatherMember, Gatherings } from './ipc-gather.ts';
import { type LivenessChange, Liveness, type LivenessOptions } from './ipc-liveness.ts';
import { claimLease } from './local.ts';
import type { Lease, Reservation, ReserveOptions, SeedEntry } from '../spec/counters.ts';
import { DELIVERY_WAIT_MS, type HostCall, type HostReply, type PrimaryBound, type WorkerBound } from './ipc-protocol.ts';

/** Counters whose operations answer at once: the primary's in-memory ones (core/counters/memory.ts). */
export interface SyncCounters {
  reserve(key: string, amount: number, limit: number, expiresAt: number, options?: ReserveOptions): Reservation;
  adjust(key: string, delta: number, expiresAt: number): number;
  get(key: string): number;
  seed(entries: readonly SeedEntry[], expiresAt: number): number;
  hit(key: string, amount: number, windowMs: number): number;
  coolDown(key: string, until: number): void;
  coolingUntil(key: string): number | undefined;
  close?(): void;
}

interface HeldLease {
  key: string;
  amount: number;
  /** When it lapses unless renewed, on the lease clock (`ClusterHostOptions.leaseClock`). */
  lapsesAt: number;
  expiresAt: number;
  member: string;
}

export interface HostedMember {
  /** Handles one message from this member. */
  receive(message: PrimaryBound): void;
  /** The member is gone: its leases are released and it hears nothing more. */
  leave(): void;
}

/** Lapsed leases (a worker alive but no longer renewing) on keys nobody touches are released this often. */
const LEASE_SWEEP_MS = 1_000;

export interface ClusterHostOptions {
  clock?: { now(): number };
  onListening?: (member: string, port: number) => void;
  gatherTimeoutMs?: number;
  /** The heartbeat and the timeout past which a silent worker is reported; without it, no heartbeat. */
  liveness?: LivenessOptions;
  /**
   * What times a worker's silence: a duration, so the monotonic clock by default, never the wall clock
   * (`clock`), which an NTP step or a resumed VM moves: a two-minute step made the primary SIGKILL every
   * worker as silent past KEYWAY_WORKER_TIMEOUT_MS (QA18).
   */
  livenessClock?: { now(): number };
  /**
   * What times a lease's life: a worker sends its lease's end as an instant of the wall clock (the
   * workers share the machine's), which the host turns into a time left and counts down on this clock.
   * The monotonic clock by default, so a forward step of the wall clock does not lapse the reservations
   * of requests still in flight (QA18: a +90 s step let two more requests through a full budget); with
   * an injected `clock` and no lease clock, that clock (tests move it to lapse leases).
   */
  leaseClock?: { now(): number };
}

interface Delivery {
  publisher: string;
  receipt: number;
  waiting: Set<string>;
  /** At DELIVERY_WAIT_MS, whoever has not confirmed is unresponsive, and the publisher waits no longer. */
  timer: ReturnType<typeof setTimeout>;
}

export class ClusterHost {
  private readonly members = new Map<string, GatherMember>();
  private readonly leases = new Map<string, HeldLease>();
  /** Lease ids by counter key: a lapsed lease leaves its key's total before the key is next read. */
  private readonly leasesByKey = new Map<string, Set<string>>();
  private readonly jobLeases = new Map<string, { holder: string; until: number }>();
  /** Relayed messages whose publisher waits until every other worker has heard them. */
  private readonly deliveries = new Map<number, Delivery>();
  private nextDelivery = 1;
  private readonly sweeper: ReturnType<typeof setInterval>;
  private readonly gatherings: Gatherings;
  private readonly liveness: Liveness;
  /** What each member was last told of the others' liveness (the `unresponsive` message), so only changes are sent. */
  private readonly toldUnresponsive = new Map<string, string>();
  private readonly clock: { now(): number };
  private readonly leaseClock: { now(): number };
  private readonly onListening: (member: string, port: number) => void;

  constructor(
    private readonly counters: SyncCounters,
    options: ClusterHostOptions = {},
  ) {
    this.clock = options.clock ?? Date;
    this.leaseClock = options.leaseClock ?? options.clock ?? performance;
    this.onListening = options.onListening ?? (() => undefined);
    this.sweeper = setInterval(() => this.sweepLeases(), LEASE_SWEEP_MS);
    this.sweeper.unref?.();
    this.liveness = new Liveness(
      options.livenessClock ?? performance,
      (member, ping) => this.members.get(member)?.send({ ping }),
      (member, change) => this.livenessChanged(member, change),
      options.liveness,
    );
    this.gatherings = new Gatherings(
      this.members,
      options.gatherTimeoutMs ?? GATHER_TIMEOUT_MS,
      (member) => this.liveness.responsive(member),
      (late) => {
        for (const member of late) this.liveness.missed(member);
      },
    );
  }

  /** `worker`: the member's number (1 to N), which the answers to a gathered question are labelled with. */
  join(member: string, send: (message: WorkerBound) => void, worker = 0): HostedMember {
    this.members.set(member, { worker, send });
    this.liveness.join(member);
    this.tellUnresponsive(member);
    return {
      receive: (message) => this.receive(member, message),
      leave: () => this.leave(member),
    };
  }

  close(): void {
    clearInterval(this.sweeper);
    this.liveness.close();
    for (const { timer } of this.deliveries.values()) clearTimeout(timer);
    this.gatherings.close();
    this.counters.close?.();
  }

  /** Budget reservations held as leases, for the primary's log and tests. */
  get heldLeases(): number {
    return this.leases.size;
  }

  private receive(member: string, message: PrimaryBound): void {
    this.liveness.heard(member);
    if ('calls' in message) {
      const replies = message.calls.map((call) => this.answer(member, call));
      this.members.get(member)?.send({ replies });
    } else if ('publish' in message) {
      this.relay(member, message.publish, message.receipt);
    } else if ('delivered' in message) {
      this.confirm(message.delivered, member);
    } else if ('listening' in message) {
      this.liveness.watch(member);
      this.onListening(member, message.listening);
    } else if ('gather' in message) {
      this.gatherings.start(member, ...message.gather);
    } else if ('answer' in message) {
      this.gatherings.answer(member, ...message.answer);
    }
  }

  /**
   * Sends a message to every other worker. With a receipt, the publisher is told once each of them ran
   * its listeners (or left): a deletion or a key's recovery is then in force on every worker before the
   * request that made it is answered. An unresponsive worker still gets the message (it runs it when it
   * answers again) but is not waited for, and one that does not confirm within DELIVERY_WAIT_MS becomes
   * unresponsive: a stopped worker holds one publish, not every one.
   */
  private relay(member: string, [topic, text]: [string, string], receipt: number | undefined): void {
    const others = [...this.members.keys()].filter((other) => other !== member);
    if (receipt === undefined) {
      for (const other of others) this.members.get(other)?.send({ message: [topic, text] });
      return;
    }
    const waiting = new Set(others.filter((other) => this.liveness.responsive(other)));
    const delivery = this.nextDelivery++;
    if (waiting.size > 0) {
      const timer = setTimeout(() => this.lateConfirmations(delivery), DELIVERY_WAIT_MS);
      timer.unref?.();
      this.deliveries.set(delivery, { publisher: member, receipt, waiting, timer });
    }
    for (const other of others) this.members.get(other)?.send({ message: [topic, text], delivery });
    if (waiting.size === 0) this.members.get(member)?.send({ published: receipt });
  }

  private confirm(delivery: number, member: string): void {
    const pending = this.deliveries.get(delivery);
    if (pending === undefined) return;
    pending.waiting.delete(member);
    if (pending.waiting.size > 0) return;
    clearTimeout(pending.timer);
    this.deliveries.delete(delivery);
    this.members.get(pending.publisher)?.send({ published: pending.receipt });
  }

  private lateConfirmations(delivery: number): void {
    for (const member of [...(this.deliveries.get(delivery)?.waiting ?? [])]) this.liveness.missed(member);
  }

  /** A member stopped answering (nothing waits for it any more), answers again, or left: every member hears of it. */
  private livenessChanged(member: string, change: LivenessChange): void {
    if (change === 'unresponsive') {
      for (const [delivery, pending] of this.deliveries) if (pending.waiting.has(member)) this.confirm(delivery, member);
      this.gatherings.stopWaiting(member);
    }
    for (const other of this.members.keys()) this.tellUnresponsive(other);
  }

  /** Tells `member` which other listening workers stopped answering, when that changed since it was last told. */
  private tellUnresponsive(member: string): void {
    const target = this.members.get(member);
    if (target === undefined) return;
    const workers = this.liveness
      .unresponsiveListening()
      .filter((other) => other !== member)
      .map((other) => this.members.get(other)?.worker ?? 0)
      .sort((first, second) => first - second);
    const told = this.toldUnresponsive.get(member) ?? '[]';
    const telling = JSON.stringify(workers);
    if (telling === told) return;
    this.toldUnresponsive.set(member, telling);
    target.send({ unresponsive: workers });
  }

  private answer(member: string, [id, operation, args]: HostCall): HostReply {
    try {
      return [id, 1, this.run(member, operation, args) ?? null];
    } catch (error) {
      return [id, 0, error instanceof Error ? error.message : String(error)];
    }
  }

  private run(member: string, operation: HostCall[1], args: unknown[]): unknown {
    const counters = this.counters;
    const [first, second, third, fourth, fifth, sixth] = args as [never, never, never, never, never, never];
    if (operation !== 'lease' && operation !== 'renewLeases' && typeof first === 'string') this.lapse(first);
    switch (operation) {
      case 'reserve':
        return counters.reserve(first, second, third, fourth, fifth);
      case 'adjust':
        return counters.adjust(first, second, third);
      case 'get':
        return counters.get(first);
      case 'hit':
        return counters.hit(first, second, third);
      case 'coolDown':
        return counters.coolDown(first, second);
      case 'coolingUntil':
        return counters.coolingUntil(first);
      case 'seed':
        return counters.seed(first, second);
      case 'reserveLease':
        return this.reserveLease(member, first, second, third, fourth, fifth, sixth);
      case 'settleLease':
        return this.settleLease(first, second, third, fourth);
      case 'renewLeases':
        return this.renewLeases(first, second);
      case 'lease':
        return this.acquireJobLease(member, first, second);
    }
  }

  private reserveLease(
    member: string,
    key: string,
    amount: number,
    limit: number,
    expiresAt: number,
    lease: Lease,
    options: ReserveOptions | undefined,
  ): Reservation {
    const reservation = this.counters.reserve(key, amount, limit, expiresAt, options);
    if (reservation.unseeded === true) return reservation;
    if (!reservation.ok) return { ...reservation, leased: this.leasedOn(key) };
    this.leases.set(lease.id, { key, amount, lapsesAt: this.lapsesAt(lease.until), expiresAt, member });
    let ids = this.leasesByKey.get(key);
    if (ids === undefined) this.leasesByKey.set(key, (ids = new Set()));
    ids.add(lease.id);
    return reservation;
  }

  /** A lease still held (live or lapsed but not yet swept) leaves the total; `spent` is added either way. */
  private settleLease(key: string, leaseId: string, spent: number, expiresAt: number): number {
    const held = this.leases.get(leaseId);
    if (held !== undefined && held.key === key) this.forget(leaseId, held);
    const delta = Math.max(0, spent) - (held?.key === key ? held.amount : 0);
    return this.counters.adjust(key, delta, expiresAt);
  }

  private renewLeases(leases: Array<{ key: string; id: string }>, until: number): void {
    const now = this.leaseClock.now();
    const lapsesAt = this.lapsesAt(until);
    for (const { id } of leases) {
      const held = this.leases.get(id);
      if (held === undefined) continue;
      if (held.lapsesAt <= now) this.release(id, held);
      else held.lapsesAt = Math.max(held.lapsesAt, lapsesAt);
    }
  }

  /** A worker's lease end (an instant of the wall clock) as an instant of the lease clock. */
  private lapsesAt(until: number): number {
    return this.leaseClock.now() + (until - this.clock.now());
  }

  private acquireJobLease(member: string, name: string, ttlMs: number): boolean {
    return claimLease(this.jobLeases, member, name, ttlMs, this.clock.now());
  }

  private leave(member: string): void {
    this.members.delete(member);
    this.toldUnresponsive.delete(member);
    this.gatherings.leave(member);
    // A worker gone hears nothing more: what waited for it is delivered, and its own waits are over.
    for (const [delivery, pending] of this.deliveries) {
      if (pending.publisher === member) {
        clearTimeout(pending.timer);
        this.deliveries.delete(delivery);
      } else this.confirm(delivery, member);
    }
    this.liveness.leave(member);
    for (const [id, held] of this.leases) if (held.member === member) this.release(id, held);
    for (const [name, held] of this.jobLeases) if (held.holder === member) this.jobLeases.delete(name);
  }

  private release(id: string, held: HeldLease): void {
    this.forget(id, held);
    this.counters.adjust(held.key, -held.amount, held.expiresAt);
  }

  private forget(id: string, held: HeldLease): void {
    this.leases.delete(id);
    const ids = this.leasesByKey.get(held.key);
    ids?.delete(id);
    if (ids?.size === 0) this.leasesByKey.delete(held.key);
  }

  /** What the live leases on `key` hold (lapsed ones were released before the call). */
  private leasedOn(key: string): number {
    let leased = 0;
    for (const id of this.leasesByKey.get(key) ?? []) leased += this.leases.get(id)?.amount ?? 0;
    return leased;
  }

  /** Releases the lapsed leases on `key`, so its total is exact when read or reserved against. */
  private lapse(key: string): void {
    const ids = this.leasesByKey.get(key);
    if (ids === undefined) return;
    const now = this.leaseClock.now();
    for (const id of ids) {
      const held = this.leases.get(id);
      if (held !== undefined && held.lapsesAt <= now) this.release(id, held);
    }
  }

  private sweepLeases(): void {
    const now = this.leaseClock.now();
    for (const [id, held] of this.leases) if (held.lapsesAt <= now) this.release(id, held);
  }
}
