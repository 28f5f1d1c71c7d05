// Whose usage, over which period: shared by the analytics, cost-comparison and export routes.

import { parsePeriod, type Period } from '../../core/http/kit/period.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';

/**
 * The account a call reads. An account admin reads its own account only; the operator reads
 * `default` (the account it acts on), or any account it names with `account_id`.
 */
export function accountOf(services: Services, principal: Principal, requested: string | null | undefined): string {
  if (requested === null || requested === undefined || requested === '' || requested === principal.accountId) return principal.accountId;
  if (principal.role !== 'operator') {
    throw services.errors.create('permission_denied', { detail: 'account_id names another account; an account key reads its own account only.' });
  }
  if (!services.snapshot.current.accounts.has(requested)) {
    throw services.errors.create('not_found', { detail: `No account ${requested.slice(0, 100)}.` });
  }
  return requested;
}

/** The period of a query (`period`, or `start`/`end`), or 400 naming what is wrong. */
export function periodOf(services: Services, query: URLSearchParams): Period {
  const period = parsePeriod(query, services.clock.now());
  if ('error' in period) throw services.errors.create('invalid_field', { param: period.param, detail: period.error }, { param: period.param });
  return period;
}

export function periodAnswer(period: Period): { name: string; start: string; end: string } {
  return { name: period.name, start: period.from.toISOString(), end: period.to.toISOString() };
}
