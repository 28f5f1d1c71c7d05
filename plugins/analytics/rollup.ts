// Usage roll-ups, maintained as usage is written: the store folds each usage batch into every roll-up
// table inside the batch's own transaction (one grouping of the batch, batch-fold.ts), so a
// roll-up can never disagree with the rows, and the request path (which never waits for the store)
// pays nothing for it. Migrations 0001 and 0002 kept them by per-row triggers; 0003 drops those.
// Other plugins (alerts, reconciliation) read `usage_rollup_hourly`; its columns are a contract.

import type { Migration, PluginMigrations, PluginUsageRollups } from '../../core/spec/store.ts';
import { batchFoldStatementsPostgres } from './batch-fold.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import { addedMetricStatements, summaryTableStatements } from './summary-tables.ts';

/** The dimensions of a bucket; '' stands for "none" (no provider served, no team, no project). */
export const ROLLUP_DIMENSIONS = ['provider', 'model', 'team_id', 'project_tag', 'gateway_key_id', 'byok'] as const;

/** Hour buckets are `YYYY-MM-DDTHH` in UTC: the first 13 characters of a usage row's `created_at`. */
export function hourBucket(instant: Date): string {
  return instant.toISOString().slice(0, 13);
}

const ROLLUP_MIGRATIONS_SQLITE: Migration[] = [
  {
    id: '0001_usage_rollup_hourly',
    statements: [
      `CREATE TABLE usage_rollup_hourly (
          account_id TEXT NOT NULL,
          hour TEXT NOT NULL,
          provider TEXT NOT NULL,
          model TEXT NOT NULL,
          team_id TEXT NOT NULL,
          project_tag TEXT NOT NULL,
          gateway_key_id TEXT NOT NULL,
          byok INTEGER NOT NULL,
          requests INTEGER NOT NULL,
          errors INTEGER NOT NULL,
          input_tokens INTEGER NOT NULL,
          output_tokens INTEGER NOT NULL,
          cached_input_tokens INTEGER NOT NULL,
          cache_write_tokens INTEGER NOT NULL,
          reasoning_tokens INTEGER NOT NULL,
          cost_usd REAL NOT NULL,
          unpriced_requests INTEGER NOT NULL,
          latency_ms_sum REAL NOT NULL,
          PRIMARY KEY (account_id, hour, provider, model, team_id, project_tag, gateway_key_id, byok)
        ) WITHOUT ROWID`,
      // Rows booked before the roll-up existed are folded in once, here.
      `INSERT INTO usage_rollup_hourly
          SELECT account_id, substr(created_at, 1, 13), coalesce(provider, ''), coalesce(model, ''), coalesce(team_id, ''),
                 coalesce(project_tag, ''), gateway_key_id, byok, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
                 SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens),
                 SUM(cost_usd), SUM(unpriced), SUM(latency_ms)
          FROM usage_records
          GROUP BY account_id, substr(created_at, 1, 13), coalesce(provider, ''), coalesce(model, ''), coalesce(team_id, ''),
                   coalesce(project_tag, ''), gateway_key_id, byok`,
      `CREATE TRIGGER usage_rollup_hourly_on_insert AFTER INSERT ON usage_records BEGIN
          INSERT INTO usage_rollup_hourly VALUES (
            NEW.account_id, substr(NEW.created_at, 1, 13), coalesce(NEW.provider, ''), coalesce(NEW.model, ''),
            coalesce(NEW.team_id, ''), coalesce(NEW.project_tag, ''), NEW.gateway_key_id, NEW.byok,
            1, CASE WHEN NEW.status >= 400 THEN 1 ELSE 0 END,
            NEW.input_tokens, NEW.output_tokens, NEW.cached_input_tokens, NEW.cache_write_tokens, NEW.reasoning_tokens,
            NEW.cost_usd, NEW.unpriced, NEW.latency_ms)
          ON CONFLICT (account_id, hour, provider, model, team_id, project_tag, gateway_key_id, byok) DO UPDATE SET
            requests = requests + 1,
            errors = errors + excluded.errors,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_usd = cost_usd + excluded.cost_usd,
            unpriced_requests = unpriced_requests + excluded.unpriced_requests,
            latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum;
        END`,
    ],
  },
  // Narrower roll-ups by hour and by day that analytics reads (summary-tables.ts).
  { id: '0002_usage_summaries', statements: summaryTableStatements() },
  {
    // Per-row triggers cost ~30 µs per usage row on the gateway's one thread; the same sums are now
    // folded once per batch (USAGE_ROLLUPS below), inside the batch's transaction.
    id: '0003_rollups_per_batch',
    statements: ['DROP TRIGGER IF EXISTS usage_rollup_hourly_on_insert', 'DROP TRIGGER IF EXISTS usage_summaries_on_insert'],
  },
  // Requests served after a failed attempt, for the dashboard's Overview (summary-tables.ts, METRICS_ADDED).
  { id: '0004_fallback_requests', statements: addedMetricStatements() },
];

export const ROLLUP_MIGRATIONS: PluginMigrations = { sqlite: ROLLUP_MIGRATIONS_SQLITE, postgres: postgresRollupMigrations() };

/**
 * PostgreSQL: the same tables and backfills, translated (core/spec/sql-dialects.ts); no triggers ever,
 * the batch fold keeps them from the start. 0003 (dropping the triggers) has nothing to do there.
 */
function postgresRollupMigrations(): PluginMigrations[string] {
  const sqlite = ROLLUP_MIGRATIONS_SQLITE;
  const withoutTriggers = sqlite.map((migration) => ({
    id: migration.id,
    statements: migration.statements.filter((statement) => !/^\s*(CREATE|DROP) TRIGGER/i.test(statement)),
  }));
  return postgresMigrationsFromSqlite(withoutTriggers);
}

/**
 * Run by a store that does not take folds (the PostgreSQL store) with every usage batch, in its
 * transaction (core/spec/store.ts, PluginUsageRollups); a store that takes folds sums USAGE_FOLD_TABLES
 * (batch-fold.ts) instead.
 */
export const USAGE_ROLLUPS: PluginUsageRollups = {
  postgres: batchFoldStatementsPostgres(),
};
