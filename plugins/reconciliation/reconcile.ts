// One reconciliation: Keyway's usage rows for an account and period (grouped in SQL by UTC day,
// provider, model and provider key) against each configured provider's organisation reports.

import type { Services } from '../../core/spec/services.ts';
import type { AdminKeys } from './admin-keys.ts';
import { fetchAnthropicReport } from './anthropic-report.ts';
import {
  compareKeys,
  compareModels,
  totalsOf,
  type ComparedKeyRow,
  type ComparedRow,
  type KeywayKey,
  type KeywayRow,
  type MatchTolerance,
  type ProviderTotals,
} from './compare.ts';
import { fetchOpenAIReport } from './openai-report.ts';
import { numberOf, ReportError, type ProviderReport } from './report-fetch.ts';
import { RECONCILED_PROVIDERS, type ReconciledProvider } from './schema.ts';

export const DAY_MS = 86_400_000;

export interface ProviderOutcome {
  provider: ReconciledProvider;
  status: 'ok' | 'error' | 'not_configured';
  error?: { code: string; message: string };
  totals?: ProviderTotals;
}

export interface Reconciliation {
  from: Date;
  to: Date;
  providers: ProviderOutcome[];
  rows: ComparedRow[];
  keys: ComparedKeyRow[];
}

/** A period widened to whole UTC days: the providers' reports come in day buckets. */
export function wholeDays(from: Date, to: Date): { from: Date; to: Date } {
  const start = Math.floor(from.getTime() / DAY_MS) * DAY_MS;
  const end = Math.ceil(to.getTime() / DAY_MS) * DAY_MS;
  return { from: new Date(start), to: new Date(Math.max(end, start + DAY_MS)) };
}

const FETCHERS: Record<ReconciledProvider, (services: Services, adminKey: string, from: Date, to: Date, scope: readonly string[]) => Promise<ProviderReport>> =
  {
    openai: fetchOpenAIReport,
    anthropic: fetchAnthropicReport,
  };

export class Reconciler {
  constructor(
    private readonly services: Services,
    private readonly adminKeys: AdminKeys,
  ) {}

  /** Keyway's side: what the account's own keys (BYOK) of this provider booked, by day, model and key (schema.ts keeps it). */
  async keywayRows(accountId: string, provider: string, from: Date, to: Date): Promise<KeywayRow[]> {
    const rows = await this.services.store.query(
      `SELECT day, model, provider_key_id, requests, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, cost_usd, unpriced_requests
       FROM reconciliation_usage_daily WHERE account_id = ? AND provider = ? AND day >= ? AND day < ?`,
      [accountId, provider, from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)],
    );
    return rows.map((row) => ({
      day: String(row.day),
      model: String(row.model),
      providerKeyId: String(row.provider_key_id),
      requests: numberOf(row.requests),
      tokens: {
        input: numberOf(row.input_tokens),
        output: numberOf(row.output_tokens),
        cachedInput: numberOf(row.cached_input_tokens),
        cacheWrite: numberOf(row.cache_write_tokens),
      },
      costUsd: numberOf(row.cost_usd),
      unpricedRequests: numberOf(row.unpriced_requests),
    }));
  }

  /** The account's stored keys of this provider, masked as Keyway shows them. */
  async keywayKeys(accountId: string, provider: string): Promise<KeywayKey[]> {
    const keys = await this.services.store.listActiveProviderKeys();
    return keys
      .filter((key) => key.owner === 'account' && key.accountId === accountId && key.provider === provider)
      .map((key) => ({ id: key.id, maskedKey: key.maskedKey }));
  }

  async reconcileProvider(
    accountId: string,
    provider: ReconciledProvider,
    from: Date,
    to: Date,
    tolerance: MatchTolerance,
  ): Promise<{ outcome: ProviderOutcome; rows: ComparedRow[]; keys: ComparedKeyRow[] }> {
    let adminKey: { adminKey: string; scope: string[] } | undefined;
    try {
      adminKey = await this.adminKeys.open(accountId, provider);
    } catch {
      const message = 'The stored admin key could not be decrypted; check the master key, or store the admin key again.';
      return { outcome: { provider, status: 'error', error: { code: 'admin_key_unreadable', message } }, rows: [], keys: [] };
    }
    if (adminKey === undefined) return { outcome: { provider, status: 'not_configured' }, rows: [], keys: [] };
    let report: ProviderReport;
    try {
      report = await FETCHERS[provider](this.services, adminKey.adminKey, from, to, adminKey.scope);
    } catch (error) {
      const failure =
        error instanceof ReportError
          ? error
          : new ReportError('provider_bad_answer', this.services.errors.redact(error instanceof Error ? error.message : String(error)));
      this.services.logger.warn({ accountId, provider, code: failure.code, status: failure.status }, 'reconciliation report failed');
      return { outcome: { provider, status: 'error', error: { code: failure.code, message: failure.message } }, rows: [], keys: [] };
    }
    const keywayRows = await this.keywayRows(accountId, provider, from, to);
    const rows = compareModels(provider, keywayRows, report, tolerance);
    const keys = compareKeys(provider, keywayRows, report, await this.keywayKeys(accountId, provider));
    return { outcome: { provider, status: 'ok', totals: totalsOf(provider, rows) }, rows, keys };
  }

  async reconcile(accountId: string, from: Date, to: Date, tolerance: MatchTolerance, only?: ReconciledProvider): Promise<Reconciliation> {
    const range = wholeDays(from, to);
    const providers = only === undefined ? RECONCILED_PROVIDERS : [only];
    const results = await Promise.all(providers.map((provider) => this.reconcileProvider(accountId, provider, range.from, range.to, tolerance)));
    return {
      ...range,
      providers: results.map((result) => result.outcome),
      rows: results.flatMap((result) => result.rows),
      keys: results.flatMap((result) => result.keys),
    };
  }
}
