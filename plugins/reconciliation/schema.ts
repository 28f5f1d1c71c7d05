// Reconciliation's tables, request bodies and settings.

import { Type, type Static } from '@sinclair/typebox';
import { KeyMaterialSchema } from '../../core/spec/key-material.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { Migration, PluginMigrations, PluginUsageRollups } from '../../core/spec/store.ts';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import type { MatchTolerance } from './compare.ts';

/** The providers whose organisation usage and cost reports Keyway can read. */
export const RECONCILED_PROVIDERS = ['openai', 'anthropic'] as const;
export type ReconciledProvider = (typeof RECONCILED_PROVIDERS)[number];

export function isReconciledProvider(name: string): name is ReconciledProvider {
  return (RECONCILED_PROVIDERS as readonly string[]).includes(name);
}

const SQLITE_MIGRATIONS: Migration[] = [
  {
    id: '0001_reconciliation',
    statements: [
      // One admin key per account and provider, sealed by the crypto backend that seals provider keys.
      `CREATE TABLE reconciliation_admin_keys (
          account_id TEXT NOT NULL,
          provider TEXT NOT NULL,
          id TEXT NOT NULL,
          ciphertext TEXT NOT NULL,
          crypto_backend TEXT NOT NULL,
          key_version INTEGER NOT NULL,
          masked_key TEXT NOT NULL,
          fingerprint TEXT NOT NULL,
          created_at TEXT NOT NULL,
          PRIMARY KEY (account_id, provider)
        )`,
      `CREATE TABLE reconciliation_settings (
          account_id TEXT PRIMARY KEY,
          settings TEXT NOT NULL,
          updated_at TEXT NOT NULL
        )`,
      // The daily job's result per account, UTC day and provider; `alerted_at` makes the alert fire once.
      `CREATE TABLE reconciliation_runs (
          account_id TEXT NOT NULL,
          day TEXT NOT NULL,
          provider TEXT NOT NULL,
          status TEXT NOT NULL,
          keyway_cost_usd REAL NOT NULL,
          provider_cost_usd REAL,
          drift_usd REAL,
          drift_percent REAL,
          report TEXT NOT NULL,
          error_code TEXT,
          checked_at TEXT NOT NULL,
          alerted_at TEXT,
          PRIMARY KEY (account_id, day, provider)
        )`,
    ],
  },
  {
    // Keyway's side of the comparison, kept by day, provider, model and provider key as usage is
    // written (inside the batch insert's transaction), so a quarter's report never scans raw rows.
    // Only the account's own keys of the reconciled providers are kept.
    id: '0002_usage_daily_by_key',
    statements: [
      `CREATE TABLE reconciliation_usage_daily (
          account_id TEXT NOT NULL,
          day TEXT NOT NULL,
          provider TEXT NOT NULL,
          model TEXT NOT NULL,
          provider_key_id TEXT NOT NULL,
          requests INTEGER NOT NULL,
          input_tokens INTEGER NOT NULL,
          output_tokens INTEGER NOT NULL,
          cached_input_tokens INTEGER NOT NULL,
          cache_write_tokens INTEGER NOT NULL,
          cost_usd REAL NOT NULL,
          unpriced_requests INTEGER NOT NULL,
          PRIMARY KEY (account_id, provider, day, model, provider_key_id)
        ) WITHOUT ROWID`,
      `INSERT INTO reconciliation_usage_daily
          SELECT account_id, substr(created_at, 1, 10), provider, coalesce(model, ''), coalesce(provider_key_id, ''),
                 SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens),
                 SUM(cache_write_tokens), SUM(CASE WHEN unpriced = 1 THEN 0 ELSE cost_usd END), SUM(unpriced)
          FROM usage_records
          WHERE byok = 1 AND provider IN ('openai', 'anthropic')
          GROUP BY account_id, substr(created_at, 1, 10), provider, coalesce(model, ''), coalesce(provider_key_id, '')`,
      `CREATE TRIGGER reconciliation_usage_daily_on_insert AFTER INSERT ON usage_records
          WHEN NEW.byok = 1 AND NEW.provider IN ('openai', 'anthropic') BEGIN
          INSERT INTO reconciliation_usage_daily VALUES (
            NEW.account_id, substr(NEW.created_at, 1, 10), NEW.provider, coalesce(NEW.model, ''), coalesce(NEW.provider_key_id, ''),
            CASE WHEN NEW.status < 400 THEN 1 ELSE 0 END, NEW.input_tokens, NEW.output_tokens, NEW.cached_input_tokens,
            NEW.cache_write_tokens, CASE WHEN NEW.unpriced = 1 THEN 0 ELSE NEW.cost_usd END, NEW.unpriced)
          ON CONFLICT (account_id, provider, day, model, provider_key_id) DO UPDATE SET
            requests = requests + excluded.requests,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
            cost_usd = cost_usd + excluded.cost_usd,
            unpriced_requests = unpriced_requests + excluded.unpriced_requests;
        END`,
    ],
  },
  {
    // The projects (OpenAI) or workspaces (Anthropic) the reports are narrowed to; [] is the whole organisation.
    id: '0003_admin_key_scope',
    statements: [`ALTER TABLE reconciliation_admin_keys ADD COLUMN scope TEXT NOT NULL DEFAULT '[]'`],
  },
  {
    // The daily table is now folded once per usage batch (RECONCILIATION_USAGE_ROLLUPS), not per row.
    id: '0004_daily_per_batch',
    statements: ['DROP TRIGGER IF EXISTS reconciliation_usage_daily_on_insert'],
  },
  {
    // The settings' `notify` list sealed by the crypto backend (admin-keys.ts, SettingsStore); the
    // `settings` JSON no longer holds it. Lists stored in plaintext before are sealed at the first start after it.
    id: '0005_sealed_notify',
    statements: [
      'ALTER TABLE reconciliation_settings ADD COLUMN notify_ciphertext TEXT',
      'ALTER TABLE reconciliation_settings ADD COLUMN notify_backend TEXT',
      'ALTER TABLE reconciliation_settings ADD COLUMN notify_key_version INTEGER',
    ],
  },
];

/** PostgreSQL: the same tables, translated (core/spec/sql-dialects.ts), with no trigger: the batch fold keeps the daily table from the start. */
const POSTGRES_MIGRATIONS = postgresMigrationsFromSqlite(
  SQLITE_MIGRATIONS.map((migration) => ({
    id: migration.id,
    statements: migration.statements.filter((statement) => !/^\s*(CREATE|DROP) TRIGGER/i.test(statement)),
  })),
);

export const RECONCILIATION_MIGRATIONS: PluginMigrations = { sqlite: SQLITE_MIGRATIONS, postgres: POSTGRES_MIGRATIONS };

/** Folds one usage batch (`id` between ?1 and ?2) into the daily table, with the trigger's expressions. */
const SQLITE_USAGE_FOLD = `INSERT INTO reconciliation_usage_daily
      SELECT account_id, substr(created_at, 1, 10), provider, coalesce(model, ''), coalesce(provider_key_id, ''),
             SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens),
             SUM(cache_write_tokens), SUM(CASE WHEN unpriced = 1 THEN 0 ELSE cost_usd END), SUM(unpriced)
      FROM usage_records
      WHERE id BETWEEN ?1 AND ?2 AND byok = 1 AND provider IN ('openai', 'anthropic')
      GROUP BY 1, 2, 3, 4, 5
      ON CONFLICT (account_id, provider, day, model, provider_key_id) DO UPDATE SET
        requests = requests + excluded.requests,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_requests = unpriced_requests + excluded.unpriced_requests`;

/**
 * The same fold as data (core/spec/usage-fold.ts), for stores that sum batches themselves: the
 * statement above, column for column (test/reconciliation/rollup.test.ts compares them).
 */
export const RECONCILIATION_USAGE_FOLDS: readonly UsageFoldTable[] = [
  {
    table: 'reconciliation_usage_daily',
    where: [
      { column: 'byok', compare: '=', value: 1 },
      { column: 'provider', in: ['openai', 'anthropic'] },
    ],
    keys: [
      { column: 'account_id', from: 'account_id' },
      { column: 'provider', from: 'provider' },
      { column: 'day', from: 'created_at', length: 10 },
      { column: 'model', from: 'model' },
      { column: 'provider_key_id', from: 'provider_key_id' },
    ],
    sums: [
      { column: 'requests', of: 1, when: [{ column: 'status', compare: '<', value: 400 }] },
      { column: 'input_tokens', of: 'input_tokens' },
      { column: 'output_tokens', of: 'output_tokens' },
      { column: 'cached_input_tokens', of: 'cached_input_tokens' },
      { column: 'cache_write_tokens', of: 'cache_write_tokens' },
      { column: 'cost_usd', of: 'cost_usd', when: [{ column: 'unpriced', compare: '<>', value: 1 }] },
      { column: 'unpriced_requests', of: 'unpriced' },
    ],
  },
];

/** For a store that does not take folds: PostgreSQL, which names the existing row in DO UPDATE SET (`target.requests`). */
export const RECONCILIATION_USAGE_ROLLUPS: PluginUsageRollups = {
  postgres: [
    SQLITE_USAGE_FOLD.replace('INSERT INTO reconciliation_usage_daily', 'INSERT INTO reconciliation_usage_daily AS target').replace(
      /(\w+) = \1 \+ excluded\./g,
      '$1 = target.$1 + excluded.',
    ),
  ],
};

const ScopeIds = (what: string) =>
  Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$', errorMessage: { pattern: 'must be an id such as proj_abc or wrkspc_abc' } }), {
    maxItems: 50,
    description: `Narrow the reports to these ${what} (default: the whole organisation)`,
  });

export const AdminKeyBodySchema = Type.Object(
  {
    provider: Type.Union(
      RECONCILED_PROVIDERS.map((name) => Type.Literal(name)),
      { description: 'The provider whose organisation reports the key reads' },
    ),
    admin_key: KeyMaterialSchema({ minLength: 8, description: "The organisation's admin key: OpenAI `sk-admin-...`, Anthropic `sk-ant-admin...`" }),
    verify: Type.Optional(Type.Boolean({ description: 'Check the key with one report call before storing it (default true)' })),
    project_ids: Type.Optional(ScopeIds('OpenAI projects')),
    workspace_ids: Type.Optional(ScopeIds('Anthropic workspaces')),
  },
  { additionalProperties: false },
);
export type AdminKeyBody = Static<typeof AdminKeyBodySchema>;

export const SettingsBodySchema = Type.Object(
  {
    drift_alert_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: 'Alert when a day drifts by at least this share of the bill' })),
    drift_alert_min_usd: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'and by at least this many USD' })),
    match_tolerance_usd: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: 'A row is `matched` when its drift is within this (USD)' })),
    match_tolerance_percent: Type.Optional(
      Type.Number({ minimum: 0, maximum: 100, description: "and within this share of the provider's figure (a drift of $0.00001 or less always is)" }),
    ),
    notify: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 20, description: 'Alert targets (e-mail, webhook, Slack)' })),
    enabled: Type.Optional(Type.Boolean({ description: 'Run the daily reconciliation (default true)' })),
  },
  { additionalProperties: false },
);

export interface ReconciliationSettings {
  drift_alert_percent: number;
  drift_alert_min_usd: number;
  match_tolerance_usd: number;
  match_tolerance_percent: number;
  notify: string[];
  enabled: boolean;
}

export const DEFAULT_SETTINGS: ReconciliationSettings = {
  drift_alert_percent: 5,
  drift_alert_min_usd: 1,
  match_tolerance_usd: 0.0001,
  match_tolerance_percent: 1,
  notify: [],
  enabled: true,
};

/** The two tolerances a row's drift must be within to be `matched` (compare.ts). */
export function matchToleranceOf(settings: ReconciliationSettings): MatchTolerance {
  return { usd: settings.match_tolerance_usd, percent: settings.match_tolerance_percent };
}

/** `POST /v1/reconciliation/run`'s optional body (the route checks it field by field, naming what is wrong). */
export const RunBodySchema = Type.Optional(
  Type.Object(
    {
      day: Type.Optional(Type.String({ description: 'The UTC day to reconcile, YYYY-MM-DD (default yesterday)' })),
      provider: Type.Optional(Type.String({ description: 'One provider only (default every provider with an admin key)' })),
    },
    { additionalProperties: false, description: 'optional: no body reconciles yesterday for every provider' },
  ),
);
