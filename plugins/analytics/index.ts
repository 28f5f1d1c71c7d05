// Analytics: usage roll-ups maintained as usage is written, and the routes that read them —
// GET /v1/analytics/byok, GET /v1/analytics/cost-comparison and POST /v1/billing/export.
// Decisions (what counts, rounding, export layout) are in docs/analytics.md.

import { answerUsageFlushes, withFreshUsage } from './fresh.ts';
import type { Principal } from '../../core/spec/plugin.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { BYOK_PARAMETERS, BYOK_REPEATABLE_PARAMETERS, byokAnalytics } from './byok.ts';
import { COST_COMPARISON_PARAMETERS, costComparison } from './cost-comparison.ts';
import { billingExport, ExportRequestSchema } from './export.ts';
import { USAGE_FOLD_TABLES } from './batch-fold.ts';
import { withPlainNumbers } from './plain-json.ts';
import { ROLLUP_MIGRATIONS, USAGE_ROLLUPS } from './rollup.ts';

export { readUsageAnalytics } from './query.ts';

export const analyticsPlugin = definePlugin({
  name: 'analytics',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: 'Usage roll-ups by hour and day; BYOK analytics, cost comparison and billing export',
  setup({ services }) {
    answerUsageFlushes(services);
    return {
      migrations: ROLLUP_MIGRATIONS,
      usageRollups: USAGE_ROLLUPS,
      usageFolds: USAGE_FOLD_TABLES,
      routes: [
        {
          method: 'GET',
          path: '/v1/analytics/byok',
          role: 'admin',
          query: BYOK_PARAMETERS,
          repeatableQuery: BYOK_REPEATABLE_PARAMETERS,
          summary: 'Usage and estimated cost over a period, by provider and by each group_by (provider, model, team, project, key, day, hour)',
          handle: async ({ request, principal }) => {
            await withFreshUsage(services);
            return services.http.json(withPlainNumbers(await byokAnalytics(services, principal as Principal, request)));
          },
        },
        {
          method: 'GET',
          path: '/v1/analytics/cost-comparison',
          role: 'admin',
          query: COST_COMPARISON_PARAMETERS,
          summary: "The period's usage priced with the account's own keys (cost weights, BYOK fee) against platform keys (markup)",
          handle: async ({ request, principal }) => {
            await withFreshUsage(services);
            return services.http.json(withPlainNumbers(await costComparison(services, principal as Principal, request)));
          },
        },
        {
          method: 'POST',
          path: '/v1/billing/export',
          role: 'admin',
          summary: 'Usage rows of a period as streamed CSV (RFC 4180, formula-safe) or JSON, with breakdowns',
          body: ExportRequestSchema,
          handle: async ({ request, principal }) => {
            await withFreshUsage(services);
            return billingExport(services, principal as Principal, request);
          },
        },
      ],
    };
  },
});
