// Reconciliation: Keyway's recorded spend against the providers' own organisation usage and cost
// reports (OpenAI, Anthropic), read with an admin key the account supplies, per UTC day, provider,
// model and key; a daily job that stores each day's result and alerts on drift. See docs/reconciliation.md.

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { adminKeyHolder, AdminKeys, SettingsStore } from './admin-keys.ts';
import { DailyReconciliation } from './daily.ts';
import { Reconciler } from './reconcile.ts';
import { reconciliationRoutes } from './routes.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS, RECONCILIATION_USAGE_ROLLUPS } from './schema.ts';

const configSchema = Type.Object({
  checkIntervalMs: Type.Optional(Type.Integer({ minimum: 1000, description: 'How often the daily job looks for a day to reconcile (default 15 minutes)' })),
  reportDelayHours: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 72,
      description: "How long after a UTC day ends before it is reconciled, for the providers' reports to settle (default 2)",
    }),
  ),
});

export const reconciliationPlugin = definePlugin({
  name: 'reconciliation',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [
    { name: 'KEYWAY_OPENAI_BASE_URL', description: 'The OpenAI API address usage is reconciled against' },
    { name: 'KEYWAY_ANTHROPIC_BASE_URL', description: 'The Anthropic API address usage is reconciled against' },
  ],
  description: "Compares Keyway's recorded spend with OpenAI's and Anthropic's organisation usage and cost reports",
  configSchema,
  setup({ services, config }) {
    const adminKeys = new AdminKeys(services);
    const settings = new SettingsStore(services);
    const reconciler = new Reconciler(services, adminKeys);
    const daily = new DailyReconciliation(services, reconciler, adminKeys, settings, (config.reportDelayHours ?? 2) * 3_600_000);
    return {
      migrations: RECONCILIATION_MIGRATIONS,
      usageRollups: RECONCILIATION_USAGE_ROLLUPS,
      usageFolds: RECONCILIATION_USAGE_FOLDS,
      ciphertextHolders: [adminKeyHolder(services), settings.notify.holder()],
      routes: reconciliationRoutes({ services, adminKeys, settings, reconciler, daily }),
      jobs: [
        { name: 'daily-reconciliation', intervalMs: config.checkIntervalMs ?? 15 * 60_000, run: () => daily.tick(), scope: 'cluster' },
        // The `notify` lists an earlier release stored in plaintext are sealed; every list is opened into memory.
        settings.notify.startJob('reconciliation-seal-notify'),
      ],
    };
  },
});
