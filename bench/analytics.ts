// bun bench/analytics.ts — GET /v1/analytics/byok and /v1/analytics/cost-comparison over 10 million
// usage rows on the embedded database (target, issue 10: ≤ 50 ms). The rows are generated once into
// /tmp (bench/analytics-data.ts) through the real store and the analytics triggers, and reused.
// Each query runs the routes' own handlers (byokAnalytics, costComparison: period parsing, roll-up
// reads, exact edges, shaping) against the file, warm, RUNS times; p50/p95 are reported. One answer is
// checked against a full scan of the raw rows, whose time is printed for contrast.
//   KEYWAY_BENCH_ROWS (default 10000000), KEYWAY_BENCH_DIR (default /tmp/keyway-analytics-bench)

import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { KeywayError } from '../core/errors.ts';
import type { Principal } from '../core/spec/principal.ts';
import type { Services } from '../core/spec/services.ts';
import { requestUrl } from '../core/http/kit/request-url.ts';
import type { Store } from '../core/spec/store.ts';
import { byokAnalytics } from '../plugins/analytics/byok.ts';
import { costComparison } from '../plugins/analytics/cost-comparison.ts';
import { readUsageAnalytics } from '../plugins/analytics/query.ts';
import { SUMMARY_TABLES } from '../plugins/analytics/summary-tables.ts';
import { parsePeriod } from '../core/http/kit/period.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import { analyticsMigrations, keepAnalyticsRollups, BENCH_DATABASE, BENCH_NOW, benchMeta, benchStore, generateRows, percentile } from './analytics-data.ts';

const RUNS = Number(process.env.KEYWAY_BENCH_RUNS ?? 40);
const TARGET_MS = 50;

/** What the two handlers use of the services: the store, the clock, errors, the snapshot, the request's URL. */
export function benchServices(store: Store): Services {
  return {
    store,
    http: { requestUrl },
    clock: { now: () => BENCH_NOW },
    errors: { create: (code: string, values: Record<string, string>) => new KeywayError(code as never, values) },
    snapshot: { current: { accounts: new Map(), platformSettings: { platform_markup_percent: 5, byok_fee_percent: 2 } }, section: () => undefined },
    logger: { error: () => undefined },
  } as unknown as Services;
}

const principalOf = (accountId: string): Principal => ({
  keyId: 'key_bench',
  role: 'admin',
  accountId,
  teamId: undefined,
  byokAccess: true,
  environment: undefined,
  settings: {},
});

interface Case {
  label: string;
  account: string;
  route: 'byok' | 'cost-comparison';
  query: string;
}

const CASES: Case[] = [
  { label: "seed's query", account: 'acct_0', route: 'byok', query: 'period=current_month&group_by=provider,model,team' },
  { label: 'quarter by day', account: 'acct_0', route: 'byok', query: 'period=last_quarter&group_by=day' },
  { label: 'quarter by hour', account: 'acct_0', route: 'byok', query: 'period=last_quarter&group_by=hour' },
  { label: 'quarter by key', account: 'acct_0', route: 'byok', query: 'period=last_quarter&group_by=key' },
  { label: 'quarter, every group', account: 'acct_0', route: 'byok', query: 'period=last_quarter&group_by=provider,model,team,project,key,day,hour' },
  { label: '30 days (edges inside hours)', account: 'acct_0', route: 'byok', query: 'period=last_30_days&group_by=provider,model,team,project,key,day' },
  {
    label: '90 days start/end inside hours, every group',
    account: 'acct_0',
    route: 'byok',
    query: 'start=2026-08-15T16:20:00Z&end=2026-11-13T14:45:10Z&group_by=provider,model,team,project,key,day,hour',
  },
  { label: 'smallest account, seed query', account: 'acct_4', route: 'byok', query: 'period=current_month&group_by=provider,model,team' },
  { label: 'cost comparison, 30 days', account: 'acct_0', route: 'cost-comparison', query: 'period=last_30_days' },
];

/**
 * The longest the event loop went without a turn while `work` ran: what a request that arrived then
 * waited for. A chain of setImmediate callbacks stands in for the requests (it runs whenever they would).
 */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let running = true;
  let last = performance.now();
  let longest = 0;
  const tick = (): void => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  running = false;
  return Math.max(longest, performance.now() - last);
}

async function runCase(services: Services, entry: Case): Promise<{ times: number[]; stalls: number[]; answer: Record<string, unknown> }> {
  const request = new Request(`http://bench/v1/analytics/${entry.route}?${entry.query}`);
  const handler = entry.route === 'byok' ? byokAnalytics : costComparison;
  const principal = principalOf(entry.account);
  let answer: Record<string, unknown> = {};
  for (let warm = 0; warm < 3; warm++) answer = await handler(services, principal, request);
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    answer = await handler(services, principal, request);
    // The answer is serialised as the route does: that is part of the time a client waits.
    JSON.stringify(answer);
    times.push(performance.now() - started);
  }
  // Apart from the timed runs: the chain of callbacks that measures the stalls takes turns of its own.
  const stalls: number[] = [];
  for (let run = 0; run < 10; run++) stalls.push(await longestStall(async () => JSON.stringify(await handler(services, principal, request))));
  return { times, stalls, answer };
}

/** The seed query's totals recomputed by a full scan of the raw rows: the answer must match it. */
async function checkAgainstRows(store: Store): Promise<string> {
  const period = parsePeriod(new URLSearchParams('period=last_30_days'), BENCH_NOW);
  if ('error' in period) throw new Error(period.error);
  const started = performance.now();
  const [raw] = await store.query(
    `SELECT SUM(CASE WHEN provider IS NOT NULL THEN 1 ELSE 0 END) AS served, SUM(CASE WHEN unpriced = 0 THEN cost_usd ELSE 0 END) AS cost,
            SUM(input_tokens) AS input_tokens
     FROM usage_records WHERE account_id = 'acct_0' AND created_at >= ? AND created_at < ?`,
    [period.from.toISOString(), period.to.toISOString()],
  );
  const scanMs = performance.now() - started;
  const rolled = await readUsageAnalytics(store, { accountId: 'acct_0', from: period.from, to: period.to, groups: new Set() });
  const served = rolled.totals.requests - rolled.totals.unserved_requests;
  const same =
    served === Number(raw?.served) && Math.abs(rolled.totals.cost_usd - Number(raw?.cost)) < 1e-6 && rolled.totals.input_tokens === Number(raw?.input_tokens);
  if (!same) throw new Error(`roll-ups disagree with the rows: ${JSON.stringify({ served, cost: rolled.totals.cost_usd, raw })}`);
  return `last_30_days of acct_0 checked against a raw scan of ${served.toLocaleString('en')} served rows: equal (the raw scan took ${scanMs.toFixed(0)} ms)`;
}

/**
 * What the roll-ups cost the writer: 100,000 rows inserted in usage-queue batches of 500 into a fresh
 * database with the store's tables only, then with the analytics plugin's roll-ups and triggers too,
 * at two densities: a busy gateway (the rows of one minute, ~1,700 requests/s: most upserts update a
 * bucket already there) and the 10M data set's (the rows spread over 90 days: most upserts add a
 * bucket). The usage queue writes off the request path; this is the CPU its flushes spend per row.
 */
async function writeCost(): Promise<string[]> {
  const lines: string[] = [];
  for (const [label, spanMs] of [
    ['busy gateway: 100,000 rows over 1 minute', 60_000],
    ['sparse: 100,000 rows over 90 days', 90 * 86_400_000],
  ] as const) {
    const rows = generateRows(100_000, spanMs);
    const perRow: Record<string, number> = {};
    for (const withRollups of [false, true]) {
      const directory = mkdtempSync(join(tmpdir(), 'keyway-write-cost-'));
      const store = await sqliteStoreDriver.open(`file:${join(directory, 'usage.db')}`, { dataDirectory: directory, env: {} });
      await store.migrate(withRollups ? await analyticsMigrations() : []);
      if (withRollups) await keepAnalyticsRollups(store);
      const started = performance.now();
      for (let start = 0; start < rows.length; start += 500) await store.insertUsage(rows.slice(start, start + 500));
      perRow[withRollups ? 'with' : 'without'] = ((performance.now() - started) * 1000) / rows.length;
      store.close();
      rmSync(directory, { recursive: true, force: true });
    }
    const batchMs = ((perRow.with ?? 0) * 500) / 1000;
    lines.push(`| ${label} | ${perRow.without?.toFixed(1)} | ${perRow.with?.toFixed(1)} | ${batchMs.toFixed(1)} |`);
  }
  return [
    '| write pattern (batches of 500) | µs/row, store tables only | µs/row, with every roll-up | ms per 500-row flush |',
    '| --- | --- | --- | --- |',
    ...lines,
  ];
}

async function main(): Promise<void> {
  const [load = 0] = loadavg();
  console.log(`Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Bun ${Bun.version}, load average ${load.toFixed(2)}`);
  const store = await benchStore();
  const meta = benchMeta();
  const counts: Record<string, number> = {};
  for (const { name } of SUMMARY_TABLES) counts[name] = Number((await store.query(`SELECT count(*) AS rows FROM ${name}`))[0]?.rows);
  const size = Bun.file(BENCH_DATABASE).size;
  console.log(`Data: ${meta.rows.toLocaleString('en')} usage rows in ${BENCH_DATABASE} (${(size / 2 ** 30).toFixed(2)} GiB), now = ${meta.now}`);
  console.log(`Roll-up rows: ${JSON.stringify(counts)}`);
  console.log(await checkAgainstRows(store));
  const writes = await writeCost();
  console.log(writes.join('\n'));
  const services = benchServices(store);
  const lines = [
    '| query | account | p50 ms | p95 ms | max ms | longest event-loop stall ms (max of 10) | served requests | target |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const entry of CASES) {
    const { times, stalls, answer } = await runCase(services, entry);
    const p95 = percentile(times, 0.95);
    const requests = Number(answer.total_requests ?? answer.requests ?? 0);
    lines.push(
      `| ${entry.label} (\`${entry.query}\`) | ${entry.account} | ${percentile(times, 0.5).toFixed(2)} | ${p95.toFixed(2)} | ${Math.max(...times).toFixed(2)} | ${Math.max(...stalls).toFixed(2)} | ${requests.toLocaleString('en')} | ${p95 <= TARGET_MS ? 'PASS' : 'FAIL'} (≤ ${TARGET_MS} ms) |`,
    );
    console.log(lines.at(-1));
  }
  console.log(`\n${lines.join('\n')}\n\n${writes.join('\n')}`);
  store.close();
}

if (import.meta.main) await main();
