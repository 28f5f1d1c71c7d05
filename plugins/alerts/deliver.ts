// Firing and delivery. A firing is claimed in `alert_events` first (one per alert, subject and period,
// across restarts and processes), then delivered in the background to each target through the channel
// the core picks (`services.alerts.fire` with one target), retried with exponential backoff. Each
// target's result is written to the event as it happens (after every try), so one target still
// retrying never hides another's outcome. A graceful stop tries each waiting retry once more at once and
// records what is left within the drain time; an event a crash left `delivering` is closed as
// interrupted by the next start (or the alert job), never sent again: at most once.

import { createHash } from 'node:crypto';
import type { AlertEvent } from '../../core/spec/alert-channel.ts';
import type { Services } from '../../core/spec/services.ts';
import { claimFiring, closeInterrupted, deliveringEvents, isFinal, recordDeliveries, type DeliveryRecord, type Firing, type StoredEvent } from './store.ts';

export interface DeliverySettings {
  /** Tries per target, the first included. */
  attempts: number;
  /** The wait before the second try; it doubles for each next one, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

/**
 * How long a process's claim on the events it delivers lasts unrenewed (a cluster lease named after
 * the process, renewed while it delivers): an event whose owner holds no lease was left by a process
 * that is gone. The workers' primary releases a dead worker's leases at once; Redis lets them expire.
 */
const OWNER_LEASE_MS = 30_000;
const INTERRUPTED = 'interrupted: the gateway stopped before this delivery finished; it is not sent again';

function ownerLease(owner: string): string {
  return `alerts:deliveries:${owner}`;
}

/**
 * What answers show of a target: e-mail addresses whole; URLs as origin and shortened path (a webhook
 * URL often is its own token), with 8 hex digits of the whole URL's SHA-256 when anything was cut, so
 * two Slack webhooks of one workspace still read apart.
 */
export function maskTarget(target: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target;
  try {
    const url = new URL(target);
    const path = url.pathname
      .split('/')
      .map((segment) => (segment.length > 6 ? `${segment.slice(0, 3)}…` : segment))
      .join('/');
    const shown = `${url.protocol}//${url.host}${path}${url.search === '' ? '' : '?…'}`;
    return shown === target ? shown : `${shown} [${createHash('sha256').update(target).digest('hex').slice(0, 8)}]`;
  } catch {
    return '[unreadable target]';
  }
}

/** A target left unfinished by a process that is gone (or a drain whose time ran out): failed, never retried. */
function interrupted(delivery: DeliveryRecord, reason: string): DeliveryRecord {
  const { next_attempt_at: _pending, ...rest } = delivery;
  return { ...rest, ok: false, error: delivery.error === undefined ? reason : `${delivery.error}; ${reason}` };
}

/** An event being delivered by this process: each target's record as it stands, and the writes of them, in order. */
interface LiveEvent {
  records: DeliveryRecord[];
  writes: Promise<void>;
  /** Closed when the drain's time ran out: results arriving later are not written over the recorded ones. */
  closed: boolean;
}

export class AlertDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly live = new Map<string, LiveEvent>();
  /** Retries waiting for their time: woken when a graceful stop begins. */
  private readonly waiting = new Set<() => void>();
  private stopping: { deadline: number } | undefined;
  private leaseTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly services: Services,
    private readonly settings: DeliverySettings,
  ) {}

  /** This process in the cluster: the owner recorded on the events it delivers. */
  private get owner(): string {
    return this.services.cluster.instanceId;
  }

  /** Claims and delivers a firing. Undefined when it already fired for that period (de-duplicated). */
  async fire(firing: Firing): Promise<StoredEvent | undefined> {
    const id = this.services.credentials.randomId('alev');
    const firedAt = new Date(this.services.clock.now()).toISOString();
    const targets = [...new Set(firing.targets)];
    const pending: DeliveryRecord[] = targets.map((target) => ({
      target: maskTarget(target),
      channel: this.services.alerts.channelFor(target) ?? null,
      attempts: 0,
      ok: false,
      next_attempt_at: firedAt,
    }));
    // Held before the claim: an event is never recorded under an owner that no lease shows alive.
    if (targets.length > 0) await this.holdOwnerLease();
    if (!(await claimFiring(this.services.store, id, { ...firing, targets }, firedAt, pending, this.owner))) return undefined;
    this.services.logger.info({ alertEventId: id, type: firing.type, accountId: firing.accountId }, 'alert fired');
    const event: AlertEvent = {
      alertId: id,
      accountId: firing.accountId,
      type: firing.type,
      message: firing.message,
      firedAt,
      // The firing's own details win: a cost alert's `period` is its rule's (`daily`), as the stored event
      // says; the period it fired in is `period` beside them (and here when the details name none).
      details: { alert_id: firing.alertId === '' ? null : firing.alertId, subject: firing.subject, period: firing.period, ...firing.details },
      targets,
      subject: firing.subject,
      period: firing.period,
    };
    if (targets.length > 0) {
      const live: LiveEvent = { records: pending.map((record) => ({ ...record })), writes: Promise.resolve(), closed: false };
      this.live.set(id, live);
      const delivery = this.deliverAll(event, live)
        .catch((error: unknown) =>
          this.services.logger.error({ alertEventId: id, error: this.services.errors.redact(String(error)) }, 'recording alert deliveries failed'),
        )
        .finally(() => this.live.delete(id));
      this.track(delivery);
    }
    return {
      id,
      alert_id: firing.alertId === '' ? null : firing.alertId,
      type: firing.type,
      subject: firing.subject,
      period: firing.period,
      message: firing.message,
      details: firing.details,
      fired_at: firedAt,
      status: targets.length === 0 ? 'no_targets' : 'delivering',
      deliveries: pending,
    };
  }

  /** Resolves once every delivery started so far has its final result recorded. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * A graceful stop (the alert job's drain, by the shutdown's `deadline`: KEYWAY_DRAIN_TIMEOUT_MS after
   * the stop began): retries waiting for their time are tried once more at once, and no later try
   * starts; once every delivery has its result, or the deadline passed, what is still unfinished is
   * recorded as failed, so no event stays `delivering` after a clean stop.
   */
  async drain(deadline: number): Promise<void> {
    this.stopping ??= { deadline };
    for (const wake of [...this.waiting]) wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outOfTime = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), Math.max(0, (this.stopping as { deadline: number }).deadline - Date.now()));
    });
    const late = await Promise.race([this.idle().then(() => false), outOfTime]);
    clearTimeout(timer);
    if (late) {
      // A channel slower than the drain time: its try may still land, but the event says what is known now.
      await Promise.all(
        [...this.live].map(async ([id, live]) => {
          live.closed = true;
          await live.writes;
          const records = live.records.map((record) => (isFinal(record) ? record : interrupted(record, 'the gateway stopped during this delivery')));
          await recordDeliveries(this.services.store, id, records).catch((error: unknown) =>
            this.services.logger.error({ alertEventId: id, error: this.services.errors.redact(String(error)) }, 'recording alert deliveries failed'),
          );
        }),
      );
    }
    clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
  }

  /**
   * Closes events a process that is gone left `delivering` (a crash, a kill): each target without a
   * final result is recorded as failed, interrupted, and not sent again (the event was claimed and may
   * have reached some of them: at most once, rather than twice). Run at start and by the alert job.
   * An owner is gone when no cluster member holds its lease; an event without an owner was left by a
   * version that recorded none. Answers how many events it closed.
   */
  async recoverInterrupted(): Promise<number> {
    const alive = new Map<string, boolean>();
    let closed = 0;
    for (const event of await deliveringEvents(this.services.store)) {
      if (event.owner === this.owner) continue;
      if (event.owner !== null) {
        let ownerAlive = alive.get(event.owner);
        if (ownerAlive === undefined) {
          ownerAlive = await this.ownerAlive(event.owner);
          alive.set(event.owner, ownerAlive);
        }
        if (ownerAlive) continue;
      }
      const deliveries = event.deliveries.map((delivery) => (isFinal(delivery) ? delivery : interrupted(delivery, INTERRUPTED)));
      if (await closeInterrupted(this.services.store, event.id, deliveries)) closed += 1;
    }
    if (closed > 0) this.services.logger.warn({ events: closed }, 'alert deliveries a stopped process left unfinished were recorded as interrupted');
    return closed;
  }

  /** Taking the owner's lease succeeds only when no live member holds it; a bus that cannot tell (Redis down) counts as alive. */
  private async ownerAlive(owner: string): Promise<boolean> {
    try {
      return !(await this.services.cluster.acquireLease(ownerLease(owner), 1_000));
    } catch {
      return true;
    }
  }

  private async holdOwnerLease(): Promise<void> {
    try {
      await this.services.cluster.acquireLease(ownerLease(this.owner), OWNER_LEASE_MS);
    } catch (error) {
      this.services.logger.warn({ error: this.services.errors.redact(String(error)) }, 'could not renew the alert deliveries lease');
    }
  }

  /** Keeps the owner's lease renewed while deliveries are under way. */
  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    if (this.leaseTimer === undefined) {
      this.leaseTimer = setInterval(() => void this.holdOwnerLease(), OWNER_LEASE_MS / 3);
      (this.leaseTimer as { unref?: () => void }).unref?.();
    }
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      if (this.inFlight.size > 0) return;
      clearInterval(this.leaseTimer);
      this.leaseTimer = undefined;
    });
  }

  /** Waits before a retry; a graceful stop ends the wait at once. */
  private pause(milliseconds: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, milliseconds);
      // A retry waiting must not keep a process alive that is not stopping gracefully.
      (timer as { unref?: () => void }).unref?.();
      this.waiting.add(done);
    });
  }

  private async deliverAll(event: AlertEvent, live: LiveEvent): Promise<void> {
    const report = (index: number, record: DeliveryRecord): void => {
      if (live.closed) return;
      live.records[index] = record;
      const records = [...live.records];
      live.writes = live.writes
        .then(() => recordDeliveries(this.services.store, event.alertId, records))
        .catch((error: unknown) =>
          this.services.logger.error({ alertEventId: event.alertId, error: this.services.errors.redact(String(error)) }, 'recording alert deliveries failed'),
        );
    };
    await Promise.all(event.targets.map((target, index) => this.deliverOne(event, target, (record) => report(index, record))));
    await live.writes;
  }

  private async deliverOne(event: AlertEvent, target: string, report: (record: DeliveryRecord) => void): Promise<void> {
    const shown = maskTarget(target);
    const iso = (epoch: number): string => new Date(epoch).toISOString();
    let last: DeliveryRecord = { target: shown, channel: null, attempts: 0, ok: false };
    let triedWhileStopping = false;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) {
        if (this.stopping === undefined) {
          const backoff = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** (attempt - 2)) * (0.8 + 0.4 * Math.random());
          report({ ...last, next_attempt_at: iso(this.services.clock.now() + backoff) });
          await this.pause(backoff);
        }
        if (this.stopping !== undefined) {
          // Stopping: one more try at once rather than none, then the result is final.
          if (triedWhileStopping || Date.now() >= this.stopping.deadline) {
            report({ ...last, error: `${last.error ?? 'delivery failed'} (tried ${last.attempts} of ${this.settings.attempts} times; the gateway stopped)` });
            return;
          }
          triedWhileStopping = true;
        }
      }
      const [result] = await this.services.alerts.fire({ ...event, targets: [target] });
      const channel = result?.channel ?? null;
      if (result?.ok === true) {
        report({ target: shown, channel, attempts: attempt, ok: true, delivered_at: iso(this.services.clock.now()) });
        return;
      }
      // The core already scrubbed the channel's error; the target (a URL that may hold a token) is cut out too.
      const error = this.services.errors
        .redact(result?.error ?? 'delivery failed')
        .split(target)
        .join(shown);
      last = { target: shown, channel, attempts: attempt, ok: false, error };
      // No channel accepts it: trying again cannot help.
      if (channel === null || attempt >= this.settings.attempts) {
        report(last);
        return;
      }
    }
  }
}
