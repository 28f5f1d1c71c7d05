// Reads an account's usage over a period from the roll-ups: whole days and hours from the summary
// tables, the partial hours at the edges from the usage rows (range.ts). Sums only: shaping the
// answer is the route's business (byok.ts).

import type { Store } from '../../core/spec/store.ts';
import { partialEdges, planRange, type EdgeChoice, type RangePiece } from './range.ts';
import { BUCKET_LENGTH, METRICS, metricExpression, summaryTable, type Grain, type MetricName, type SummaryFamily } from './summary-tables.ts';

export const GROUPS = ['provider', 'model', 'team', 'project', 'key', 'day', 'hour'] as const;
export type Group = (typeof GROUPS)[number];

export type Metrics = Record<MetricName, number>;

export interface ModelBucket {
  provider: string;
  model: string;
  metrics: Metrics;
}

export interface UsageAnalytics {
  totals: Metrics;
  /** Always filled: by provider and model ('' provider = no provider served it). */
  byModel: Map<string, ModelBucket>;
  /** Filled when asked for; keys are the dimension's value ('' = none), day `YYYY-MM-DD`, hour `YYYY-MM-DDTHH`. */
  byTeam: Map<string, Metrics>;
  byProject: Map<string, Metrics>;
  byKey: Map<string, Metrics>;
  byDay: Map<string, Metrics>;
  byHour: Map<string, Metrics>;
  /** What was read, for the bench and for tests that check no raw scan happened on whole hours. */
  read: { pieces: RangePiece[]; bucketRows: number; edgeRows: number };
}

export interface AnalyticsQuery {
  accountId: string;
  from: Date;
  to: Date;
  groups: ReadonlySet<Group>;
}

export function emptyMetrics(): Metrics {
  const metrics = {} as Metrics;
  for (const { column } of METRICS) metrics[column as MetricName] = 0;
  return metrics;
}

/** Adds a row of sums, or (sign -1) takes it away: the part of an edge hour's bucket outside the period. */
function addRow(target: Metrics, row: Record<string, unknown>, sign: 1 | -1 = 1): void {
  for (const { column } of METRICS) target[column as MetricName] += sign * Number(row[column] ?? 0);
}

function addInto(map: Map<string, Metrics>, key: string, row: Record<string, unknown>, sign: 1 | -1 = 1): void {
  let metrics = map.get(key);
  if (metrics === undefined) map.set(key, (metrics = emptyMetrics()));
  addRow(metrics, row, sign);
}

function addModel(result: UsageAnalytics, row: Record<string, unknown>, sign: 1 | -1 = 1): void {
  const provider = String(row.provider ?? '');
  const model = String(row.model ?? '');
  const key = `${provider}\u0000${model}`;
  let bucket = result.byModel.get(key);
  if (bucket === undefined) result.byModel.set(key, (bucket = { provider, model, metrics: emptyMetrics() }));
  addRow(bucket.metrics, row, sign);
  addRow(result.totals, row, sign);
}

const SUMS = METRICS.map(({ column }) => `SUM(${column}) AS ${column}`).join(', ');
const ROW_SUMS = METRICS.map((metric) => `SUM(${metricExpression(metric, '')}) AS ${metric.column}`).join(', ');

const bucketText = (instant: Date, grain: Grain): string => instant.toISOString().slice(0, BUCKET_LENGTH[grain]);

async function readBuckets(store: Pick<Store, 'query'>, query: AnalyticsQuery, piece: RangePiece & { source: Grain }, result: UsageAnalytics): Promise<void> {
  const grain = piece.source;
  const where = `account_id = ? AND ${grain} >= ? AND ${grain} < ?`;
  const parameters = [query.accountId, bucketText(piece.from, grain), bucketText(piece.to, grain)];
  const read = async (family: SummaryFamily, select: string, groupBy: string): Promise<Array<Record<string, unknown>>> => {
    const rows = await store.query(`SELECT ${select}, ${SUMS} FROM ${summaryTable(family, grain).name} WHERE ${where} GROUP BY ${groupBy}`, parameters);
    result.read.bucketRows += rows.length;
    return rows;
  };
  for (const row of await read('model', 'provider, model', 'provider, model')) addModel(result, row);
  if (query.groups.has('day')) {
    for (const row of await read('model', `substr(${grain}, 1, 10) AS bucket`, '1')) addInto(result.byDay, String(row.bucket), row);
  }
  if (query.groups.has('team') || query.groups.has('key')) {
    for (const row of await read('key', 'team_id, gateway_key_id', 'team_id, gateway_key_id')) {
      if (query.groups.has('team')) addInto(result.byTeam, String(row.team_id ?? ''), row);
      if (query.groups.has('key')) addInto(result.byKey, String(row.gateway_key_id ?? ''), row);
    }
  }
  if (query.groups.has('project')) {
    for (const row of await read('project', 'project_tag', 'project_tag')) addInto(result.byProject, String(row.project_tag ?? ''), row);
  }
}

/** Hour buckets of whole hours, from the one-row-per-hour table (the day-grain pieces have none). */
async function readHours(store: Pick<Store, 'query'>, query: AnalyticsQuery, piece: RangePiece, result: UsageAnalytics): Promise<void> {
  const rows = await store.query(
    `SELECT hour, ${SUMS} FROM ${summaryTable('total', 'hour').name} WHERE account_id = ? AND hour >= ? AND hour < ? GROUP BY hour`,
    [query.accountId, bucketText(piece.from, 'hour'), bucketText(piece.to, 'hour')],
  );
  result.read.bucketRows += rows.length;
  for (const row of rows) addInto(result.byHour, String(row.hour), row);
}

/**
 * The minutes of a partial hour, straight from usage_records through its (account_id, created_at)
 * index, in one GROUP BY over every dimension asked for: each row is read and summed once, and the
 * few groups it yields are folded into each list here (four narrow scans, one per list, cost about
 * four times as much: 10 ms against 3 for the 90-day bench query's two edges). Added, or taken away
 * from their hour's bucket when the piece's sign is -1.
 */
async function readRows(store: Pick<Store, 'query'>, query: AnalyticsQuery, piece: RangePiece, result: UsageAnalytics): Promise<void> {
  const { sign } = piece;
  const groups = query.groups;
  const owners = groups.has('team') || groups.has('key');
  const project = groups.has('project');
  const time = groups.has('day') || groups.has('hour');
  const dimensions = [
    `coalesce(provider, '') AS provider`,
    `coalesce(model, '') AS model`,
    ...(owners ? [`coalesce(team_id, '') AS team_id`, 'gateway_key_id'] : []),
    ...(project ? [`coalesce(project_tag, '') AS project_tag`] : []),
    ...(time ? ['substr(created_at, 1, 13) AS hour'] : []),
  ];
  const positions = dimensions.map((_, index) => index + 1).join(', ');
  const rows = await store.query(
    `SELECT ${dimensions.join(', ')}, ${ROW_SUMS} FROM usage_records WHERE account_id = ? AND created_at >= ? AND created_at < ? GROUP BY ${positions}`,
    [query.accountId, piece.from.toISOString(), piece.to.toISOString()],
  );
  for (const row of rows) {
    addModel(result, row, sign);
    result.read.edgeRows += Number(row.requests ?? 0);
    if (groups.has('team')) addInto(result.byTeam, String(row.team_id), row, sign);
    if (groups.has('key')) addInto(result.byKey, String(row.gateway_key_id), row, sign);
    if (project) addInto(result.byProject, String(row.project_tag), row, sign);
    if (groups.has('day')) addInto(result.byDay, String(row.hour).slice(0, 10), row, sign);
    if (groups.has('hour')) addInto(result.byHour, String(row.hour), row, sign);
  }
}

async function countRows(store: Pick<Store, 'query'>, accountId: string, range: { from: Date; to: Date }): Promise<number> {
  // Index-only: the (account_id, created_at) index answers a count without reading a row.
  const [row] = await store.query('SELECT count(*) AS rows FROM usage_records WHERE account_id = ? AND created_at >= ? AND created_at < ?', [
    accountId,
    range.from.toISOString(),
    range.to.toISOString(),
  ]);
  return Number(row?.rows ?? 0);
}

/** For each partial edge hour: read its bucket minus the rows outside the period when those are fewer. */
async function chooseEdges(store: Pick<Store, 'query'>, query: AnalyticsQuery): Promise<EdgeChoice> {
  const edges = partialEdges(query.from, query.to);
  const choice: EdgeChoice = { start: false, end: false };
  for (const side of ['start', 'end'] as const) {
    const edge = edges[side];
    if (edge === undefined) continue;
    const outside = await countRows(store, query.accountId, edge.outside);
    choice[side] = outside === 0 || outside < (await countRows(store, query.accountId, edge.inside));
  }
  return choice;
}

/** Entries whose rows were all taken away again (they lay only outside the period) are dropped. */
function dropEmpty(result: UsageAnalytics): void {
  for (const [key, bucket] of result.byModel) if (bucket.metrics.requests === 0) result.byModel.delete(key);
  for (const map of [result.byTeam, result.byProject, result.byKey, result.byDay, result.byHour]) {
    for (const [key, metrics] of map) if (metrics.requests === 0) map.delete(key);
  }
}

/**
 * The store, each read made after the requests that arrived meanwhile had their turn. The embedded
 * store answers synchronously (bun:sqlite), so a report's dozen or two reads held the event loop for
 * all of their time (the slowest bench report, ~30 ms, stalled every request in flight that long);
 * now a request waits for one read at most. A store that reads over the network loses a few µs a read.
 */
function yieldingReads(store: Store): Pick<Store, 'query'> {
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  return { query: (sql, parameters) => turn().then(() => store.query(sql, parameters)) };
}

/** Sums of an account's usage over [from, to), grouped as asked. */
export async function readUsageAnalytics(givenStore: Store, query: AnalyticsQuery): Promise<UsageAnalytics> {
  const store = yieldingReads(givenStore);
  const pieces = planRange(query.from, query.to, await chooseEdges(store, query));
  const result: UsageAnalytics = {
    totals: emptyMetrics(),
    byModel: new Map(),
    byTeam: new Map(),
    byProject: new Map(),
    byKey: new Map(),
    byDay: new Map(),
    byHour: new Map(),
    read: { pieces, bucketRows: 0, edgeRows: 0 },
  };
  for (const piece of pieces) {
    if (piece.source === 'rows') await readRows(store, query, piece, result);
    else {
      await readBuckets(store, query, piece as RangePiece & { source: Grain }, result);
      if (query.groups.has('hour')) await readHours(store, query, piece, result);
    }
  }
  dropEmpty(result);
  return result;
}
