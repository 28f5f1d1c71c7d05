// GET /v1/analytics/cost-comparison, as PRODUCT.md defines it, for the account's served requests of
// the period (whoever's keys served them: the question is what the same traffic costs each way):
//   byok.provider_costs   = Σ list cost × the account's routing cost_weights[provider] (default 1)
//   byok.platform_fees    = provider_costs × byok_fee_percent / 100 (operator setting, default 0)
//   parrotrouter.total    = Σ list cost × (1 + platform_markup_percent / 100) (operator setting, default 5)
//   savings               = parrotrouter.total − byok.total; savings_percentage of parrotrouter.total
// Unpriced requests are counted and left out of every sum, never priced at $0 silently; a provider (or a
// period) whose served requests are all unpriced has null figures, not zeros.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import { feeRates, groupCost, unpricedOnly } from './fees.ts';
import { readUsageAnalytics, type Metrics } from './query.ts';
import { accountOf, periodAnswer, periodOf } from './scope.ts';

/** The account's `routing.cost_weights` (PUT /v1/settings/routing): what its own keys really cost per list dollar. */
function costWeights(services: Services, accountId: string): Record<string, number> {
  const routing = services.snapshot.current.accounts.get(accountId)?.settings.routing as { cost_weights?: unknown } | undefined;
  const weights = routing?.cost_weights;
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) return {};
  const valid: Record<string, number> = {};
  for (const [provider, weight] of Object.entries(weights)) if (typeof weight === 'number' && Number.isFinite(weight) && weight >= 0) valid[provider] = weight;
  return valid;
}

const percentOf = (part: number, whole: number): number => (whole > 0 ? Math.round((part / whole) * 10_000) / 100 : 0);

export const COST_COMPARISON_PARAMETERS = [...PERIOD_PARAMETERS, 'account_id'] as const;

export async function costComparison(services: Services, principal: Principal, request: Request): Promise<Record<string, unknown>> {
  const query = services.http.requestUrl(request).searchParams;
  // No group_by here: a grouping asked of the comparison is refused, not answered ungrouped.
  refuseUnknownParameters(query, COST_COMPARISON_PARAMETERS);
  const accountId = accountOf(services, principal, query.get('account_id'));
  const period = periodOf(services, query);
  const result = await readUsageAnalytics(services.store, { accountId, from: period.from, to: period.to, groups: new Set() });
  const rates = feeRates(services);
  const markupPercent = rates.platform_markup_percent;
  const feePercent = rates.byok_fee_percent;
  const weights = costWeights(services, accountId);

  const providers = new Map<string, Pick<Metrics, 'requests' | 'unpriced_requests' | 'cost_usd'>>();
  for (const bucket of result.byModel.values()) {
    if (bucket.provider === '') continue;
    const entry = providers.get(bucket.provider) ?? { requests: 0, unpriced_requests: 0, cost_usd: 0 };
    entry.requests += bucket.metrics.requests;
    entry.unpriced_requests += bucket.metrics.unpriced_requests;
    entry.cost_usd += bucket.metrics.cost_usd;
    providers.set(bucket.provider, entry);
  }

  let listPrice = 0;
  let providerCosts = 0;
  const byProvider = [...providers].map(([name, entry]) => {
    const weight = weights[name] ?? 1;
    const weighted = entry.cost_usd * weight;
    listPrice += entry.cost_usd;
    providerCosts += weighted;
    const fees = (weighted * feePercent) / 100;
    const parrotrouter = entry.cost_usd * (1 + markupPercent / 100);
    const cost = (value: number): number | null => groupCost(value, entry.requests, entry.unpriced_requests);
    return {
      name,
      requests: entry.requests,
      unpriced_requests: entry.unpriced_requests,
      list_price: cost(entry.cost_usd),
      cost_weight: weight,
      byok: { provider_costs: cost(weighted), platform_fees: cost(fees), total: cost(weighted + fees) },
      parrotrouter: { total: cost(parrotrouter) },
      savings: cost(parrotrouter - weighted - fees),
    };
  });
  byProvider.sort((left, right) => (right.list_price ?? 0) - (left.list_price ?? 0) || left.name.localeCompare(right.name));

  const platformFees = (providerCosts * feePercent) / 100;
  const byokTotal = providerCosts + platformFees;
  const parrotrouterTotal = listPrice * (1 + markupPercent / 100);
  const savings = parrotrouterTotal - byokTotal;
  const served = result.totals.requests - result.totals.unserved_requests;
  const cost = (value: number): number | null => groupCost(value, served, result.totals.unpriced_requests);
  return {
    object: 'analytics.cost_comparison',
    account_id: accountId,
    period: periodAnswer(period),
    currency: 'USD',
    requests: served,
    unpriced_requests: result.totals.unpriced_requests,
    list_price: cost(listPrice),
    byok: { provider_costs: cost(providerCosts), platform_fees: cost(platformFees), total: cost(byokTotal), fee_percent: feePercent },
    parrotrouter: { total: cost(parrotrouterTotal), markup_percent: markupPercent },
    savings: cost(savings),
    savings_percentage: unpricedOnly(served, result.totals.unpriced_requests) ? null : percentOf(savings, parrotrouterTotal),
    cost_weights: weights,
    by_provider: byProvider,
  };
}
