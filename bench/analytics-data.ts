// Generated usage for the analytics and export benches: 10 million rows (KEYWAY_BENCH_ROWS) in a
// SQLite file under /tmp, reused between runs. Rows go in through the real store (insertUsage, one
// transaction per batch), so the analytics plugin's triggers build every roll-up exactly as they do
// in production. Deterministic: a seeded generator, a fixed clock.
//
// Shape: 5 accounts (45/25/15/10/5 % of the traffic), 5 providers and 20 models (popularity falling
// off as 1/rank), 20 teams, 10 project tags, 200 gateway keys (each with its account, team, two or
// three projects and a handful of favourite models), 90 days ending at BENCH_NOW with a day/night
// cycle; 5 % of requests on platform keys, 2 % refused before any provider (no provider), 1 % served
// but unpriced, 1.5 % upstream errors after serving.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyticsPlugin } from '../plugins/analytics/index.ts';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import type { PluginContributions } from '../core/spec/plugin.ts';
import type { Migration, Store, UsageRecord } from '../core/spec/store.ts';
import { seededRandom } from '../test/helpers/seeded-random.ts';

export const BENCH_DIRECTORY = process.env.KEYWAY_BENCH_DIR ?? '/tmp/keyway-analytics-bench';
export const BENCH_DATABASE = join(BENCH_DIRECTORY, 'usage.db');
const META_FILE = join(BENCH_DIRECTORY, 'meta.json');
export const TARGET_ROWS = Number(process.env.KEYWAY_BENCH_ROWS ?? 10_000_000);
/** "Now" for every period of the benches: mid-month, so current_month, last_30_days and last_quarter all hold data. */
export const BENCH_NOW = Date.parse('2026-11-13T15:27:41.250Z');
const DAYS = 90;
const BATCH = 20_000;

const PROVIDERS: Record<string, Array<[model: string, inputPerMillion: number, outputPerMillion: number]>> = {
  openai: [
    ['gpt-4o', 2.5, 10],
    ['gpt-4o-mini', 0.15, 0.6],
    ['gpt-4-turbo', 10, 30],
    ['gpt-3.5-turbo', 0.5, 1.5],
    ['o3-mini', 1.1, 4.4],
  ],
  anthropic: [
    ['claude-3-5-sonnet-20241022', 3, 15],
    ['claude-3-opus-20240229', 15, 75],
    ['claude-3-haiku-20240307', 0.25, 1.25],
    ['claude-3-5-haiku-20241022', 0.8, 4],
  ],
  google: [
    ['gemini-1.5-pro', 1.25, 5],
    ['gemini-1.5-flash', 0.075, 0.3],
    ['gemini-2.0-flash', 0.1, 0.4],
    ['gemini-pro', 0.5, 1.5],
  ],
  cohere: [
    ['command-r-plus', 2.5, 10],
    ['command-r', 0.15, 0.6],
    ['command-light', 0.3, 0.6],
  ],
  perplexity: [
    ['sonar', 1, 1],
    ['sonar-pro', 3, 15],
    ['sonar-reasoning', 1, 5],
    ['sonar-small-online', 0.2, 0.2],
  ],
};
const MODELS = Object.entries(PROVIDERS).flatMap(([provider, models]) => models.map(([model, input, output]) => ({ provider, model, input, output })));
const ACCOUNT_SHARES = [0.45, 0.25, 0.15, 0.1, 0.05];
export const ACCOUNTS = ACCOUNT_SHARES.map((_, index) => `acct_${index}`);
const TEAMS_PER_ACCOUNT = [8, 5, 4, 2, 1];
const KEYS_PER_ACCOUNT = [90, 50, 30, 20, 10];
const PROJECTS = ['checkout', 'search', 'support-bot', 'analytics', 'onboarding', 'fraud', 'recs', 'docs-qa', 'etl', 'internal-tools'];

interface KeyProfile {
  id: string;
  account: number;
  team: string | null;
  projects: string[];
  models: number[];
}

function profiles(next: () => number): KeyProfile[][] {
  let teamNumber = 0;
  let keyNumber = 0;
  return ACCOUNTS.map((_, account) => {
    const teams = Array.from({ length: TEAMS_PER_ACCOUNT[account] as number }, () => `team_${String(teamNumber++).padStart(2, '0')}`);
    return Array.from({ length: KEYS_PER_ACCOUNT[account] as number }, () => {
      const favourites = new Set<number>();
      while (favourites.size < 4 + Math.floor(next() * 4)) favourites.add(zipf(next, MODELS.length));
      const start = Math.floor(next() * PROJECTS.length);
      return {
        id: `key_${String(keyNumber++).padStart(3, '0')}`,
        account,
        // A tenth of keys are account admin keys with no team.
        team: next() < 0.1 ? null : (teams[Math.floor(next() * teams.length)] as string),
        projects: [0, 1, 2].slice(0, 2 + Math.floor(next() * 2)).map((offset) => PROJECTS[(start + offset) % PROJECTS.length] as string),
        models: [...favourites],
      };
    });
  });
}

/** An index in [0, count) with probability falling off as 1/(rank+1). */
function zipf(next: () => number, count: number): number {
  const harmonic = Array.from({ length: count }, (_, rank) => 1 / (rank + 1)).reduce((sum, value) => sum + value, 0);
  let target = next() * harmonic;
  for (let rank = 0; rank < count; rank++) {
    target -= 1 / (rank + 1);
    if (target <= 0) return rank;
  }
  return count - 1;
}

/** Busier in the working day (UTC 13–21), quieter at night: a weight per hour of the day. */
const HOUR_WEIGHTS = Array.from({ length: 24 }, (_, hour) => 0.3 + Math.max(0, Math.sin(((hour - 9) / 24) * 2 * Math.PI)));

function pickIndex(next: () => number, weights: readonly number[]): number {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let target = next() * total;
  for (let index = 0; index < weights.length; index++) {
    target -= weights[index] as number;
    if (target <= 0) return index;
  }
  return weights.length - 1;
}

/** One row at `time`: who, what, how many tokens, what it cost. */
function usageRow(next: () => number, keys: KeyProfile[][], sequence: number, time: number): UsageRecord {
  const account = pickIndex(next, ACCOUNT_SHARES);
  const accountKeys = keys[account] as KeyProfile[];
  const key = accountKeys[zipf(next, accountKeys.length)] as KeyProfile;
  const modelIndex = key.models[zipf(next, key.models.length)] as number;
  const model = MODELS[modelIndex] as (typeof MODELS)[number];
  const refused = next() < 0.02;
  const unpriced = !refused && next() < 0.01;
  const failed = !refused && next() < 0.015;
  const inputTokens = refused ? 0 : Math.round(200 * Math.exp(next() * 3));
  const outputTokens = refused || failed ? 0 : Math.round(50 * Math.exp(next() * 2.5));
  const cachedInputTokens = model.provider === 'openai' || model.provider === 'anthropic' ? Math.floor(inputTokens * next() * 0.3) : 0;
  const reasoningTokens = model.model.startsWith('o3') || model.model.includes('reasoning') ? Math.floor(outputTokens * 0.5) : 0;
  const cost = (inputTokens * model.input + outputTokens * model.output) / 1_000_000;
  const byok = next() >= 0.05;
  return {
    requestId: `req_bench_${sequence.toString(36).padStart(8, '0')}`,
    accountId: ACCOUNTS[account] as string,
    gatewayKeyId: key.id,
    teamId: key.team,
    projectTag: next() < 0.2 ? null : (key.projects[Math.floor(next() * key.projects.length)] as string),
    endpoint: 'chat',
    provider: refused ? null : model.provider,
    model: refused ? null : model.model,
    requestedModel: model.model,
    providerKeyId: refused ? null : `pk_${model.provider}_${byok ? ACCOUNTS[account] : 'platform'}`,
    byok: !refused && byok,
    status: refused ? 403 : failed ? 502 : 200,
    errorCode: refused ? 'model_not_allowed' : failed ? 'upstream_error' : null,
    inputTokens,
    outputTokens,
    cachedInputTokens,
    cacheWriteTokens: model.provider === 'anthropic' ? Math.floor(inputTokens * 0.05) : 0,
    cacheWrite1hTokens: 0,
    reasoningTokens,
    costUsd: refused || unpriced ? null : cost,
    latencyMs: refused ? 1 : Math.round(300 * Math.exp(next() * 1.6)),
    streamed: next() < 0.4,
    fallbackAttempts: next() < 0.03 ? 1 : 0,
    createdAt: new Date(time).toISOString(),
  };
}

/** `count` rows as the bench generates them, in time order over `spanMs` ending at BENCH_NOW (for the write-cost measurement). */
export function generateRows(count: number, spanMs: number): UsageRecord[] {
  const next = seededRandom(7);
  const keys = profiles(next);
  const start = BENCH_NOW - spanMs;
  return Array.from({ length: count }, (_, index) => usageRow(next, keys, index, start + Math.floor((index / count) * spanMs)));
}

/** Hands the store the analytics plugin's roll-ups as the gateway does (core/runtime.ts): its folds, which the SQLite store takes. */
export async function keepAnalyticsRollups(store: Store): Promise<void> {
  const contributions = (await analyticsPlugin.setup?.({ services: {} } as never)) as PluginContributions;
  if (store.setUsageFolds === undefined) throw new Error('the bench store takes no usage folds');
  store.setUsageFolds([{ plugin: 'analytics', tables: contributions.usageFolds ?? [] }]);
}

/** The store's migrations plus the analytics plugin's (its roll-up tables). */
export async function analyticsMigrations(): Promise<Array<{ plugin: string; migrations: readonly Migration[] }>> {
  const contributions = (await analyticsPlugin.setup?.({ services: {} } as never)) as PluginContributions;
  return [{ plugin: 'analytics', migrations: contributions.migrations?.sqlite ?? [] }];
}

export async function openBenchStore(): Promise<Store> {
  mkdirSync(BENCH_DIRECTORY, { recursive: true });
  const store = await sqliteStoreDriver.open(`file:${BENCH_DATABASE}`, { dataDirectory: BENCH_DIRECTORY, env: {} });
  await store.migrate(await analyticsMigrations());
  await keepAnalyticsRollups(store);
  return store;
}

/** Opens the bench database, generating its rows first unless a complete run left them. */
export async function benchStore(log: (line: string) => void = console.log): Promise<Store> {
  const complete = existsSync(META_FILE) && (JSON.parse(readFileSync(META_FILE, 'utf8')) as { rows?: number }).rows === TARGET_ROWS;
  if (!complete && existsSync(BENCH_DATABASE)) throw new Error(`${BENCH_DATABASE} exists but is incomplete: delete ${BENCH_DIRECTORY} and run again.`);
  const store = await openBenchStore();
  if (complete) return store;
  const next = seededRandom(20261205);
  const keys = profiles(next);
  const start = BENCH_NOW - DAYS * 86_400_000;
  // Time advances in steps inversely proportional to the hour's weight, so busy hours hold more rows;
  // the mean step makes TARGET_ROWS rows span DAYS days.
  const baseStep = (3_600_000 * HOUR_WEIGHTS.reduce((sum, weight) => sum + weight, 0) * DAYS) / TARGET_ROWS;
  const began = performance.now();
  let time = start;
  for (let written = 0; written < TARGET_ROWS; ) {
    const rows: UsageRecord[] = [];
    for (let index = 0; index < BATCH && written < TARGET_ROWS; index++, written++) {
      const hourWeight = HOUR_WEIGHTS[new Date(time).getUTCHours()] as number;
      time += (baseStep / hourWeight) * (0.5 + next());
      rows.push(usageRow(next, keys, written, Math.min(Math.floor(time), BENCH_NOW - 1)));
    }
    await store.insertUsage(rows);
    if (rows.length > 0 && Math.floor(written / BATCH) % 50 === 0) {
      const seconds = (performance.now() - began) / 1000;
      log(
        `  generated ${written.toLocaleString('en')} rows in ${seconds.toFixed(0)} s (${((seconds * 1e6) / written).toFixed(1)} µs/row, through the triggers)`,
      );
    }
  }
  const seconds = (performance.now() - began) / 1000;
  writeFileSync(META_FILE, JSON.stringify({ rows: TARGET_ROWS, now: new Date(BENCH_NOW).toISOString(), seconds, last: new Date(time).toISOString() }));
  log(`generated ${TARGET_ROWS.toLocaleString('en')} rows in ${seconds.toFixed(0)} s`);
  return store;
}

export function benchMeta(): { rows: number; now: string; seconds: number } {
  return JSON.parse(readFileSync(META_FILE, 'utf8')) as { rows: number; now: string; seconds: number };
}

export function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] as number;
}
