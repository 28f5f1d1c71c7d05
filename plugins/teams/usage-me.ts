// `GET /v1/usage/me`: a key's view of its own spending, open to every role down to viewer. Its usage
// over a period (totals, by provider, by model) and the daily budgets of the team it acts for, read
// from the store apart from the team records (index.ts) it only looks up.

import type { Principal } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { budgetLimitNanos, nanosToUsd, toNanosCeil } from '../../core/catalog/nano-usd.ts';
import { roundUsd } from '../../core/catalog/pricing.ts';
import { parsePeriod, PERIODS, utcDayStart } from '../../core/http/kit/period.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import { actingTeamOf, TEAMS_SECTION, type TeamsSection } from './types.ts';

/** Periods `GET /v1/usage/me` accepts (besides start/end). */
export const USAGE_PERIODS = PERIODS;

/** The caller's own usage over a period, and its team's daily budgets (settled spend, from the store). */
/**
 * GET /v1/usage/me reads what was answered before it, as the analytics reports do (plugins/analytics/
 * fresh.ts): usage rows are written in batches (KEYWAY_USAGE_FLUSH_MS), so a member's script that calls a
 * model and then checks its spend found the call missing (QA18). This worker's queue is written first,
 * and the other workers of this instance are asked to write theirs, within the primary's bounded wait.
 */
export const USAGE_ME_FLUSH_TOPIC = 'teams:flush-usage';

/** Lets the other workers' usage/me ask this one to write its queued usage rows. */
export function answerUsageMeFlushes(services: Services): void {
  services.siblings?.respond(USAGE_ME_FLUSH_TOPIC, async () => {
    await services.usageQueue.flush();
    return 'written';
  });
}

async function withFreshUsage(services: Services): Promise<void> {
  // A store that cannot take the batch now keeps it queued: the answer reads what is written.
  await Promise.all([services.usageQueue.flush().catch(() => undefined), services.siblings?.ask(USAGE_ME_FLUSH_TOPIC).catch(() => undefined)]);
}

export async function usageOf(services: Services, principal: Principal, request: Request): Promise<Record<string, unknown>> {
  const nowMs = services.clock.now();
  const query = services.http.requestUrl(request).searchParams;
  refuseUnknownParameters(query, PERIOD_PARAMETERS);
  const period = parsePeriod(query, nowMs);
  if ('error' in period) {
    throw services.errors.create('invalid_field', { param: period.param, detail: period.error }, { param: period.param });
  }
  await withFreshUsage(services);
  const rows = await services.store.summarizeUsage({
    accountId: principal.accountId,
    from: period.from.toISOString(),
    to: period.to.toISOString(),
    gatewayKeyId: principal.keyId,
  });
  const totals = { requests: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_requests: 0 };
  const byProvider = new Map<string, typeof totals>();
  const byModel = new Map<string, typeof totals & { provider: string | null; model: string | null }>();
  for (const row of rows) {
    const add = (target: typeof totals): void => {
      target.requests += row.requests;
      target.input_tokens += row.inputTokens;
      target.output_tokens += row.outputTokens;
      target.cost_usd += row.costUsd;
      target.unpriced_requests += row.unpricedRequests;
    };
    add(totals);
    // Requests no provider served (refused) are the group of no provider: null, as in by_model.
    const providerName = row.provider ?? '';
    let provider = byProvider.get(providerName);
    if (provider === undefined)
      byProvider.set(providerName, (provider = { requests: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_requests: 0 }));
    add(provider);
    const modelKey = `${row.provider ?? ''}\u0000${row.model ?? ''}`;
    let model = byModel.get(modelKey);
    if (model === undefined) {
      byModel.set(
        modelKey,
        (model = { provider: row.provider, model: row.model, requests: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_requests: 0 }),
      );
    }
    add(model);
  }
  // Unpriced requests have no known cost: a group of only those says null, never $0; a mixed group
  // gives the priced requests' cost beside the count of the unpriced ones.
  const cost = (value: typeof totals): number | null => (value.requests > 0 && value.unpriced_requests === value.requests ? null : roundUsd(value.cost_usd));
  const teamId = principal.teamId ?? actingTeamOf(services, principal, request.headers);
  return {
    object: 'usage',
    key_id: principal.keyId,
    role: principal.role,
    account_id: principal.accountId,
    team_id: teamId ?? null,
    byok_access: principal.byokAccess && principal.role !== 'viewer',
    period: { name: period.name, start: period.from.toISOString(), end: period.to.toISOString() },
    totals: { ...totals, cost_usd: cost(totals) },
    by_provider: [...byProvider].map(([provider, value]) => ({ provider: provider === '' ? null : provider, ...value, cost_usd: cost(value) })),
    by_model: [...byModel.values()].map((value) => ({ ...value, cost_usd: cost(value) })),
    budgets: await budgets(services, principal.accountId, teamId, nowMs),
  };
}

/** The team's daily budgets per provider, each with what was spent today and what remains. */
async function budgets(services: Services, accountId: string, teamId: string | undefined, nowMs: number): Promise<Array<Record<string, unknown>>> {
  if (teamId === undefined) return [];
  const team = services.snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(teamId);
  if (team === undefined || team.accountId !== accountId) return [];
  const limits = Object.entries(team.permissions.providers ?? {}).filter(([, rule]) => typeof rule.max_cost_per_day === 'number');
  if (limits.length === 0) return [];
  const dayStart = utcDayStart(new Date(nowMs));
  const resetsAt = new Date(dayStart.getTime() + 86_400_000);
  const rows = await services.store.summarizeUsage({ accountId, teamId, from: dayStart.toISOString(), to: resetsAt.toISOString() });
  return limits.map(([provider, rule]) => {
    const limit = rule.max_cost_per_day as number;
    // In the budget counters' unit and rounding (policies/cost-cap), so this `remaining_usd` and a 402's agree.
    const spent = toNanosCeil(rows.filter((row) => row.provider === provider).reduce((sum, row) => sum + row.costUsd, 0));
    return {
      provider,
      period: 'day',
      limit_usd: limit,
      spent_today_usd: nanosToUsd(spent),
      remaining_usd: nanosToUsd(Math.max(0, budgetLimitNanos(limit) - spent)),
      resets_at: resetsAt.toISOString(),
    };
  });
}
