// The alert job: judges every rule of every account, claims what fires and hands it to the dispatcher.
// Spend comes from the hourly roll-up (durable, shared by all instances), read after this process has
// written the usage rows it booked, so the figure judged and shown is what the usage rows hold. This
// process's running tally (fed by the `account` hook, in memory) triggers a judgement as soon as a
// request crosses a threshold; every judgement of a cost rule aligns the tally with the figure it read
// and tells the other processes (the cluster bus, ALERTS_SPEND_TOPIC), so the trigger sees spend booked
// before this process started, before the rule was created, or by another worker or instance. A rule
// created or changed is judged at once (`judgeNow`). Error rates come from per-minute counts each
// process keeps in memory and adds to the shared counters (shared-windows.ts), so they cover every
// worker and instance; provider outages from the health monitor, and at once from each disable it tells
// (a probe may move the provider on to `recovering` before the next pass); anomalies from the roll-up
// (anomaly.ts).

import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import type { ProviderDisabledEvent, ProviderHealthSummary, Services } from '../../core/spec/services.ts';
import { BASELINE_DAYS, judgeHour, type AnomalyVerdict, type HourSample } from './anomaly.ts';
import type { AlertDispatcher } from './deliver.ts';
import { formatUsd } from '../../core/catalog/nano-usd.ts';
import { nanoUsd } from './money.ts';
import { costPeriodWindow, hourKey, hourWindow } from './periods.ts';
import type { AlertRule } from './schema.ts';
import { SharedErrorWindows } from './shared-windows.ts';
import type { Firing } from './store.ts';
import { CostTally, ErrorWindows } from './tally.ts';

export const ALERTS_SECTION = 'alerts';
/** Judged spend of cost rules, `[[ruleId, period, usd], …]`, published after each judgement so every process aligns its tally. */
export const ALERTS_SPEND_TOPIC = 'alerts:spend';
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface AlertsSection {
  byAccount: ReadonlyMap<string, readonly AlertRule[]>;
}

function matches(rule: AlertRule, provider: string | undefined, teamId: string | undefined): boolean {
  return (rule.provider === undefined || rule.provider === provider) && (rule.team === undefined || rule.team === teamId);
}

export class AlertEvaluator {
  private readonly tally = new CostTally();
  private readonly windows = new ErrorWindows();
  /** Every process's error-rate windows: this one adds its own once a second (`shareWindows`), and before judging. */
  private readonly sharedWindows: SharedErrorWindows;
  /** Rule and subject → the last period it fired (or was found fired) in: skips re-judging it. */
  private readonly lastFired = new Map<string, string>();
  /** Rule → the last complete hour its anomalies were judged for. */
  private readonly judgedHours = new Map<string, string>();
  /** Cost rule → the period it fired in: requests past the threshold stop triggering judgements. */
  private readonly costFired = new Map<string, string>();
  private running: Promise<void> | undefined;
  private again = false;
  private kickQueued = false;
  private lastKick = Number.NEGATIVE_INFINITY;
  /** Cost rules' spend judged in the pass under way, published to the other processes at its end. */
  private judgedSpend: Array<[string, string, number]> = [];
  private listening = false;
  private hearingDisables = false;

  constructor(
    private readonly services: Services,
    private readonly dispatcher: AlertDispatcher,
    private readonly teamName: (teamId: string) => string | undefined,
  ) {
    this.sharedWindows = new SharedErrorWindows(services, this.windows, (accountId) => this.longestWindowOf(accountId));
  }

  /** The longest error_rate window of the account's rules, in minutes; undefined when it has none. */
  private longestWindowOf(accountId: string): number | undefined {
    let longest: number | undefined;
    for (const rule of this.rulesOf(accountId) ?? []) if (rule.type === 'error_rate') longest = Math.max(longest ?? 0, rule.windowMinutes ?? 15);
    return longest;
  }

  /** The per-process job (and its drain at shutdown): this process's request counts join the shared windows. */
  shareWindows(): Promise<void> {
    return this.sharedWindows.share();
  }

  private rulesOf(accountId: string): readonly AlertRule[] | undefined {
    return this.services.snapshot.section<AlertsSection>(ALERTS_SECTION)?.byAccount.get(accountId);
  }

  /** The `account` hook: in memory, O(rules of the account); never waits for anything. */
  account(context: RequestContext, outcome: RequestOutcome): void {
    const accountId = context.principal.accountId;
    const provider = context.served?.provider ?? context.attempts.at(-1)?.provider ?? context.resolution?.provider;
    const now = this.services.clock.now();
    const failed = outcome.status >= 400;
    this.windows.record(`${accountId}\u0000*`, failed, now);
    if (provider !== undefined) this.windows.record(`${accountId}\u0000${provider}`, failed, now);
    const cost = outcome.costUsd;
    if (cost === undefined || cost <= 0 || context.served?.owner !== 'account') return;
    const rules = this.rulesOf(accountId);
    if (rules === undefined) return;
    for (const rule of rules) {
      if (rule.type !== 'byok_cost_threshold' || !matches(rule, provider, context.teamId)) continue;
      const period = costPeriodWindow(rule.period ?? 'daily', now).key;
      const total = this.tally.add(rule.id, period, cost);
      if (total >= (rule.threshold ?? Number.POSITIVE_INFINITY) && this.costFired.get(rule.id) !== period) this.kick();
    }
  }

  /** Runs an evaluation soon, off the request path: at once, or a second after the previous kick at most. */
  kick(): void {
    if (this.kickQueued) return;
    this.kickQueued = true;
    const delay = Math.max(0, this.lastKick + 1000 - Date.now());
    const timer = setTimeout(() => {
      this.kickQueued = false;
      this.lastKick = Date.now();
      void this.run().catch((error: unknown) => this.services.logger.error({ error: this.services.errors.redact(String(error)) }, 'alert evaluation failed'));
    }, delay);
    (timer as { unref?: () => void }).unref?.();
  }

  /** One evaluation of every rule; concurrent calls share it, and a call during one runs another after. */
  run(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.evaluateAll();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Hears the cost figures other processes judge (subscribed at start: the cluster bus is not available
   * while plugins are set up). A lost message only leaves this process's trigger on its own estimate.
   */
  listen(): void {
    this.hearDisables();
    if (this.listening) return;
    this.listening = true;
    this.services.cluster.subscribe(ALERTS_SPEND_TOPIC, (message) => {
      try {
        const judged = JSON.parse(message) as unknown;
        if (!Array.isArray(judged)) return;
        for (const entry of judged) {
          if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string' && typeof entry[2] === 'number')
            this.tally.align(entry[0], entry[1], entry[2]);
        }
      } catch {
        // not a message of this version: ignored
      }
    });
  }

  /**
   * Subscribes to the health monitor's disables (at start, or when a rule is created or changed first:
   * the service is not available during setup). Polling alone missed a provider a probe moved to
   * `recovering` before the next pass (QA19).
   */
  private hearDisables(): void {
    if (this.hearingDisables) return;
    this.hearingDisables = true;
    this.services.providerHealth.onDisabled((event) => this.providerDisabled(event));
  }

  /**
   * A disable fires the account's provider_down rules for that provider from the disable itself, as
   * it stood, whatever the provider's status by now; once per rule, subject and period still (`fire`,
   * and the claim in alert_events across processes: every process hears the same disable).
   */
  private providerDisabled(event: ProviderDisabledEvent): void {
    if (event.accountId === null) return;
    const accountId = event.accountId;
    const rules = (this.rulesOf(accountId) ?? []).filter(
      (rule) => rule.type === 'provider_down' && (rule.provider === undefined || rule.provider === event.provider),
    );
    if (rules.length === 0) return;
    const report = this.services.providerHealth.report(accountId).find((candidate) => candidate.name === event.provider);
    const disabled: ProviderHealthSummary = {
      name: event.provider,
      status: 'disabled',
      success_rate: report?.success_rate ?? 0,
      requests: report?.requests ?? 0,
      latency_ms: report?.latency_ms ?? null,
      issues: event.reason === undefined ? (report?.issues ?? []) : [event.reason],
    };
    const firing = downFiring(disabled, event.at);
    void (async () => {
      for (const rule of rules) await this.fire(rule, firing);
    })().catch((error: unknown) =>
      this.services.logger.error({ accountId, error: this.services.errors.redact(String(error)) }, 'firing provider_down on a disable failed'),
    );
  }

  private async evaluateAll(): Promise<void> {
    const section = this.services.snapshot.section<AlertsSection>(ALERTS_SECTION);
    if (section === undefined) return;
    const rules = [...section.byAccount.values()].flat();
    // No rule, nothing to judge: the usage queue keeps its own flush interval (the pass at start
    // would otherwise write every process's queue a second after it starts).
    if (rules.length === 0) return;
    const usageWritten = await this.writeBookedUsage();
    await this.shareWindows();
    await this.judgeRules(rules, usageWritten);
  }

  /**
   * One judgement of these rules now: a rule just created or changed, so that a threshold the spend
   * already passed fires at once and the trigger's estimate starts from the stored spend. Never rejects.
   */
  async judgeNow(rules: readonly AlertRule[]): Promise<void> {
    this.hearDisables();
    try {
      const usageWritten = await this.writeBookedUsage();
      if (rules.some((rule) => rule.type === 'error_rate')) await this.shareWindows();
      await this.judgeRules(rules, usageWritten);
    } catch (error) {
      this.services.logger.error({ error: this.services.errors.redact(String(error)) }, 'judging changed alert rules failed');
    }
  }

  private async judgeRules(rules: readonly AlertRule[], usageWritten: boolean): Promise<void> {
    const now = this.services.clock.now();
    for (const rule of rules) {
      try {
        for (const firing of await this.judge(rule, now, usageWritten)) await this.fire(rule, firing);
      } catch (error) {
        this.services.logger.error({ alertId: rule.id, error: this.services.errors.redact(String(error)) }, 'alert rule evaluation failed');
      }
    }
    this.publishJudgedSpend();
  }

  private publishJudgedSpend(): void {
    const judged = this.judgedSpend;
    if (judged.length === 0) return;
    this.judgedSpend = [];
    Promise.resolve()
      .then(() => this.services.cluster.publish(ALERTS_SPEND_TOPIC, JSON.stringify(judged)))
      .catch((error: unknown) =>
        this.services.logger.warn({ error: this.services.errors.redact(String(error)) }, 'could not tell the cluster the judged alert spend'),
      );
  }

  /**
   * Writes the usage rows this process booked and has not written yet, so the roll-up holds every one
   * of them (besides what other instances and earlier processes wrote). False when the store refused
   * the write: the rows stay queued, and the usage queue has logged why.
   */
  private async writeBookedUsage(): Promise<boolean> {
    try {
      await this.services.usageQueue.flush();
      return true;
    } catch {
      return false;
    }
  }

  private async fire(rule: AlertRule, firing: Omit<Firing, 'accountId' | 'alertId' | 'type' | 'targets'>): Promise<void> {
    const key = `${rule.id}\u0000${firing.subject}`;
    if (this.lastFired.get(key) === firing.period) return;
    await this.dispatcher.fire({ ...firing, accountId: rule.accountId, alertId: rule.id, type: rule.type, targets: rule.notify });
    // Claimed now or by an earlier run or process: either way this period is done for this subject.
    this.lastFired.set(key, firing.period);
    if (rule.type === 'byok_cost_threshold') this.costFired.set(rule.id, firing.period);
  }

  private judge(rule: AlertRule, now: number, usageWritten: boolean): Promise<Array<Omit<Firing, 'accountId' | 'alertId' | 'type' | 'targets'>>> | never[] {
    switch (rule.type) {
      case 'byok_cost_threshold':
        return this.judgeCost(rule, now, usageWritten);
      case 'error_rate':
        return this.judgeErrorRate(rule, now);
      case 'provider_down':
        return this.judgeProviderDown(rule, now);
      case 'byok_usage_anomaly':
        return this.judgeAnomaly(rule, now);
      default:
        // rotation_due and approval_pending are raised by other plugins (raise.ts).
        return [];
    }
  }

  private describeScope(rule: AlertRule): string {
    const parts: string[] = [];
    if (rule.provider !== undefined) parts.push(rule.provider);
    if (rule.team !== undefined) parts.push(`team ${this.teamName(rule.team) ?? rule.team}`);
    return parts.length === 0 ? 'all providers' : parts.join(', ');
  }

  private async judgeCost(rule: AlertRule, now: number, usageWritten: boolean) {
    const period = rule.period ?? 'daily';
    const window = costPeriodWindow(period, now);
    // The subject is the de-duplication key: ids, so renaming a team cannot make it fire twice.
    const subject = [rule.provider ?? 'all providers', ...(rule.team === undefined ? [] : [`team ${rule.team}`])].join(', ');
    if (this.lastFired.get(`${rule.id}\u0000${subject}`) === window.key) return [];
    const filters: string[] = [];
    const parameters: unknown[] = [rule.accountId, hourKey(window.start.getTime()), hourKey(window.end.getTime())];
    if (rule.provider !== undefined) {
      filters.push(' AND provider = ?');
      parameters.push(rule.provider);
    }
    if (rule.team !== undefined) {
      filters.push(' AND team_id = ?');
      parameters.push(rule.team);
    }
    const rows = await this.services.store.query(
      `SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM usage_rollup_hourly WHERE account_id = ? AND byok = 1 AND hour >= ? AND hour < ?${filters.join('')}`,
      parameters,
    );
    const rolledUp = Number(rows[0]?.spent ?? 0);
    // The larger of the roll-up and the tally understated the spend whenever both held part of it (rows
    // written before a restart or by another instance, and this process's rows not yet written): once
    // this process's rows are written the roll-up holds them all. Only when the store refused that
    // write does the tally stand in, as the larger of two lower bounds. The figure is judged, and
    // shown, to the nano-dollar costs are booked to, so the details never read below the threshold.
    const spent = nanoUsd(usageWritten ? rolledUp : Math.max(rolledUp, this.tally.own(rule.id, window.key)));
    this.tally.align(rule.id, window.key, spent);
    this.judgedSpend.push([rule.id, window.key, spent]);
    const threshold = rule.threshold ?? Number.POSITIVE_INFINITY;
    if (spent < threshold) return [];
    return [
      {
        subject,
        period: window.key,
        message: `BYOK spend on ${this.describeScope(rule)} reached ${formatUsd(spent)} in the ${period} period ${window.key} (UTC), ${
          spent > threshold ? `above the alert threshold of ${formatUsd(threshold)}` : 'at the alert threshold'
        }.`,
        details: {
          provider: rule.provider ?? null,
          team: rule.team ?? null,
          threshold_usd: threshold,
          spent_usd: spent,
          period,
          period_start: window.start.toISOString(),
          period_end: window.end.toISOString(),
        },
      },
    ];
  }

  private async judgeErrorRate(rule: AlertRule, now: number) {
    const minutes = rule.windowMinutes ?? 15;
    const { requests, errors } = await this.sharedWindows.sum(`${rule.accountId}\u0000${rule.provider ?? '*'}`, minutes, now);
    const threshold = rule.threshold ?? 100;
    if (requests < (rule.minRequests ?? 20) || (errors / requests) * 100 < threshold) return [];
    const rate = Math.round((errors / requests) * 10_000) / 100;
    const subject = rule.provider ?? 'all providers';
    return [
      {
        subject,
        period: hourWindow(now).key,
        message: `${rate}% of requests on ${subject} failed over the last ${minutes} minutes (${errors} of ${requests}), above the alert threshold of ${threshold}%.`,
        details: { provider: rule.provider ?? null, error_rate_percent: rate, errors, requests, window_minutes: minutes, threshold_percent: threshold },
      },
    ];
  }

  private async judgeProviderDown(rule: AlertRule, now: number) {
    const account = this.services.snapshot.current.accounts.get(rule.accountId);
    const policy = account?.settings.health_check as { health_threshold?: number } | undefined;
    const healthThreshold = policy?.health_threshold ?? 90;
    const firings = [];
    for (const report of this.services.providerHealth.report(rule.accountId)) {
      if (rule.provider !== undefined && report.name !== rule.provider) continue;
      const down = report.status === 'disabled' || report.status === 'unavailable' || (report.status === 'degraded' && report.success_rate < healthThreshold);
      if (down) firings.push(downFiring(report, now));
    }
    return firings;
  }

  /** The current hour (so far) and the last complete one, against the same hour on the last 14 days. */
  private async judgeAnomaly(rule: AlertRule, now: number) {
    const current = hourWindow(now);
    const previous = hourWindow(now - HOUR_MS);
    const firings = [];
    for (const hour of [previous, current]) {
      const complete = hour === previous;
      if (complete && this.judgedHours.get(rule.id) === hour.key) continue;
      const verdicts = await this.anomaliesOf(rule, hour.start.getTime());
      if (complete) this.judgedHours.set(rule.id, hour.key);
      for (const verdict of verdicts) firings.push(this.anomalyFiring(rule, hour.key, verdict, !complete));
    }
    return firings;
  }

  private async anomaliesOf(rule: AlertRule, hourStart: number): Promise<AnomalyVerdict[]> {
    const hours = Array.from({ length: BASELINE_DAYS + 1 }, (_, back) => hourKey(hourStart - back * DAY_MS));
    const providerFilter = rule.provider === undefined ? '' : ' AND provider = ?';
    const providerParameter = rule.provider === undefined ? [] : [rule.provider];
    const rows = await this.services.store.query(
      `SELECT hour, SUM(requests) AS requests, SUM(errors) AS errors, SUM(cost_usd) AS spend FROM usage_rollup_hourly
       WHERE account_id = ? AND hour IN (${hours.map(() => '?').join(', ')})${providerFilter} GROUP BY hour`,
      [rule.accountId, ...hours, ...providerParameter],
    );
    const byHour = new Map(rows.map((row) => [String(row.hour), { requests: Number(row.requests), errors: Number(row.errors), spendUsd: Number(row.spend) }]));
    const dayOf = (epoch: number): string => new Date(epoch).toISOString().slice(0, 10);
    const active = await this.services.store.query(
      `SELECT DISTINCT substr(hour, 1, 10) AS day FROM usage_rollup_hourly WHERE account_id = ? AND hour >= ? AND hour < ?${providerFilter}`,
      [rule.accountId, `${dayOf(hourStart - BASELINE_DAYS * DAY_MS)}T00`, `${dayOf(hourStart)}T00`, ...providerParameter],
    );
    const activeDays = new Set(active.map((row) => String(row.day)));
    const empty: HourSample = { requests: 0, errors: 0, spendUsd: 0 };
    const baseline: HourSample[] = [];
    for (let back = 1; back <= BASELINE_DAYS; back++) {
      const epoch = hourStart - back * DAY_MS;
      if (activeDays.has(dayOf(epoch))) baseline.push(byHour.get(hourKey(epoch)) ?? empty);
    }
    return judgeHour(byHour.get(hourKey(hourStart)) ?? empty, baseline, rule.sensitivity ?? 'medium', rule.metrics ?? ['spend', 'requests', 'error_rate']);
  }

  private anomalyFiring(rule: AlertRule, hour: string, verdict: AnomalyVerdict, partial: boolean) {
    const scope = rule.provider ?? 'all providers';
    const show = (value: number): string =>
      verdict.metric === 'spend' ? formatUsd(value) : verdict.metric === 'error_rate' ? `${Math.round(value * 1000) / 10}%` : String(Math.round(value));
    const label = verdict.metric === 'spend' ? 'Spend' : verdict.metric === 'requests' ? 'Request count' : 'Error rate';
    return {
      subject: `${verdict.metric}:${scope}`,
      period: hour,
      message:
        `${label} on ${scope} in the hour ${hour}:00 UTC${partial ? ' (so far)' : ''} is ${show(verdict.value)}, far above the usual ${show(verdict.median)} ` +
        `for that hour over the last ${BASELINE_DAYS} days (alert bound ${show(verdict.bound)}, ${rule.sensitivity ?? 'medium'} sensitivity).`,
      details: {
        metric: verdict.metric,
        provider: rule.provider ?? null,
        hour: `${hour}:00:00Z`,
        partial_hour: partial,
        value: verdict.value,
        baseline_median: verdict.median,
        bound: verdict.bound,
        score: Math.round(verdict.score * 100) / 100,
        sensitivity: rule.sensitivity ?? 'medium',
      },
    };
  }

  forget(ruleId: string): void {
    this.tally.forget(ruleId);
    this.costFired.delete(ruleId);
    this.judgedHours.delete(ruleId);
  }

  /** Raised alerts (raise.ts): the account's rules of that type whose filters match. */
  rulesFor(accountId: string, type: string, match: { provider?: string; team?: string } | undefined): readonly AlertRule[] {
    return (this.rulesOf(accountId) ?? []).filter(
      (rule) =>
        rule.type === type &&
        (rule.provider === undefined || match?.provider === undefined || rule.provider === match.provider) &&
        (rule.team === undefined || match?.team === undefined || rule.team === match.team),
    );
  }
}

/** A provider_down firing for `report`, in the hour of `at`. */
function downFiring(report: ProviderHealthSummary, at: number) {
  return {
    subject: report.name,
    period: hourWindow(at).key,
    message: `${report.name} is ${downWords(report.status)}${rateWords(report)}${report.issues.length > 0 ? `; ${report.issues.join('; ')}` : ''}.`,
    details: { provider: report.name, status: report.status, success_rate: report.success_rate, requests: report.requests, issues: report.issues },
  };
}

/** The success rate over the recent calls; nothing when there were none (the report's 100 % of no calls read as healthy). */
function rateWords(report: ProviderHealthSummary): string {
  return report.requests > 0 ? `: success rate ${report.success_rate}% over the last ${report.requests} calls` : '';
}

function downWords(status: string): string {
  if (status === 'disabled') return 'down (disabled by the health check)';
  return status === 'unavailable' ? 'unavailable (no key of it can serve)' : 'failing';
}
