// What one exported usage row holds, and the breakdowns summed from the exported rows themselves
// as they stream (so a file's breakdowns always add up to its rows). Ids and public key ids only:
// a usage row holds no key material, and none is added here.

import { roundUsd } from '../../core/catalog/pricing.ts';
import type { CsvBytes } from './csv-bytes.ts';
import type { CsvValue } from './csv.ts';
import { feesOn, groupCost, ratesAt, type FeeRates, type FeeSchedule } from './fees.ts';

/** The usage_records columns the export reads, in the order of the SELECT. */
export const EXPORT_SELECT = `id, created_at, request_id, team_id, project_tag, gateway_key_id, provider, model, requested_model, provider_key_id,
  byok, endpoint, status, error_code, streamed, usage_estimated, fallback_attempts, unpriced, input_tokens, output_tokens,
  cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_usd, latency_ms`;

export interface ExportRow {
  created_at: string;
  request_id: string;
  team_id: string | null;
  /** The team's name, a deleted team's included (docs/analytics.md, "Names and numbers"); null without a team. */
  team_name: string | null;
  project_tag: string | null;
  gateway_key_id: string;
  provider: string | null;
  model: string | null;
  requested_model: string;
  provider_key_id: string | null;
  key_owner: 'account' | 'platform' | null;
  endpoint: string;
  status: number;
  error_code: string | null;
  streamed: boolean;
  usage_estimated: boolean;
  fallback_attempts: number;
  priced: boolean;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  reasoning_tokens: number;
  /** Null when no price is known for a served request: never a made-up 0. */
  cost_usd: number | null;
  latency_ms: number;
  /** The operator's markup (platform key) or BYOK fee (account key) on cost_usd, at the rates in force when the row was booked. */
  platform_fees: number | null;
  /** cost_usd + platform_fees: what the account is billed for the row. */
  billed_cost: number | null;
}

const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/**
 * What every row of one export is read with: the fee rates (today's, for the file's header), the rates
 * over time (each row is billed at those in force when it was booked) and the team names of its start.
 */
export interface ExportContext {
  rates: FeeRates;
  schedule?: FeeSchedule;
  teamNames: ReadonlyMap<string, string>;
}

export function toExportRow(row: Record<string, unknown>, { rates: current, schedule, teamNames }: ExportContext): ExportRow {
  const rates = schedule === undefined || schedule.changes.length === 0 ? current : ratesAt(schedule, Date.parse(String(row.created_at)));
  const provider = text(row.provider);
  const team = text(row.team_id);
  const unpriced = Number(row.unpriced) === 1;
  const cost = provider !== null && unpriced ? null : Number(row.cost_usd);
  const byok = Number(row.byok) === 1;
  const fees = cost === null ? null : roundUsd(byok ? feesOn(cost, 0, rates) : feesOn(0, cost, rates));
  // No fee (the default on the account's own keys): the billed cost is the cost, not a rounding of it.
  const billed = cost === null || fees === null ? null : fees === 0 ? cost : roundUsd(cost + fees);
  return {
    created_at: String(row.created_at),
    request_id: String(row.request_id),
    team_id: team,
    team_name: team === null ? null : (teamNames.get(team) ?? null),
    project_tag: text(row.project_tag),
    gateway_key_id: String(row.gateway_key_id),
    provider,
    model: text(row.model),
    requested_model: String(row.requested_model),
    provider_key_id: text(row.provider_key_id),
    key_owner: provider === null ? null : byok ? 'account' : 'platform',
    endpoint: String(row.endpoint),
    status: Number(row.status),
    error_code: text(row.error_code),
    streamed: Number(row.streamed) === 1,
    usage_estimated: Number(row.usage_estimated) === 1,
    fallback_attempts: Number(row.fallback_attempts),
    // A request no provider served cost nothing: it is not "unpriced".
    priced: provider === null || !unpriced,
    input_tokens: Number(row.input_tokens),
    output_tokens: Number(row.output_tokens),
    cached_input_tokens: Number(row.cached_input_tokens),
    cache_write_tokens: Number(row.cache_write_tokens),
    cache_write_1h_tokens: Number(row.cache_write_1h_tokens ?? 0),
    reasoning_tokens: Number(row.reasoning_tokens),
    cost_usd: cost,
    latency_ms: Number(row.latency_ms),
    platform_fees: fees,
    billed_cost: billed,
  };
}

/** The CSV's one table: a `record_type` column tells usage rows from breakdown and total rows. */
export const CSV_COLUMNS = [
  'record_type',
  'created_at',
  'hour',
  'day',
  'request_id',
  'team_id',
  'project_tag',
  'gateway_key_id',
  'provider',
  'model',
  'requested_model',
  'provider_key_id',
  'key_owner',
  'endpoint',
  'status',
  'error_code',
  'streamed',
  'usage_estimated',
  'fallback_attempts',
  'requests',
  'unpriced_requests',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'cache_write_1h_tokens',
  'reasoning_tokens',
  'cost_usd',
  'latency_ms',
  // Added after the first release: at the end, so files read by column position keep their layout.
  'platform_fees',
  'billed_cost',
  // Added later, at the end for the same reason: the team's name (a deleted team's too) on usage and team_breakdown rows.
  'team_name',
] as const;

/**
 * A usage row as one CSV line, in CSV_COLUMNS order, written into the page's bytes. Written out by
 * hand because it runs a million times per export: numbers, booleans and Keyway's own timestamps go
 * in as they are; every text a client or provider could have chosen (ids, tags, model names, error
 * codes) goes through `cell`, csvCell's rules.
 */
export function writeUsageCsv(row: ExportRow, out: CsvBytes): void {
  out.raw('usage,');
  out.raw(row.created_at);
  out.byte(COMMA);
  out.raw(row.created_at.slice(0, 13));
  out.raw(':00:00Z,');
  out.raw(row.created_at.slice(0, 10));
  out.separatedCell(row.request_id);
  out.separatedCell(row.team_id);
  out.separatedCell(row.project_tag);
  out.separatedCell(row.gateway_key_id);
  out.separatedCell(row.provider);
  out.separatedCell(row.model);
  out.separatedCell(row.requested_model);
  out.separatedCell(row.provider_key_id);
  out.byte(COMMA);
  if (row.key_owner !== null) out.raw(row.key_owner);
  out.separatedCell(row.endpoint);
  out.raw(`,${row.status},`);
  out.cell(row.error_code);
  out.raw(
    `,${row.streamed},${row.usage_estimated},${row.fallback_attempts},1,${row.priced ? 0 : 1},${row.input_tokens},${row.output_tokens},` +
      `${row.cached_input_tokens},${row.cache_write_tokens},${row.cache_write_1h_tokens},${row.reasoning_tokens},`,
  );
  out.number(row.cost_usd);
  out.byte(COMMA);
  out.number(row.latency_ms);
  out.byte(COMMA);
  // No fee (the default on the account's own keys): 0, and the billed cost is the cost.
  if (row.platform_fees === 0) out.byte(ZERO);
  else out.number(row.platform_fees);
  out.byte(COMMA);
  out.number(row.billed_cost === row.cost_usd ? row.cost_usd : row.billed_cost);
  out.separatedCell(row.team_name);
  out.raw('\r\n');
}

const COMMA = 0x2c;
const ZERO = 0x30;

export const INCLUDES = [
  'provider_breakdown',
  'model_breakdown',
  'team_breakdown',
  'project_breakdown',
  'key_breakdown',
  'hourly_usage',
  'daily_usage',
] as const;
export type Include = (typeof INCLUDES)[number];

/** The dimension columns a breakdown fills for one row, and its grouping key (computed per row, so cheap). */
const BREAKDOWN_KEYS: Readonly<Record<Include, { key(row: ExportRow): string; dimensions(row: ExportRow): Record<string, string | null> }>> = {
  provider_breakdown: { key: (row) => row.provider ?? '', dimensions: (row) => ({ provider: row.provider }) },
  model_breakdown: { key: (row) => `${row.provider ?? ''}\u0000${row.model ?? ''}`, dimensions: (row) => ({ provider: row.provider, model: row.model }) },
  team_breakdown: { key: (row) => row.team_id ?? '', dimensions: (row) => ({ team_id: row.team_id, team_name: row.team_name }) },
  project_breakdown: { key: (row) => row.project_tag ?? '', dimensions: (row) => ({ project_tag: row.project_tag }) },
  key_breakdown: { key: (row) => row.gateway_key_id, dimensions: (row) => ({ gateway_key_id: row.gateway_key_id }) },
  hourly_usage: { key: (row) => row.created_at.slice(0, 13), dimensions: (row) => ({ hour: `${row.created_at.slice(0, 13)}:00:00Z` }) },
  daily_usage: { key: (row) => row.created_at.slice(0, 10), dimensions: (row) => ({ day: row.created_at.slice(0, 10) }) },
};

export interface Sums {
  requests: number;
  unpriced_requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  reasoning_tokens: number;
  cost_usd: number;
  /** The rows' own fee and billed figures summed, so a file's totals add up to its rows. */
  platform_fees: number;
  billed_cost: number;
  /** Over served rows only, for the average. */
  served: number;
  latency_ms_sum: number;
}

export function emptySums(): Sums {
  return {
    requests: 0,
    unpriced_requests: 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    cache_write_1h_tokens: 0,
    reasoning_tokens: 0,
    cost_usd: 0,
    platform_fees: 0,
    billed_cost: 0,
    served: 0,
    latency_ms_sum: 0,
  };
}

export function addToSums(sums: Sums, row: ExportRow): void {
  sums.requests++;
  if (!row.priced) sums.unpriced_requests++;
  sums.input_tokens += row.input_tokens;
  sums.output_tokens += row.output_tokens;
  sums.cached_input_tokens += row.cached_input_tokens;
  sums.cache_write_tokens += row.cache_write_tokens;
  sums.cache_write_1h_tokens += row.cache_write_1h_tokens;
  sums.reasoning_tokens += row.reasoning_tokens;
  sums.cost_usd += row.cost_usd ?? 0;
  sums.platform_fees += row.platform_fees ?? 0;
  sums.billed_cost += row.billed_cost ?? 0;
  if (row.provider !== null) {
    sums.served++;
    sums.latency_ms_sum += row.latency_ms;
  }
}

/**
 * A breakdown's entry: its dimensions, then the sums, with the average latency of served rows. Costs
 * are null for a group whose served rows are all unpriced (docs/costs.md), the priced sum otherwise.
 */
export function sumsAnswer(dimensions: Record<string, string | null>, sums: Sums): Record<string, unknown> {
  const { served, latency_ms_sum, cost_usd, platform_fees, billed_cost, ...counts } = sums;
  const cost = (value: number): number | null => groupCost(value, served, sums.unpriced_requests);
  return {
    ...dimensions,
    ...counts,
    cost_usd: cost(cost_usd),
    avg_latency_ms: served > 0 ? Math.round((latency_ms_sum / served) * 10) / 10 : null,
    platform_fees: cost(platform_fees),
    billed_cost: cost(billed_cost),
  };
}

/** The breakdowns asked for, summed row by row; memory is bounded by the number of groups, not rows. */
export class Breakdowns {
  readonly totals = emptySums();
  private readonly groups = new Map<Include, Map<string, { dimensions: Record<string, string | null>; sums: Sums }>>();

  constructor(private readonly includes: readonly Include[]) {
    for (const include of includes) this.groups.set(include, new Map());
  }

  add(row: ExportRow): void {
    addToSums(this.totals, row);
    for (const include of this.includes) {
      const breakdown = BREAKDOWN_KEYS[include];
      const key = breakdown.key(row);
      const groups = this.groups.get(include) as Map<string, { dimensions: Record<string, string | null>; sums: Sums }>;
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { dimensions: breakdown.dimensions(row), sums: emptySums() }));
      addToSums(group.sums, row);
    }
  }

  /** Each breakdown's entries: time series in time order, the others by cost. */
  entries(include: Include): Array<Record<string, unknown>> {
    const groups = [...(this.groups.get(include)?.values() ?? [])];
    if (include === 'hourly_usage' || include === 'daily_usage') {
      const field = include === 'hourly_usage' ? 'hour' : 'day';
      groups.sort((left, right) => String(left.dimensions[field]).localeCompare(String(right.dimensions[field])));
    } else {
      groups.sort((left, right) => right.sums.cost_usd - left.sums.cost_usd || right.sums.requests - left.sums.requests);
    }
    return groups.map(({ dimensions, sums }) => sumsAnswer(dimensions, sums));
  }

  /** The totals over every exported row, as a breakdown entry without dimensions. */
  totalsAnswer(): Record<string, unknown> {
    return sumsAnswer({}, this.totals);
  }
}

/** A breakdown or total entry as a CSV row of the one table. */
export function summaryCsvValues(recordType: string, entry: Record<string, unknown>): CsvValue[] {
  return CSV_COLUMNS.map((column) => {
    if (column === 'record_type') return recordType;
    if (column === 'latency_ms') return entry.avg_latency_ms as CsvValue;
    return (entry[column] ?? null) as CsvValue;
  });
}
