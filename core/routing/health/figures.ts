// The health answer's figures for the whole instance. Each worker (KEYWAY_WORKERS) keeps its own windows
// of calls, so the worker answering GET /v1/providers/health asks the others for theirs and combines
// them: counts add, rates are recomputed from the summed counts, and latency percentiles are taken over
// the union of every worker's successful latencies (a window holds at most 200), so they are exact for
// the windows as they stand rather than an average of the workers' percentiles. The rate-limit
// headroom a provider last reported is the latest any worker saw.

import { percentileOf, type WindowFigures } from './window.ts';

/** A figure a provider reported (rate-limit headroom) and when it was seen. */
export interface Reading {
  value: number;
  at: number;
}

export interface KeyFigures {
  window: WindowFigures;
  rateLimit: Reading | null;
}

/** One provider's figures on one worker, its keys by id. */
export interface ProviderFigures {
  window: WindowFigures;
  rateLimit: Reading | null;
  keys: Record<string, KeyFigures>;
}

/** What one worker holds for one account, by provider name. */
export type AccountFigures = Record<string, ProviderFigures>;

const EMPTY_WINDOW: WindowFigures = { requests: 0, failures: 0, latencies: [] };

function combineWindows(windows: readonly WindowFigures[]): WindowFigures {
  let requests = 0;
  let failures = 0;
  const latencies: number[] = [];
  for (const window of windows) {
    requests += window.requests;
    failures += window.failures;
    for (const latency of window.latencies) latencies.push(latency);
  }
  latencies.sort((left, right) => left - right);
  return { requests, failures, latencies };
}

function latest(readings: ReadonlyArray<Reading | null>): Reading | null {
  let found: Reading | null = null;
  for (const reading of readings) if (reading !== null && (found === null || reading.at > found.at)) found = reading;
  return found;
}

/** Several workers' figures for one provider as one. */
export function combineProviders(figures: readonly ProviderFigures[]): ProviderFigures {
  const keyIds = new Set(figures.flatMap((each) => Object.keys(each.keys)));
  const keys: Record<string, KeyFigures> = {};
  for (const id of keyIds) {
    const perWorker = figures.map((each) => each.keys[id]).filter((each): each is KeyFigures => each !== undefined);
    keys[id] = { window: combineWindows(perWorker.map((each) => each.window)), rateLimit: latest(perWorker.map((each) => each.rateLimit)) };
  }
  return { window: combineWindows(figures.map((each) => each.window)), rateLimit: latest(figures.map((each) => each.rateLimit)), keys };
}

/** Successes as a percentage; 100 with no calls. */
export function successRateOf(window: WindowFigures | undefined): number {
  const { requests, failures } = window ?? EMPTY_WINDOW;
  return requests === 0 ? 100 : ((requests - failures) / requests) * 100;
}

export function latencyOf(window: WindowFigures | undefined, percentile: number): number | undefined {
  return percentileOf((window ?? EMPTY_WINDOW).latencies, percentile);
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function parseWindow(value: unknown): WindowFigures | undefined {
  const window = value as Partial<WindowFigures> | null;
  if (window === null || typeof window !== 'object' || !isCount(window.requests) || !isCount(window.failures)) return undefined;
  if (!Array.isArray(window.latencies) || !window.latencies.every((latency) => Number.isFinite(latency))) return undefined;
  return { requests: window.requests, failures: window.failures, latencies: [...window.latencies].sort((left, right) => left - right) };
}

function parseReading(value: unknown): Reading | null {
  const reading = value as Partial<Reading> | null;
  if (reading === null || typeof reading !== 'object' || !Number.isFinite(reading.value) || !Number.isFinite(reading.at)) return null;
  return { value: reading.value as number, at: reading.at as number };
}

/** Another worker's answer, checked field by field: what does not parse is left out rather than miscounted. */
export function parseAccountFigures(text: string): AccountFigures | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const account: AccountFigures = {};
  for (const [provider, raw] of Object.entries(value as Record<string, unknown>)) {
    const figures = raw as { window?: unknown; rateLimit?: unknown; keys?: unknown } | null;
    const window = parseWindow(figures?.window);
    if (figures === null || window === undefined || figures.keys === null || typeof figures.keys !== 'object') return undefined;
    const keys: Record<string, KeyFigures> = {};
    for (const [id, key] of Object.entries(figures.keys as Record<string, { window?: unknown; rateLimit?: unknown } | null>)) {
      const keyWindow = parseWindow(key?.window);
      if (keyWindow === undefined) return undefined;
      keys[id] = { window: keyWindow, rateLimit: parseReading(key?.rateLimit) };
    }
    account[provider] = { window, rateLimit: parseReading(figures.rateLimit), keys };
  }
  return account;
}
