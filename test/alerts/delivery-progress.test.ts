// Alert deliveries across retries, stops and crashes (QA17). Each target's result is written to the
// event as it happens: a target delivered at once reads delivered while another still waits for its
// retry (it read `attempts: 0, ok: false` until the last target finished). A graceful stop tries each
// waiting retry once more at once and records the outcome: the event no longer stays `delivering`,
// `attempts: 0`, forever. An event a crashed process left `delivering` is closed as interrupted by the
// next process (not sent again), while one a live process is still delivering is left alone.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { chat, createAlerts, eventually, events, startAlertsGateway, type AlertsGateway, type EventView, restartAlertsGateway } from './fixture.ts';

/** A minute between tries: a retry is only ever made early by a stop. */
const SLOW_RETRIES = { KEYWAY_ALERTS_RETRY_BASE_MS: '60000', KEYWAY_ALERTS_DELIVERY_ATTEMPTS: '4' };
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

function restartableEnv(): Record<string, string> {
  const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-alerts-progress-'));
  stops.push(async () => rmSync(dataDirectory, { recursive: true, force: true }));
  return { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`, ...SLOW_RETRIES };
}

/** The alert's one event once `ready` holds for it. */
function eventWhen(setup: AlertsGateway, alertId: string, ready: (event: EventView) => boolean): Promise<EventView> {
  return eventually(`an event of ${alertId} as expected`, async () => {
    const found = (await events(setup.gateway, setup.adminKey, `?alert_id=${alertId}`))[0];
    return found !== undefined && ready(found) ? found : undefined;
  });
}

describe('each target is recorded as it happens', () => {
  test('a target delivered at once reads delivered while another waits for its retry', async () => {
    const setup = await startAlertsGateway({ env: SLOW_RETRIES });
    stops.push(() => setup.stop());
    setup.receiver.failures.set('/progress-later', [503]);
    const [alert] = await createAlerts(setup, [
      { type: 'byok_cost_threshold', threshold: 0.000001, notify: ['https://receiver.test/progress-now', 'https://receiver.test/progress-later'] },
    ]);
    expect((await chat(setup)).status).toBe(200);
    const event = await eventWhen(setup, String(alert?.id), (found) => found.deliveries.every((delivery) => delivery.attempts > 0));
    expect(event.status).toBe('delivering');
    const [now, later] = event.deliveries;
    expect(now).toMatchObject({ channel: 'alert-webhook', attempts: 1, ok: true });
    expect(now?.delivered_at).toBeString();
    expect(now?.next_attempt_at).toBeUndefined();
    // The failed try is on record, with when the next one is due (about a minute on).
    expect(later).toMatchObject({ channel: 'alert-webhook', attempts: 1, ok: false, error: 'the webhook answered HTTP 503' });
    const due = Date.parse(String(later?.next_attempt_at)) - Date.parse(event.fired_at);
    expect(due).toBeGreaterThan(40_000);
    expect(due).toBeLessThan(80_000);
  });
});

describe('a graceful stop', () => {
  test('tries each waiting retry once more at once and records the outcome; nothing stays delivering', async () => {
    const env = restartableEnv();
    const first = await startAlertsGateway({ env });
    first.receiver.failures.set('/stop-flaky', [503]);
    const [alert] = await createAlerts(first, [
      { type: 'byok_cost_threshold', threshold: 0.000001, period: 'monthly', notify: ['https://receiver.test/stop-flaky', 'https://receiver.test/down/stop'] },
    ]);
    const alertId = String(alert?.id);
    expect((await chat(first)).status).toBe(200);
    // Both failed their first try and wait a minute for the next.
    await eventWhen(first, alertId, (found) => found.deliveries.every((delivery) => delivery.attempts === 1));
    const adminKey = first.adminKey;
    const stopping = Date.now();
    await first.gateway.stop();
    // Bounded by the drain time (10 s by default), not by the retries' minute.
    expect(Date.now() - stopping).toBeLessThan(8000);

    const second = await restartAlertsGateway(first, env, stops);
    const [event] = await events(second.gateway, adminKey, `?alert_id=${alertId}`);
    expect(event?.status).toBe('partial');
    const [flaky, down] = event?.deliveries ?? [];
    expect(flaky).toMatchObject({ ok: true, attempts: 2 });
    expect(down).toMatchObject({ ok: false, attempts: 2 });
    expect(down?.error).toBe('the webhook answered HTTP 503 (tried 2 of 4 times; the gateway stopped)');
    for (const delivery of event?.deliveries ?? []) expect(delivery.next_attempt_at).toBeUndefined();
    expect(second.receiver.received.filter((entry) => entry.path === '/stop-flaky')).toHaveLength(1);
  });
});

describe('a stop whose drain time the requests used up', () => {
  test('records the waiting retries without trying them: alerts never lengthen the shutdown past its deadline', async () => {
    const env = { ...restartableEnv(), KEYWAY_DRAIN_TIMEOUT_MS: '800' };
    const first = await startAlertsGateway({ env });
    first.receiver.failures.set('/no-time', [503]);
    const [alert] = await createAlerts(first, [
      { type: 'byok_cost_threshold', threshold: 0.000001, period: 'monthly', notify: ['https://receiver.test/no-time'] },
    ]);
    const alertId = String(alert?.id);
    expect((await chat(first)).status).toBe(200);
    await eventWhen(first, alertId, (found) => found.deliveries.every((delivery) => delivery.attempts === 1));
    const adminKey = first.adminKey;
    // A request in flight to a slow upstream holds the drain until its deadline.
    first.openai.setSticky({ kind: 'delay', delayMs: 30_000 });
    const slow = chat(first);
    await Bun.sleep(150);
    const stopping = Date.now();
    await first.gateway.stop();
    expect((await slow).status).toBe(503);
    expect(Date.now() - stopping).toBeLessThan(3000);
    first.openai.setSticky(undefined);

    const second = await restartAlertsGateway(first, env, stops);
    const [event] = await events(second.gateway, adminKey, `?alert_id=${alertId}`);
    expect(event?.status).toBe('failed');
    expect(event?.deliveries[0]).toMatchObject({ ok: false, attempts: 1, error: 'the webhook answered HTTP 503 (tried 1 of 4 times; the gateway stopped)' });
    expect(event?.deliveries[0]?.next_attempt_at).toBeUndefined();
    expect(second.receiver.received.filter((entry) => entry.path === '/no-time')).toHaveLength(0);
  });
});

describe('after a crash', () => {
  test('the next process closes what a dead process left delivering, as interrupted, and leaves a live one alone', async () => {
    const hub = new LocalClusterHub();
    const setup = await startAlertsGateway({ env: { KEYWAY_ALERTS_INTERVAL_MS: '600000' }, cluster: hub.join() });
    stops.push(() => setup.stop());
    // Another member of the cluster, alive and delivering: it holds its deliveries' lease.
    const alive = hub.join('inst_alive');
    expect(await alive.acquireLease('alerts:deliveries:inst_alive', 600_000)).toBe(true);
    const firedAt = new Date().toISOString();
    const pending = { channel: 'alert-webhook', attempts: 0, ok: false, next_attempt_at: firedAt };
    const rows: Array<[string, string | null, unknown[]]> = [
      [
        'alev_crashed',
        'inst_crashed',
        [
          { target: 'https://receiver.test/crash-a', channel: 'alert-webhook', attempts: 1, ok: true, delivered_at: firedAt },
          {
            target: 'https://receiver.test/crash-b',
            channel: 'alert-webhook',
            attempts: 1,
            ok: false,
            error: 'the webhook answered HTTP 503',
            next_attempt_at: firedAt,
          },
        ],
      ],
      // Left by a version that recorded no owner.
      ['alev_ownerless', null, [{ target: 'ops@company.com', ...pending, channel: 'alert-email' }]],
      ['alev_alive', 'inst_alive', [{ target: 'https://receiver.test/alive', ...pending }]],
    ];
    for (const [id, owner, deliveries] of rows) {
      await setup.gateway.runtime.store.execute(
        `INSERT INTO alert_events (id, account_id, alert_id, type, subject, period, message, details, fired_at, status, deliveries, owner)
         VALUES (?, 'default', ?, 'byok_cost_threshold', 'openai', '2026-12', 'Spend passed the threshold.', '{}', ?, 'delivering', ?, ?)`,
        [id, `alrt_${id}`, firedAt, JSON.stringify(deliveries), owner],
      );
    }
    const byId = async () => new Map((await events(setup.gateway, setup.adminKey)).map((event) => [event.id, event]));
    // The start pass runs a second after the gateway listens (the alert job's own pass would too).
    const closed = await eventually('the crashed events closed', async () => {
      const found = await byId();
      return found.get('alev_crashed')?.status !== 'delivering' && found.get('alev_ownerless')?.status !== 'delivering' ? found : undefined;
    });
    const crashed = closed.get('alev_crashed');
    expect(crashed?.status).toBe('partial');
    expect(crashed?.deliveries[0]).toMatchObject({ ok: true, attempts: 1 });
    expect(crashed?.deliveries[1]).toMatchObject({ ok: false, attempts: 1 });
    expect(crashed?.deliveries[1]?.error).toBe(
      'the webhook answered HTTP 503; interrupted: the gateway stopped before this delivery finished; it is not sent again',
    );
    expect(crashed?.deliveries[1]?.next_attempt_at).toBeUndefined();
    const ownerless = closed.get('alev_ownerless');
    expect(ownerless?.status).toBe('failed');
    expect(ownerless?.deliveries[0]).toMatchObject({
      ok: false,
      attempts: 0,
      error: 'interrupted: the gateway stopped before this delivery finished; it is not sent again',
    });
    expect(closed.get('alev_alive')?.status).toBe('delivering');
    // Not sent again: at most once.
    expect(setup.receiver.received.filter((entry) => entry.path.startsWith('/crash'))).toHaveLength(0);
    expect(setup.smtp.received).toHaveLength(0);
  });
});
