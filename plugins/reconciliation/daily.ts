// The daily reconciliation: once a UTC day has ended (and the providers' reports have had time to
// settle), each account with an admin key is reconciled for that day, per provider; the result is
// stored, and a `reconciliation_drift` alert fires once per day and provider when the day's drift
// passes the account's threshold. A run checked before the day was final (a manual run of today, or
// within the report delay after the day ended) is provisional: the job runs that day again.

import type { Services } from '../../core/spec/services.ts';
import type { AdminKeys, SettingsStore } from './admin-keys.ts';
import type { ComparedRow } from './compare.ts';
import { DAY_MS, type ProviderOutcome, type Reconciler } from './reconcile.ts';
import { matchToleranceOf, type ReconciledProvider, type ReconciliationSettings } from './schema.ts';
import { formatUsd } from '../../core/catalog/nano-usd.ts';
import { raiseAlert } from '../alerts/raise.ts';

/** A failed day is tried again after this long, not on every tick. */
const RETRY_AFTER_MS = 60 * 60_000;

/**
 * How many finished days a tick looks back over for one without a final run: a month, one report
 * page (31 days), so a gateway down for a long weekend, or a provider's report failing for days, still
 * has every day reconciled, while a tick reads at most 31 small rows per admin key.
 */
const CATCH_UP_DAYS = 31;

export interface DayRun {
  day: string;
  provider: ReconciledProvider;
  status: ProviderOutcome['status'];
  error?: ProviderOutcome['error'];
  totals?: ProviderOutcome['totals'];
  rows: ComparedRow[];
  alerted: boolean;
  /** Checked before the day's figures were final: the daily job runs the day again once they are. */
  provisional: boolean;
}

function exceeds(outcome: ProviderOutcome, settings: ReconciliationSettings): boolean {
  const totals = outcome.totals;
  if (outcome.status !== 'ok' || totals === undefined) return false;
  const drift = Math.abs(totals.drift_usd);
  if (drift < settings.drift_alert_min_usd || drift === 0) return false;
  // With no provider cost the whole of Keyway's spend is unexplained: as far from the bill as it gets.
  return totals.drift_percent === null || Math.abs(totals.drift_percent) >= settings.drift_alert_percent;
}

const PROVIDER_LABEL: Record<ReconciledProvider, string> = { openai: 'OpenAI', anthropic: 'Anthropic' };

export class DailyReconciliation {
  constructor(
    private readonly services: Services,
    private readonly reconciler: Reconciler,
    private readonly adminKeys: AdminKeys,
    private readonly settings: SettingsStore,
    private readonly reportDelayMs: number,
  ) {}

  /**
   * The job's tick: for every account, each UTC day that ended at least the report delay ago and has no
   * final run yet, oldest first, back to the last day that was final when the admin key was added and
   * at most CATCH_UP_DAYS. Not only the last such day: a day Keyway was down for, or whose report failed
   * until a newer day ended, was never reconciled nor alerted (QA18).
   */
  async tick(): Promise<void> {
    const now = this.services.clock.now();
    const last = this.lastFinalDayStart(now);
    for (const key of await this.adminKeys.list()) {
      const settings = await this.settings.get(key.accountId);
      if (!settings.enabled) continue;
      const added = Date.parse(key.createdAt);
      const first = Math.max(last - (CATCH_UP_DAYS - 1) * DAY_MS, Number.isFinite(added) ? Math.min(last, this.lastFinalDayStart(added)) : last);
      for (let start = first; start <= last; start += DAY_MS) {
        const day = new Date(start).toISOString().slice(0, 10);
        if (!(await this.due(key.accountId, day, key.provider, now))) continue;
        await this.run(key.accountId, day, key.provider, settings);
      }
    }
  }

  /** The start of the last UTC day that ended at least the report delay before `instant`. */
  private lastFinalDayStart(instant: number): number {
    return Math.floor((instant - this.reportDelayMs) / DAY_MS) * DAY_MS - DAY_MS;
  }

  /**
   * When a day's figures are final: its end plus the report delay. A run checked earlier saw part of
   * the day, or reports that had not settled, so it is provisional.
   */
  finalFrom(day: string): number {
    return Date.parse(`${day}T00:00:00Z`) + DAY_MS + this.reportDelayMs;
  }

  private async due(accountId: string, day: string, provider: string, now: number): Promise<boolean> {
    const rows = await this.services.store.query('SELECT status, checked_at FROM reconciliation_runs WHERE account_id = ? AND day = ? AND provider = ?', [
      accountId,
      day,
      provider,
    ]);
    const previous = rows[0];
    if (previous === undefined) return true;
    const checkedAt = Date.parse(String(previous.checked_at));
    // A manual run of today (or of yesterday before the reports settled) does not stand for the day:
    // drift billed after it would otherwise never be checked, nor alerted.
    if (checkedAt < this.finalFrom(day)) return true;
    return previous.status === 'error' && now - checkedAt >= RETRY_AFTER_MS;
  }

  /** Reconciles one account's day for one provider, stores it, and alerts once if it drifted too far. */
  async run(accountId: string, day: string, provider: ReconciledProvider, settings?: ReconciliationSettings): Promise<DayRun> {
    const effective = settings ?? (await this.settings.get(accountId));
    const from = new Date(`${day}T00:00:00Z`);
    const { outcome, rows } = await this.reconciler.reconcileProvider(
      accountId,
      provider,
      from,
      new Date(from.getTime() + DAY_MS),
      matchToleranceOf(effective),
    );
    const checkedAt = new Date(this.services.clock.now()).toISOString();
    const totals = outcome.totals;
    await this.services.store.execute(
      `INSERT INTO reconciliation_runs (account_id, day, provider, status, keyway_cost_usd, provider_cost_usd, drift_usd, drift_percent, report, error_code, checked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, day, provider) DO UPDATE SET status = excluded.status, keyway_cost_usd = excluded.keyway_cost_usd,
         provider_cost_usd = excluded.provider_cost_usd, drift_usd = excluded.drift_usd, drift_percent = excluded.drift_percent,
         report = excluded.report, error_code = excluded.error_code, checked_at = excluded.checked_at`,
      [
        accountId,
        day,
        provider,
        outcome.status,
        totals?.keyway_cost_usd ?? 0,
        totals?.provider_cost_usd ?? null,
        totals?.drift_usd ?? null,
        totals?.drift_percent ?? null,
        JSON.stringify({ rows, error: outcome.error }),
        outcome.error?.code ?? null,
        checkedAt,
      ],
    );
    const alerted = exceeds(outcome, effective) && (await this.alertOnce(accountId, day, provider, outcome, rows, effective, checkedAt));
    const provisional = Date.parse(checkedAt) < this.finalFrom(day);
    return { day, provider, status: outcome.status, error: outcome.error, totals, rows, alerted, provisional };
  }

  private async alertOnce(
    accountId: string,
    day: string,
    provider: ReconciledProvider,
    outcome: ProviderOutcome,
    rows: ComparedRow[],
    settings: ReconciliationSettings,
    firedAt: string,
  ): Promise<boolean> {
    // Claimed with a conditional write, so a manual run racing the job cannot alert twice.
    await this.services.store.execute(
      'UPDATE reconciliation_runs SET alerted_at = ? WHERE account_id = ? AND day = ? AND provider = ? AND alerted_at IS NULL',
      [firedAt, accountId, day, provider],
    );
    const claimed = await this.services.store.query('SELECT alerted_at FROM reconciliation_runs WHERE account_id = ? AND day = ? AND provider = ?', [
      accountId,
      day,
      provider,
    ]);
    if (claimed[0]?.alerted_at !== firedAt) return false;
    const totals = outcome.totals;
    if (totals === undefined) return false;
    const percent = totals.drift_percent === null ? '' : ` (${totals.drift_percent.toFixed(2)}%)`;
    // Through the alerts plugin: recorded in GET /v1/alerts/events, retried, and sent to the account's
    // `reconciliation_drift` alert rules as well as the reconciliation settings' `notify` list.
    await raiseAlert(this.services, {
      accountId,
      type: 'reconciliation_drift',
      subject: provider,
      period: day,
      match: { provider },
      message: `${PROVIDER_LABEL[provider]} reports ${formatUsd(totals.provider_cost_usd)} for ${day}; Keyway recorded ${formatUsd(totals.keyway_cost_usd)}: a drift of ${formatUsd(totals.drift_usd)}${percent}.`,
      details: {
        provider,
        day,
        keyway_cost_usd: totals.keyway_cost_usd,
        provider_cost_usd: totals.provider_cost_usd,
        drift_usd: totals.drift_usd,
        drift_percent: totals.drift_percent,
        threshold_percent: settings.drift_alert_percent,
        threshold_usd: settings.drift_alert_min_usd,
        models: rows
          .filter((row) => row.status !== 'matched')
          .sort((left, right) => Math.abs(right.drift_usd) - Math.abs(left.drift_usd))
          .slice(0, 10)
          .map((row) => ({ model: row.model, status: row.status, drift_usd: row.drift_usd, drift_percent: row.drift_percent })),
      },
      targets: settings.notify,
    });
    return true;
  }

  async runs(accountId: string, from: string, to: string): Promise<Record<string, unknown>[]> {
    const rows = await this.services.store.query(
      `SELECT day, provider, status, keyway_cost_usd, provider_cost_usd, drift_usd, drift_percent, error_code, report, checked_at, alerted_at
       FROM reconciliation_runs WHERE account_id = ? AND day >= ? AND day < ? ORDER BY day, provider`,
      [accountId, from, to],
    );
    return rows.map((row) => {
      let report: { rows?: unknown; error?: unknown } = {};
      try {
        report = JSON.parse(String(row.report)) as typeof report;
      } catch {
        // an unreadable report answers without its rows
      }
      return {
        day: row.day,
        provider: row.provider,
        status: row.status,
        keyway_cost_usd: row.keyway_cost_usd,
        provider_cost_usd: row.provider_cost_usd,
        drift_usd: row.drift_usd,
        drift_percent: row.drift_percent,
        error: report.error ?? null,
        rows: report.rows ?? [],
        checked_at: row.checked_at,
        alerted_at: row.alerted_at ?? null,
        provisional: Date.parse(String(row.checked_at)) < this.finalFrom(String(row.day)),
      };
    });
  }
}
