// The roll-ups analytics reads. The hourly table in rollup.ts keeps every dimension at once, so a
// busy account has thousands of buckets per hour: too many to sum over a quarter in milliseconds.
// These keep one family of dimensions each, by hour and by day, so a query reads a few thousand
// bucket rows whatever the period:
//   usage_summary_model_hourly / _daily    (provider, model)          totals, providers, models, days
//   usage_summary_key_hourly / _daily      (team_id, gateway_key_id)  teams, keys
//   usage_summary_project_hourly / _daily  (project_tag)              projects
//   usage_summary_hourly                   (no dimension)             hours
// One trigger keeps them all in step with usage_records inside the batch insert's transaction, and
// the raw-row edges of a period (query.ts) are summed with the very same expressions, so roll-up,
// edge and row can never disagree on what a metric means.
// Applied migrations are never edited: change a table by adding a migration.

import type { UsageCondition, UsageFoldSum } from '../../core/spec/usage-fold.ts';

/**
 * One summed metric: its column, its value for one usage row (`$.` stands for the row) as SQL, and the
 * same value as a fold sum (core/spec/usage-fold.ts) for stores that sum batches themselves.
 * test/analytics/usage-folds.test.ts checks that the two agree on rows of every kind.
 */
interface MetricDefinition {
  column: string;
  expression: string;
  fold: Omit<UsageFoldSum, 'column'>;
}

const SERVED: UsageCondition = { column: 'provider', is: 'not-null' };

/**
 * The metrics migration 0002 created the tables with. Frozen: an applied migration never changes, so a
 * metric added later goes in METRICS_ADDED with the migration that adds its column.
 */
const METRICS_0002: readonly MetricDefinition[] = [
  { column: 'requests', expression: '1', fold: { of: 1 } },
  // Refused by a policy or budget, or failed on every candidate: no provider served it, it cost nothing.
  { column: 'unserved_requests', expression: 'CASE WHEN $.provider IS NULL THEN 1 ELSE 0 END', fold: { of: 1, when: [{ column: 'provider', is: 'null' }] } },
  {
    column: 'byok_requests',
    expression: 'CASE WHEN $.provider IS NOT NULL AND $.byok = 1 THEN 1 ELSE 0 END',
    fold: { of: 1, when: [SERVED, { column: 'byok', compare: '=', value: 1 }] },
  },
  { column: 'errors', expression: 'CASE WHEN $.status >= 400 THEN 1 ELSE 0 END', fold: { of: 1, when: [{ column: 'status', compare: '>=', value: 400 }] } },
  { column: 'input_tokens', expression: '$.input_tokens', fold: { of: 'input_tokens' } },
  { column: 'output_tokens', expression: '$.output_tokens', fold: { of: 'output_tokens' } },
  { column: 'cached_input_tokens', expression: '$.cached_input_tokens', fold: { of: 'cached_input_tokens' } },
  { column: 'cache_write_tokens', expression: '$.cache_write_tokens', fold: { of: 'cache_write_tokens' } },
  { column: 'cache_write_1h_tokens', expression: '$.cache_write_1h_tokens', fold: { of: 'cache_write_1h_tokens' } },
  { column: 'reasoning_tokens', expression: '$.reasoning_tokens', fold: { of: 'reasoning_tokens' } },
  {
    column: 'cost_usd',
    expression: 'CASE WHEN $.unpriced = 1 THEN 0 ELSE $.cost_usd END',
    fold: { of: 'cost_usd', when: [{ column: 'unpriced', compare: '<>', value: 1 }] },
  },
  {
    column: 'byok_cost_usd',
    expression: 'CASE WHEN $.byok = 1 AND $.unpriced = 0 THEN $.cost_usd ELSE 0 END',
    fold: {
      of: 'cost_usd',
      when: [
        { column: 'byok', compare: '=', value: 1 },
        { column: 'unpriced', compare: '=', value: 0 },
      ],
    },
  },
  // Served but without a price: reported as a count, never folded into the cost as $0.
  {
    column: 'unpriced_requests',
    expression: 'CASE WHEN $.provider IS NOT NULL AND $.unpriced = 1 THEN 1 ELSE 0 END',
    fold: { of: 1, when: [SERVED, { column: 'unpriced', compare: '=', value: 1 }] },
  },
  { column: 'latency_ms_sum', expression: 'CASE WHEN $.provider IS NOT NULL THEN $.latency_ms ELSE 0 END', fold: { of: 'latency_ms', when: [SERVED] } },
];

/**
 * Added by migration 0004 (`ALTER TABLE … ADD COLUMN`, default 0: rows booked before it count as none).
 * A fallback request was served after at least one failed attempt (`fallback_attempts` counts the failed ones).
 */
export const METRICS_ADDED: readonly MetricDefinition[] = [
  {
    column: 'fallback_requests',
    expression: 'CASE WHEN $.provider IS NOT NULL AND $.fallback_attempts > 0 THEN 1 ELSE 0 END',
    fold: { of: 1, when: [SERVED, { column: 'fallback_attempts', compare: '>', value: 0 }] },
  },
];

/** Every metric kept per bucket. "Served" means a provider answered it (`provider` is set). */
export const METRICS: readonly MetricDefinition[] = [...METRICS_0002, ...METRICS_ADDED];

export type MetricName =
  | 'requests'
  | 'unserved_requests'
  | 'byok_requests'
  | 'errors'
  | 'input_tokens'
  | 'output_tokens'
  | 'cached_input_tokens'
  | 'cache_write_tokens'
  | 'cache_write_1h_tokens'
  | 'reasoning_tokens'
  | 'cost_usd'
  | 'byok_cost_usd'
  | 'unpriced_requests'
  | 'latency_ms_sum'
  | 'fallback_requests';

export type Grain = 'hour' | 'day';

/** Bucket keys: `YYYY-MM-DDTHH` for hours, `YYYY-MM-DD` for days (prefixes of `created_at`). */
export const BUCKET_LENGTH: Readonly<Record<Grain, number>> = { hour: 13, day: 10 };

export type SummaryFamily = 'model' | 'key' | 'project' | 'total';

export interface SummaryTable {
  family: SummaryFamily;
  grain: Grain;
  name: string;
  /** Dimension columns and their value for one usage row; '' stands for "none". */
  dimensions: ReadonlyArray<readonly [column: string, expression: string]>;
}

const DIMENSIONS: Readonly<Record<SummaryFamily, SummaryTable['dimensions']>> = {
  model: [
    ['provider', "coalesce($.provider, '')"],
    ['model', "coalesce($.model, '')"],
  ],
  key: [
    ['team_id', "coalesce($.team_id, '')"],
    ['gateway_key_id', '$.gateway_key_id'],
  ],
  project: [['project_tag', "coalesce($.project_tag, '')"]],
  total: [],
};

const table = (family: SummaryFamily, grain: Grain): SummaryTable => ({
  family,
  grain,
  name: `usage_summary_${family === 'total' ? '' : `${family}_`}${grain === 'hour' ? 'hourly' : 'daily'}`,
  dimensions: DIMENSIONS[family],
});

export const SUMMARY_TABLES: readonly SummaryTable[] = [
  table('model', 'hour'),
  table('model', 'day'),
  table('key', 'hour'),
  table('key', 'day'),
  table('project', 'hour'),
  table('project', 'day'),
  table('total', 'hour'),
];

export function summaryTable(family: SummaryFamily, grain: Grain): SummaryTable {
  const found = SUMMARY_TABLES.find((candidate) => candidate.family === family && candidate.grain === grain);
  if (found === undefined) throw new Error(`no ${family} summary by ${grain}`);
  return found;
}

/** A metric's expression for a row named by `prefix` (`NEW.` in the trigger, '' over usage_records). */
export function metricExpression(metric: MetricDefinition, prefix: string): string {
  return metric.expression.replaceAll('$.', prefix);
}

export function summaryKeyColumns(table: SummaryTable): string[] {
  return keyColumns(table);
}

function keyColumns(table: SummaryTable): string[] {
  return ['account_id', table.grain, ...table.dimensions.map(([column]) => column)];
}

/**
 * The primary key's order. Hourly tables are read over a few edge hours: time comes first, so the
 * read is one narrow range. The daily key and project tables are read over whole periods and grouped
 * by their dimensions: with the dimensions first, SQLite aggregates in key order with no sort (2–3×
 * faster on a quarter); it reads the account's days outside the period too, cheaply, without summing.
 */
export function summaryPrimaryKey(table: SummaryTable): string[] {
  return primaryKey(table);
}

function primaryKey(table: SummaryTable): string[] {
  const dimensions = table.dimensions.map(([column]) => column);
  if (table.grain === 'day' && (table.family === 'key' || table.family === 'project')) return ['account_id', ...dimensions, table.grain];
  return keyColumns(table);
}

function createTable(table: SummaryTable): string {
  const dimensions = keyColumns(table).map((column) => `${column} TEXT NOT NULL`);
  const metrics = METRICS_0002.map(({ column }) => `${column} ${column.endsWith('_usd') || column === 'latency_ms_sum' ? 'REAL' : 'INTEGER'} NOT NULL`);
  return `CREATE TABLE ${table.name} (${[...dimensions, ...metrics].join(', ')}, PRIMARY KEY (${primaryKey(table).join(', ')})) WITHOUT ROWID`;
}

function keyValues(table: SummaryTable, prefix: string): string[] {
  return [
    `${prefix}account_id`,
    `substr(${prefix}created_at, 1, ${BUCKET_LENGTH[table.grain]})`,
    ...table.dimensions.map(([, expression]) => expression.replaceAll('$.', prefix)),
  ];
}

/** Rows booked before the table existed are folded in once, by the migration that creates it. */
function backfill(table: SummaryTable): string {
  const keys = keyValues(table, '');
  return `INSERT INTO ${table.name} (${[...keyColumns(table), ...METRICS_0002.map(({ column }) => column)].join(', ')})
    SELECT ${[...keys, ...METRICS_0002.map((metric) => `SUM(${metricExpression(metric, '')})`)].join(', ')}
    FROM usage_records GROUP BY ${keys.map((_, index) => index + 1).join(', ')}`;
}

function upsert(table: SummaryTable): string {
  const columns = [...keyColumns(table), ...METRICS_0002.map(({ column }) => column)];
  const values = [...keyValues(table, 'NEW.'), ...METRICS_0002.map((metric) => metricExpression(metric, 'NEW.'))];
  const updates = METRICS_0002.map(({ column }) => `${column} = ${column} + excluded.${column}`);
  return `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${values.join(', ')})
    ON CONFLICT (${primaryKey(table).join(', ')}) DO UPDATE SET ${updates.join(', ')};`;
}

/** The statements of migration 0002: the tables, their backfill, and the one trigger that keeps them all. */
export function summaryTableStatements(tables: readonly SummaryTable[] = SUMMARY_TABLES): string[] {
  return [
    ...tables.map(createTable),
    ...tables.map(backfill),
    `CREATE TRIGGER usage_summaries_on_insert AFTER INSERT ON usage_records BEGIN
      ${tables.map(upsert).join('\n      ')}
    END`,
  ];
}

/** Migration 0004: the columns of METRICS_ADDED on every summary table. */
export function addedMetricStatements(tables: readonly SummaryTable[] = SUMMARY_TABLES): string[] {
  return tables.flatMap((table) => METRICS_ADDED.map(({ column }) => `ALTER TABLE ${table.name} ADD COLUMN ${column} INTEGER NOT NULL DEFAULT 0`));
}
