// Folding a usage batch into every roll-up in one pass over its rows. Each roll-up table read the
// batch's rows itself before (eight scans, ~6 µs per row); now one grouped scan fills a per-connection
// temporary table at the finest grain (hour × every dimension), and every roll-up is summed from those
// few rows. The expressions are the same METRICS the summary tables and the raw-row edges use, so a
// roll-up, an edge and a row can never disagree on what a metric means.

import type { SummaryTable } from './summary-tables.ts';
import { METRICS, metricExpression, SUMMARY_TABLES, summaryKeyColumns, summaryPrimaryKey } from './summary-tables.ts';

const FOLD = 'temp.usage_batch_fold';

/** The fold's dimensions: the hourly roll-up's, with the same '' for "none". */
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

function createFold(): string {
  const columns = [...DIMENSIONS.map(([column]) => `${column} NOT NULL`), ...metricColumns().map((column) => `${column} NOT NULL`)];
  return `CREATE TEMP TABLE IF NOT EXISTS usage_batch_fold (${columns.join(', ')})`;
}

function fillFold(): string {
  const sums = [...METRICS.map((metric) => `SUM(${metricExpression(metric, '')})`), ...RAW_METRICS.map(([, expression]) => `SUM(${expression})`)];
  return `INSERT INTO ${FOLD} (${[...DIMENSIONS.map(([column]) => column), ...metricColumns()].join(', ')})
    SELECT ${[...DIMENSIONS.map(([, expression]) => expression), ...sums].join(', ')}
    FROM usage_records WHERE id BETWEEN ?1 AND ?2 GROUP BY ${DIMENSIONS.map((_, index) => index + 1).join(', ')}`;
}

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

/** The fold's rows are unique per hourly bucket: each becomes one upsert into the hourly roll-up. */
function foldIntoHourly(): string {
  const metrics = HOURLY_METRICS;
  const keys = DIMENSIONS.map(([column]) => column);
  return `INSERT INTO usage_rollup_hourly (${[...keys, ...metrics.map(([column]) => column)].join(', ')})
    SELECT ${[...keys, ...metrics.map(([, source]) => source)].join(', ')} FROM ${FOLD} WHERE true
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${metrics.map(([column]) => `${column} = ${column} + excluded.${column}`).join(', ')}`;
}

function foldIntoSummary(table: SummaryTable): string {
  const keys = ['account_id', table.grain === 'hour' ? 'hour' : 'substr(hour, 1, 10)', ...table.dimensions.map(([column]) => column)];
  const columns = [...summaryKeyColumns(table), ...METRICS.map(({ column }) => column)];
  const updates = METRICS.map(({ column }) => `${column} = ${column} + excluded.${column}`);
  return `INSERT INTO ${table.name} (${columns.join(', ')})
    SELECT ${[...keys, ...METRICS.map(({ column }) => `SUM(${column})`)].join(', ')}
    FROM ${FOLD} WHERE true GROUP BY ${keys.map((_, index) => index + 1).join(', ')}
    ON CONFLICT (${summaryPrimaryKey(table).join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}

/** Run in order inside each usage batch's transaction (core/spec/store.ts, PluginUsageRollups). */
export function batchFoldStatements(): string[] {
  return [
    createFold(),
    // A batch that failed after filling the fold rolled it back with everything else; this is belt and braces.
    `DELETE FROM ${FOLD}`,
    fillFold(),
    foldIntoHourly(),
    ...SUMMARY_TABLES.map(foldIntoSummary),
    `DELETE FROM ${FOLD}`,
  ];
}

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
