// A team's budgets as cost-cap reads them on every request: each budgeted provider's cap in
// nano-dollars and its counter keys, built once per team view. Split from index.ts so approvals can
// read the same caps (a request whose worst case is above the whole cap gets no approval).

import { budgetLimitNanos } from '../../core/catalog/nano-usd.ts';
import type { TeamView } from '../../plugins/teams/types.ts';
import { budgetKey } from './seeding.ts';

/** A team's budgets as the request path reads them: built once per team view, its counter keys once per day. */
export interface TeamBudgets {
  /** Each budgeted provider's `max_cost_per_day` in nano-dollars. */
  limits: Map<string, number>;
  /** The team's seeding unit (`account:team`), one string for every request. */
  unit: string;
  /** The day `keys` are for, and each provider's counter key on it: one string per day, not one per request. */
  date: string;
  keys: Map<string, string>;
}

/** Per team view (a new one comes with every snapshot): built once, read on every request. */
const budgetsByTeam = new WeakMap<TeamView, TeamBudgets>();

export function budgetsOf(team: TeamView): TeamBudgets {
  const cached = budgetsByTeam.get(team);
  if (cached !== undefined) return cached;
  const limits = new Map<string, number>();
  for (const [provider, permission] of Object.entries(team.permissions.providers ?? {})) {
    const cap = permission?.max_cost_per_day;
    if (typeof cap === 'number' && Number.isFinite(cap) && cap >= 0) limits.set(provider, budgetLimitNanos(cap));
  }
  const budgets: TeamBudgets = { limits, unit: `${team.accountId}:${team.id}`, date: '', keys: new Map() };
  budgetsByTeam.set(team, budgets);
  return budgets;
}

export function counterKey(team: TeamView, budgets: TeamBudgets, provider: string, date: string): string {
  if (budgets.date !== date) {
    budgets.keys.clear();
    budgets.date = date;
  }
  let key = budgets.keys.get(provider);
  if (key === undefined) {
    key = budgetKey(team.accountId, team.id, provider, date);
    budgets.keys.set(provider, key);
  }
  return key;
}
