// Folding a usage batch into every roll-up. Stores that sum batches themselves (the SQLite store, on
// its usage writer thread) are given the tables as data (USAGE_FOLD_TABLES, core/spec/usage-fold.ts):
// the batch is grouped once in a Map and each table gets one upsert per bucket, where grouping the
// rows back out of usage_records in SQL cost ~1.5 µs a row (SQLite groups by sorting). PostgreSQL
// folds in SQL on its own server (batchFoldStatementsPostgres). Either way the sums are the METRICS
// the summary tables and the raw-row edges use, so a roll-up, an edge and a row can never disagree on
// what a metric means (test/analytics/usage-folds.test.ts compares the fold with the SQL).

import type { UsageFoldKey, UsageFoldSum, UsageFoldTable } from '../../core/spec/usage-fold.ts';
import type { SummaryTable } from './summary-tables.ts';
import { BUCKET_LENGTH, METRICS, metricExpression, SUMMARY_TABLES, summaryKeyColumns, summaryPrimaryKey } from './summary-tables.ts';

/** The hourly roll-up's dimensions, with the same '' for "none". */
const DIMENSIONS: ReadonlyArray<readonly [column: string, expression: string]> = [
  ['account_id', 'account_id'],
  ['hour', 'substr(created_at, 1, 13)'],
  ['provider', "coalesce(provider, '')"],
  ['model', "coalesce(model, '')"],
  ['team_id', "coalesce(team_id, '')"],
  ['project_tag', "coalesce(project_tag, '')"],
  ['gateway_key_id', 'gateway_key_id'],
  ['byok', 'byok'],
];

/** What the hourly roll-up (rollup.ts) sums differently from the summary METRICS: every row's cost, unpriced flag and latency. */
const RAW_METRICS: ReadonlyArray<readonly [column: string, expression: string]> = [
  ['raw_cost_usd', 'cost_usd'],
  ['raw_unpriced', 'unpriced'],
  ['raw_latency_ms', 'latency_ms'],
];

const metricColumns = (): string[] => [...METRICS.map(({ column }) => column), ...RAW_METRICS.map(([column]) => column)];

/** The hourly roll-up's columns and the fold column each sums. */
const HOURLY_METRICS: ReadonlyArray<readonly [column: string, source: string]> = [
  ['requests', 'requests'],
  ['errors', 'errors'],
  ['input_tokens', 'input_tokens'],
  ['output_tokens', 'output_tokens'],
  ['cached_input_tokens', 'cached_input_tokens'],
  ['cache_write_tokens', 'cache_write_tokens'],
  ['reasoning_tokens', 'reasoning_tokens'],
  ['cost_usd', 'raw_cost_usd'],
  ['unpriced_requests', 'raw_unpriced'],
  ['latency_ms_sum', 'raw_latency_ms'],
];

/** The fold sum of each column of the fold above: a metric's own, or a raw column summed over every row. */
function foldSum(source: string): Omit<UsageFoldSum, 'column'> {
  const raw = RAW_METRICS.find(([column]) => column === source);
  if (raw !== undefined) return { of: raw[1] };
  const metric = METRICS.find(({ column }) => column === source);
  if (metric === undefined) throw new Error(`no metric ${source}`);
  return metric.fold;
}

/** A key column of a roll-up: its usage column, cut to an hour or a day for the time. */
function foldKey(column: string): UsageFoldKey {
  if (column === 'hour' || column === 'day') return { column, from: 'created_at', length: BUCKET_LENGTH[column] };
  return { column, from: column };
}

const HOURLY_FOLD: UsageFoldTable = {
  table: 'usage_rollup_hourly',
  keys: DIMENSIONS.map(([column]) => foldKey(column)),
  sums: HOURLY_METRICS.map(([column, source]) => ({ column, ...foldSum(source) })),
};

function summaryFold(table: SummaryTable): UsageFoldTable {
  return {
    table: table.name,
    keys: summaryPrimaryKey(table).map(foldKey),
    sums: METRICS.map(({ column, fold }) => ({ column, ...fold })),
  };
}

/** Every roll-up analytics keeps, as fold tables (core/spec/usage-fold.ts). */
export const USAGE_FOLD_TABLES: readonly UsageFoldTable[] = [HOURLY_FOLD, ...SUMMARY_TABLES.map(summaryFold)];

/**
 * The same fold in PostgreSQL, as one statement: the batch is grouped once in a CTE (a temporary table
 * belongs to one pooled connection, a CTE to the statement) and every roll-up is upserted from it by a
 * data-modifying CTE. PostgreSQL wants the existing row named in `DO UPDATE SET`, hence `target.`.
 */
export function batchFoldStatementsPostgres(): string[] {
  const sums = [...METRICS.map((metric) => `SUM(${metricExpression(metric, '')})`), ...RAW_METRICS.map(([, expression]) => `SUM(${expression})`)];
  const fold = `fold (${[...DIMENSIONS.map(([column]) => column), ...metricColumns()].join(', ')}) AS (
    SELECT ${[...DIMENSIONS.map(([, expression]) => expression), ...sums].join(', ')}
    FROM usage_records WHERE id BETWEEN ?1 AND ?2 GROUP BY ${DIMENSIONS.map((_, index) => index + 1).join(', ')})`;
  const keys = DIMENSIONS.map(([column]) => column);
  const hourlyMetrics = HOURLY_METRICS;
  const hourly = `hourly AS (INSERT INTO usage_rollup_hourly AS target (${[...keys, ...hourlyMetrics.map(([column]) => column)].join(', ')})
    SELECT ${[...keys, ...hourlyMetrics.map(([, source]) => source)].join(', ')} FROM fold
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${hourlyMetrics.map(([column]) => `${column} = target.${column} + excluded.${column}`).join(', ')} RETURNING 1)`;
  const summaries = SUMMARY_TABLES.map((table, index) => {
    const tableKeys = ['account_id', table.grain === 'hour' ? 'hour' : 'substr(hour, 1, 10)', ...table.dimensions.map(([column]) => column)];
    const columns = [...summaryKeyColumns(table), ...METRICS.map(({ column }) => column)];
    return `summary_${index} AS (INSERT INTO ${table.name} AS target (${columns.join(', ')})
    SELECT ${[...tableKeys, ...METRICS.map(({ column }) => `SUM(${column})`)].join(', ')}
    FROM fold GROUP BY ${tableKeys.map((_, position) => position + 1).join(', ')}
    ON CONFLICT (${summaryPrimaryKey(table).join(', ')}) DO UPDATE SET ${METRICS.map(({ column }) => `${column} = target.${column} + excluded.${column}`).join(', ')} RETURNING 1)`;
  });
  return [`WITH ${[fold, hourly, ...summaries].join(',\n  ')}\n  SELECT 1`];
}
