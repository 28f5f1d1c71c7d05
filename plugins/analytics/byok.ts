// GET /v1/analytics/byok: the seed's answer (`total_requests`, `estimated_costs`, `by_provider[]`
// with `name`, `requests`, `estimated_cost`, `avg_latency_ms`, `models_used`) and a list per
// `group_by` value, all from the roll-ups (query.ts). What each figure counts is in docs/analytics.md.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import { feeIntervals, feeRates, feeSchedule, feesOn, groupCost, type FeeRates } from './fees.ts';
import { keyNamesOf, teamNamesOf } from './names.ts';
import { GROUPS, readUsageAnalytics, type AnalyticsQuery, type Group, type Metrics, type UsageAnalytics } from './query.ts';
import { accountOf, periodAnswer, periodOf } from './scope.ts';

/** The seed's list names, by group. */
const LIST_NAMES: Readonly<Record<Group, string>> = {
  provider: 'by_provider',
  model: 'by_model',
  team: 'by_team',
  project: 'by_project',
  key: 'by_key',
  day: 'by_day',
  hour: 'by_hour',
};

/** What `GET /v1/analytics/byok` takes; anything else (a misspelt `groupby`) is refused, naming it. */
export const BYOK_PARAMETERS = [...PERIOD_PARAMETERS, 'group_by', 'account_id'] as const;
/** `group_by` is a list, given comma-separated or repeated (joined); any other parameter given twice is refused. */
export const BYOK_REPEATABLE_PARAMETERS = ['group_by'] as const;

export function parseGroups(services: Services, query: URLSearchParams): Set<Group> {
  const groups = new Set<Group>(['provider']);
  const values = query
    .getAll('group_by')
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
  for (const value of values) {
    if (!(GROUPS as readonly string[]).includes(value)) {
      // Redacted before it is cut: a key cut short no longer matches its own value or shape.
      const detail = `'${services.errors.redact(value).slice(0, 40)}' is not a grouping; use a comma-separated list of ${GROUPS.join(', ')}`;
      throw services.errors.create('invalid_field', { param: 'group_by', detail }, { param: 'group_by' });
    }
    groups.add(value as Group);
  }
  return groups;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

type Entry = Record<string, unknown> & { estimated_cost: number | null; requests: number };

/** A group's fees: the operator's markup and BYOK fee on its cost, at the rates in force when its rows were booked. */
export type FeeOf = (metrics: Metrics) => number;

/** The fees of a group at one set of rates (no change of rates inside the period). */
export const feesAt =
  (rates: FeeRates): FeeOf =>
  (metrics) =>
    feesOn(metrics.byok_cost_usd, metrics.cost_usd - metrics.byok_cost_usd, rates);

/**
 * The fees of every group of `result` when the rates changed inside the period: the period is read again
 * piece by piece (one read per change), each piece's groups taking the rates in force then, and each
 * group of the whole answer gets the sum of its pieces' fees. A period without a change reads nothing more.
 */
async function feesOverTime(services: Services, query: AnalyticsQuery, result: UsageAnalytics): Promise<FeeOf> {
  const intervals = feeIntervals(feeSchedule(services), query.from, query.to);
  const only = intervals[0];
  if (intervals.length === 1 && only !== undefined) return feesAt(only.rates);
  const fees = new Map<Metrics, number>();
  const add = (metrics: Metrics | undefined, fee: number): void => {
    if (metrics !== undefined) fees.set(metrics, (fees.get(metrics) ?? 0) + fee);
  };
  for (const piece of intervals) {
    const part = await readUsageAnalytics(services.store, { ...query, from: piece.from, to: piece.to });
    const fee = feesAt(piece.rates);
    add(result.totals, fee(part.totals));
    for (const [key, bucket] of part.byModel) add(result.byModel.get(key)?.metrics, fee(bucket.metrics));
    for (const list of ['byTeam', 'byProject', 'byKey', 'byDay', 'byHour'] as const)
      for (const [key, metrics] of part[list]) add(result[list].get(key), fee(metrics));
  }
  return (metrics) => fees.get(metrics) ?? 0;
}

/**
 * The figures every total and every list entry carries. Costs are list prices (what the providers
 * bill); `platform_fees` and `billed_cost` add the operator's markup and BYOK fee beside them.
 */
export function figures(metrics: Metrics, feeOf: FeeOf): Entry {
  const served = metrics.requests - metrics.unserved_requests;
  const platformCost = metrics.cost_usd - metrics.byok_cost_usd;
  const fees = feeOf(metrics);
  const cost = (value: number): number | null => groupCost(value, served, metrics.unpriced_requests);
  return {
    requests: served,
    byok_requests: metrics.byok_requests,
    platform_requests: served - metrics.byok_requests,
    estimated_cost: cost(metrics.cost_usd),
    byok_estimated_cost: cost(metrics.byok_cost_usd),
    platform_estimated_cost: cost(platformCost),
    platform_fees: cost(fees),
    billed_cost: cost(metrics.cost_usd + fees),
    unpriced_requests: metrics.unpriced_requests,
    errors: metrics.errors,
    fallback_requests: metrics.fallback_requests,
    avg_latency_ms: served > 0 ? round1(metrics.latency_ms_sum / served) : null,
    tokens: {
      input: metrics.input_tokens,
      output: metrics.output_tokens,
      cached_input: metrics.cached_input_tokens,
      cache_write: metrics.cache_write_tokens,
      cache_write_1h: metrics.cache_write_1h_tokens,
      reasoning: metrics.reasoning_tokens,
    },
  };
}

// An unpriced group sorts as if it cost nothing: its cost is unknown, not large.
const byCost = (left: Entry, right: Entry): number =>
  (right.estimated_cost ?? 0) - (left.estimated_cost ?? 0) || right.requests - left.requests || String(left.name).localeCompare(String(right.name));

function providerList(result: UsageAnalytics, feeOf: FeeOf): Entry[] {
  const providers = new Map<string, { metrics: Metrics[]; models: string[] }>();
  for (const bucket of result.byModel.values()) {
    if (bucket.provider === '') continue;
    let provider = providers.get(bucket.provider);
    if (provider === undefined) providers.set(bucket.provider, (provider = { metrics: [], models: [] }));
    provider.metrics.push(bucket.metrics);
    if (bucket.model !== '') provider.models.push(bucket.model);
  }
  return [...providers]
    .map(([name, { metrics, models }]) => {
      // A provider's fees are its models' (each model's at the rates of when its rows were booked).
      const fees = metrics.reduce((sum, model) => sum + feeOf(model), 0);
      return { name, ...figures(sumOf(metrics), () => fees), models_used: models.sort() } as Entry;
    })
    .sort(byCost);
}

function sumOf(list: Metrics[]): Metrics {
  const [first, ...rest] = list;
  const total = { ...(first as Metrics) };
  for (const metrics of rest) for (const name of Object.keys(total) as Array<keyof Metrics>) total[name] += metrics[name];
  return total;
}

function modelList(result: UsageAnalytics, feeOf: FeeOf): Entry[] {
  return [...result.byModel.values()]
    .filter((bucket) => bucket.provider !== '')
    .map((bucket) => ({ name: bucket.model, provider: bucket.provider, ...figures(bucket.metrics, feeOf) }) as Entry)
    .sort(byCost);
}

/** Owner and time lists also count what no provider served (a team's refused requests, say). */
function withUnserved(metrics: Metrics, feeOf: FeeOf): Entry {
  return { ...figures(metrics, feeOf), unserved_requests: metrics.unserved_requests };
}

async function ownerList(services: Services, group: 'team' | 'project' | 'key', result: UsageAnalytics, accountId: string, feeOf: FeeOf): Promise<Entry[]> {
  if (group === 'team') {
    // A deleted team keeps its name; an id that is no team of the account's (rows copied in from
    // elsewhere, say) shows as itself, so no entry with a team is nameless.
    const teams = teamNamesOf(services, accountId);
    return [...result.byTeam].map(([id, metrics]) => {
      const team_id = id === '' ? null : id;
      return { team_id, name: team_id === null ? null : (teams.get(team_id) ?? team_id), ...withUnserved(metrics, feeOf) } as Entry;
    });
  }
  if (group === 'project') return [...result.byProject].map(([tag, metrics]) => ({ name: tag === '' ? null : tag, ...withUnserved(metrics, feeOf) }) as Entry);
  const names = await keyNamesOf(services, accountId);
  return [...result.byKey].map(([id, metrics]) => {
    const key = names.get(id);
    return { key_id: id, name: key?.name ?? null, masked_key: key?.maskedKey ?? null, ...withUnserved(metrics, feeOf) } as Entry;
  });
}

export async function byokAnalytics(services: Services, principal: Principal, request: Request): Promise<Record<string, unknown>> {
  const query = services.http.requestUrl(request).searchParams;
  refuseUnknownParameters(query, BYOK_PARAMETERS, BYOK_REPEATABLE_PARAMETERS);
  const accountId = accountOf(services, principal, query.get('account_id'));
  const period = periodOf(services, query);
  const groups = parseGroups(services, query);
  const asked: AnalyticsQuery = { accountId, from: period.from, to: period.to, groups };
  const result = await readUsageAnalytics(services.store, asked);
  const rates = feeRates(services);
  const feeOf = await feesOverTime(services, asked, result);
  const totals = figures(result.totals, feeOf);
  const answer: Record<string, unknown> = {
    object: 'analytics.byok',
    account_id: accountId,
    period: periodAnswer(period),
    group_by: [...groups],
    currency: 'USD',
    total_requests: totals.requests,
    estimated_costs: totals.estimated_cost,
    byok_requests: totals.byok_requests,
    platform_requests: totals.platform_requests,
    byok_estimated_costs: totals.byok_estimated_cost,
    platform_estimated_costs: totals.platform_estimated_cost,
    platform_fees: totals.platform_fees,
    billed_costs: totals.billed_cost,
    fee_rates: rates,
    unpriced_requests: totals.unpriced_requests,
    unserved_requests: result.totals.unserved_requests,
    errors: totals.errors,
    fallback_requests: totals.fallback_requests,
    avg_latency_ms: totals.avg_latency_ms,
    tokens: totals.tokens,
    by_provider: providerList(result, feeOf),
  };
  for (const group of groups) {
    if (group === 'provider') continue;
    if (group === 'model') answer.by_model = modelList(result, feeOf);
    else if (group === 'day') answer.by_day = timeList(result.byDay, 'day', (day) => day, feeOf);
    else if (group === 'hour') answer.by_hour = timeList(result.byHour, 'hour', (hour) => `${hour}:00:00Z`, feeOf);
    else answer[LIST_NAMES[group]] = (await ownerList(services, group, result, accountId, feeOf)).sort(byCost);
  }
  return answer;
}

function timeList(buckets: Map<string, Metrics>, field: 'day' | 'hour', label: (bucket: string) => string, feeOf: FeeOf): Array<Record<string, unknown>> {
  return [...buckets]
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([bucket, metrics]) => ({ [field]: label(bucket), ...withUnserved(metrics, feeOf) }));
}
