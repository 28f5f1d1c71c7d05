// Firing and delivery. A firing is claimed in `alert_events` first (one per alert, subject and period,
// across restarts and processes), then delivered in the background to each target through the channel
// the core picks (`services.alerts.fire` with one target), retried with exponential backoff; the final
// result per target (channel, attempts, ok or the redacted error) is written back to the event.

import type { AlertEvent } from '../../core/spec/alert-channel.ts';
import type { Services } from '../../core/spec/services.ts';
import { claimFiring, recordDeliveries, type DeliveryRecord, type Firing, type StoredEvent } from './store.ts';

export interface DeliverySettings {
  /** Tries per target, the first included. */
  attempts: number;
  /** The wait before the second try; it doubles for each next one, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** What answers show of a target: e-mail addresses whole; URLs as origin and shortened path (a webhook URL often is its own token). */
export function maskTarget(target: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target;
  try {
    const url = new URL(target);
    const path = url.pathname
      .split('/')
      .map((segment) => (segment.length > 6 ? `${segment.slice(0, 3)}…` : segment))
      .join('/');
    return `${url.protocol}//${url.host}${path}${url.search === '' ? '' : '?…'}`;
  } catch {
    return '[unreadable target]';
  }
}

function wait(milliseconds: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    // A retry waiting must not keep a stopping process alive.
    (timer as { unref?: () => void }).unref?.();
  });
}

export class AlertDispatcher {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly services: Services,
    private readonly settings: DeliverySettings,
  ) {}

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
    }));
    if (!(await claimFiring(this.services.store, id, { ...firing, targets }, firedAt, pending))) return undefined;
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
    const delivery = this.deliverAll(event).catch((error: unknown) =>
      this.services.logger.error({ alertEventId: id, error: this.services.errors.redact(String(error)) }, 'recording alert deliveries failed'),
    );
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
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

  private async deliverAll(event: AlertEvent): Promise<void> {
    if (event.targets.length === 0) return;
    const results = await Promise.all(event.targets.map((target) => this.deliverOne(event, target)));
    await recordDeliveries(this.services.store, event.alertId, results);
  }

  private async deliverOne(event: AlertEvent, target: string): Promise<DeliveryRecord> {
    const shown = maskTarget(target);
    let last: DeliveryRecord = { target: shown, channel: null, attempts: 0, ok: false, error: 'not attempted' };
    for (let attempt = 1; attempt <= this.settings.attempts; attempt++) {
      if (attempt > 1) {
        const backoff = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** (attempt - 2));
        await wait(backoff * (0.8 + 0.4 * Math.random()));
      }
      const [result] = await this.services.alerts.fire({ ...event, targets: [target] });
      const channel = result?.channel ?? null;
      if (result?.ok === true) return { target: shown, channel, attempts: attempt, ok: true, delivered_at: new Date(this.services.clock.now()).toISOString() };
      // The core already scrubbed the channel's error; the target (a URL that may hold a token) is cut out too.
      const error = this.services.errors
        .redact(result?.error ?? 'delivery failed')
        .split(target)
        .join(shown);
      last = { target: shown, channel, attempts: attempt, ok: false, error };
      // No channel accepts it: trying again cannot help.
      if (channel === null) break;
    }
    return last;
  }
}
