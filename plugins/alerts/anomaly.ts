// Anomaly detection on one hour of an account's traffic against the same hour of day on the recent
// days (docs/alerts.md, "Anomaly detection"). Robust statistics, so one past incident cannot hide the
// next: the baseline is the median of that hour over the last 14 days, its spread the median absolute
// deviation (MAD × 1.4826 estimates a standard deviation for normal noise), and an hour is anomalous
// when it is above median + k × spread, where k comes from the sensitivity. The spread has floors,
// because a perfectly regular history has a MAD of 0 and counts are noisy by nature: √median for
// request counts (Poisson noise), 10 % of the median, the binomial spread for error rates. Small
// absolute excesses never fire (10 requests, $1, 5 percentage points). Only rises alert: a drop in
// spend or errors is not something a finance or platform lead is paged for.

import type { AnomalyMetric, Sensitivity } from './schema.ts';

export interface HourSample {
  requests: number;
  errors: number;
  spendUsd: number;
}

export interface AnomalyVerdict {
  metric: AnomalyMetric;
  value: number;
  median: number;
  bound: number;
  /** How many spreads above the median the hour is. */
  score: number;
}

/** Spreads above the median an hour must be: larger is quieter. Tuned on bench/anomaly-false-alarms.ts. */
export const SENSITIVITY_K: Record<Sensitivity, number> = { low: 8, medium: 6, high: 4.5 };
/** Days of the last BASELINE_DAYS on which the account had traffic, needed before any verdict. */
export const MIN_BASELINE_DAYS = 7;
export const BASELINE_DAYS = 14;
const MIN_REQUEST_EXCESS = 10;
const MIN_SPEND_EXCESS_USD = 1;
const MIN_ERROR_RATE_EXCESS = 0.05;
const MIN_ERROR_RATE_REQUESTS = 20;
const MAD_TO_SD = 1.4826;

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((left, right) => left - right);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function spreadOf(values: readonly number[], center: number): number {
  return MAD_TO_SD * median(values.map((value) => Math.abs(value - center)));
}

function verdict(metric: AnomalyMetric, value: number, center: number, spread: number, k: number, minimumExcess: number): AnomalyVerdict | undefined {
  const bound = center + k * spread;
  if (value <= bound || value - center < minimumExcess) return undefined;
  return { metric, value, median: center, bound, score: (value - center) / spread };
}

function judgeRequests(current: HourSample, baseline: readonly HourSample[], k: number): AnomalyVerdict | undefined {
  const values = baseline.map((sample) => sample.requests);
  const center = median(values);
  const spread = Math.max(spreadOf(values, center), Math.sqrt(Math.max(center, 1)), 0.1 * center);
  return verdict('requests', current.requests, center, spread, k, MIN_REQUEST_EXCESS);
}

function judgeSpend(current: HourSample, baseline: readonly HourSample[], k: number): AnomalyVerdict | undefined {
  const values = baseline.map((sample) => sample.spendUsd);
  const center = median(values);
  const requests = median(baseline.map((sample) => sample.requests));
  // Spend is requests × cost per request: its Poisson floor is the cost per request × √requests.
  const poisson = requests > 0 ? (center / requests) * Math.sqrt(requests) : 0;
  const spread = Math.max(spreadOf(values, center), poisson, 0.1 * center, 0.01);
  return verdict('spend', current.spendUsd, center, spread, k, MIN_SPEND_EXCESS_USD);
}

function judgeErrorRate(current: HourSample, baseline: readonly HourSample[], k: number): AnomalyVerdict | undefined {
  if (current.requests < MIN_ERROR_RATE_REQUESTS) return undefined;
  const rates = baseline.filter((sample) => sample.requests > 0).map((sample) => sample.errors / sample.requests);
  if (rates.length < MIN_BASELINE_DAYS) return undefined;
  const center = median(rates);
  const p = Math.min(Math.max(center, 0.01), 0.99);
  const spread = Math.max(spreadOf(rates, center), Math.sqrt((p * (1 - p)) / current.requests), 0.01);
  return verdict('error_rate', current.errors / current.requests, center, spread, k, MIN_ERROR_RATE_EXCESS);
}

/**
 * The anomalies of one hour. `baseline` holds the same hour of each of the last days on which the
 * account had any traffic (zeros where it had none at that hour); with fewer than MIN_BASELINE_DAYS
 * of them there is no verdict. A partial hour may be judged too: its counts so far can only grow, so
 * exceeding the whole hour's bound already is an anomaly.
 */
export function judgeHour(current: HourSample, baseline: readonly HourSample[], sensitivity: Sensitivity, metrics: readonly AnomalyMetric[]): AnomalyVerdict[] {
  if (baseline.length < MIN_BASELINE_DAYS) return [];
  const k = SENSITIVITY_K[sensitivity];
  const verdicts: Array<AnomalyVerdict | undefined> = [];
  if (metrics.includes('spend')) verdicts.push(judgeSpend(current, baseline, k));
  if (metrics.includes('requests')) verdicts.push(judgeRequests(current, baseline, k));
  if (metrics.includes('error_rate')) verdicts.push(judgeErrorRate(current, baseline, k));
  return verdicts.filter((entry): entry is AnomalyVerdict => entry !== undefined);
}
