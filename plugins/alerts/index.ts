// Alerts: the spec's alert types (PRODUCT.md "Alerts"), judged by a background job over the usage
// roll-up, in-memory running totals fed by the `account` hook, the health monitor and anomaly
// statistics; every firing is recorded once per alert, subject and period (across restarts) and
// delivered through the alert-channel plugins with retries, finished or recorded at a graceful stop
// and closed as interrupted after a crash. Other plugins raise `rotation_due` and `approval_pending`
// through raise.ts. A rule's targets are stored sealed by the crypto backend and opened into memory
// when the rules load (targets.ts). See docs/alerts.md.

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { integerSetting } from '../../core/spec/settings.ts';
import type { Services } from '../../core/spec/services.ts';
import type { TeamsSection } from '../teams/types.ts';
import { AlertDispatcher, type DeliverySettings } from './deliver.ts';
import { ALERTS_SECTION, AlertEvaluator, type AlertsSection } from './evaluate.ts';
import { registerRaiser, type RaisedAlert } from './raise.ts';
import { SHARE_INTERVAL_MS } from './shared-windows.ts';
import { alertRoutes } from './routes.ts';
import type { AlertRule } from './schema.ts';
import { ALERTS_MIGRATIONS, loadRules, type StoredEvent } from './store.ts';
import { untilDone } from './sealed-lists.ts';
import { AlertTargets, alertTargetsHolder } from './targets.ts';

export const ALERTS_PLUGIN = 'alerts';

const configSchema = Type.Object({
  intervalMs: Type.Integer({ minimum: 10, default: 30_000, description: 'How often every alert is judged (KEYWAY_ALERTS_INTERVAL_MS)' }),
  deliveryAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 4, description: 'Tries per target (KEYWAY_ALERTS_DELIVERY_ATTEMPTS)' }),
  retryBaseMs: Type.Integer({ minimum: 1, default: 5_000, description: 'Wait before the second try, doubling after (KEYWAY_ALERTS_RETRY_BASE_MS)' }),
  retryMaxMs: Type.Integer({ minimum: 1, default: 300_000, description: 'Longest wait between tries' }),
});

/** A variable over the plugin setting; a timer past 2^31 ms (24.8 days) fires at once, so waits stay within a day. */
function fromEnvironment(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number, minimum: number, maximum: number): number {
  return integerSetting(name, env[name], fallback, minimum, maximum);
}

/** The per-gateway objects tests reach through the plugin (to wait for deliveries, run the job now). */
export interface AlertsHandle {
  evaluator: AlertEvaluator;
  dispatcher: AlertDispatcher;
}
const handles = new WeakMap<Services, AlertsHandle>();
export function alertsHandleOf(services: Services): AlertsHandle | undefined {
  return handles.get(services);
}

function raiser(services: Services, evaluator: AlertEvaluator, dispatcher: AlertDispatcher) {
  return (alert: RaisedAlert): Promise<StoredEvent | undefined> => {
    const rules = evaluator.rulesFor(alert.accountId, alert.type, alert.match);
    const targets = [...(alert.targets ?? []), ...rules.flatMap((rule) => rule.notify)];
    return dispatcher.fire({
      accountId: alert.accountId,
      alertId: rules.length === 1 ? (rules[0] as AlertRule).id : '',
      type: alert.type,
      subject: alert.subject,
      period: alert.period ?? 'once',
      message: alert.message,
      details: { ...alert.details, alert_ids: rules.map((rule) => rule.id) },
      targets,
    });
  };
}

export const alertsPlugin = definePlugin({
  name: ALERTS_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [
    { name: 'KEYWAY_ALERTS_INTERVAL_MS', description: 'How often alert rules are evaluated' },
    { name: 'KEYWAY_ALERTS_DELIVERY_ATTEMPTS', description: 'Delivery attempts per alert before it is given up' },
    { name: 'KEYWAY_ALERTS_RETRY_BASE_MS', description: 'The first delay between delivery attempts, doubled each time' },
  ],
  dependencies: ['analytics', 'teams'],
  description: 'Cost thresholds, usage anomalies, error rates, provider outages, rotation and approval alerts, delivered through the alert channels',
  configSchema,
  setup: ({ config, env, services }) => {
    const settings: DeliverySettings = {
      attempts: fromEnvironment(env, 'KEYWAY_ALERTS_DELIVERY_ATTEMPTS', config.deliveryAttempts, 1, 100),
      retryBaseMs: fromEnvironment(env, 'KEYWAY_ALERTS_RETRY_BASE_MS', config.retryBaseMs, 1, 86_400_000),
      retryMaxMs: config.retryMaxMs,
    };
    const intervalMs = fromEnvironment(env, 'KEYWAY_ALERTS_INTERVAL_MS', config.intervalMs, 10, 86_400_000);
    const dispatcher = new AlertDispatcher(services, settings);
    const teamName = (teamId: string) => services.snapshot.section<TeamsSection>('teams')?.byId.get(teamId)?.name;
    const evaluator = new AlertEvaluator(services, dispatcher, teamName);
    const targets = new AlertTargets(services);
    handles.set(services, { evaluator, dispatcher });
    const logFailure = (what: string) => (error: unknown) =>
      services.logger.error({ error: services.errors.redact(error instanceof Error ? error.message : String(error)) }, what);
    // Once per process, a second after it listens (jobs cannot run during setup: the store and the
    // cluster come later): events a stopped process left `delivering` are closed, the other processes'
    // judged spend is heard, and every rule is judged, which also aligns the cost trigger with the
    // stored spend (so the first crossing after a restart fires at once, not at the next interval).
    const start = untilDone(async () => {
      evaluator.listen();
      evaluator.kick();
      await dispatcher.recoverInterrupted();
    });
    // Once per process too: target lists stored in plaintext (by a release before sealing) are sealed.
    const sealPlaintext = untilDone(async () => void (await targets.sealPlaintext()));
    registerRaiser(services, raiser(services, evaluator, dispatcher));
    return {
      migrations: ALERTS_MIGRATIONS,
      ciphertextHolders: [alertTargetsHolder(services)],
      hooks: { account: (context, outcome) => evaluator.account(context, outcome) },
      snapshot: [
        {
          name: ALERTS_SECTION,
          async load(store): Promise<AlertsSection> {
            const byAccount = new Map<string, AlertRule[]>();
            for (const rule of await loadRules(store, targets)) {
              const rules = byAccount.get(rule.accountId);
              if (rules === undefined) byAccount.set(rule.accountId, [rule]);
              else rules.push(rule);
            }
            return { byAccount };
          },
        },
      ],
      jobs: [
        {
          name: 'alerts',
          intervalMs,
          run: async () => {
            // A process that stopped for good (another instance, a worker not replaced) is noticed here.
            await dispatcher.recoverInterrupted().catch(logFailure('closing interrupted alert deliveries failed'));
            await evaluator.run();
          },
          scope: 'cluster',
          drain: (deadline) => dispatcher.drain(deadline),
        },
        { name: 'alerts-start', intervalMs: 1_000, run: start },
        { name: 'alerts-seal-targets', intervalMs: 1_000, run: sealPlaintext },
        // Every process, not only the lease holder: each adds its own request counts to the shared error-rate windows.
        { name: 'alerts-windows', intervalMs: SHARE_INTERVAL_MS, run: () => evaluator.shareWindows(), drain: () => evaluator.shareWindows() },
      ],
      routes: alertRoutes({ services, evaluator, targets }),
    };
  },
});

export default alertsPlugin;
