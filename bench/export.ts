// bun bench/export.ts — POST /v1/billing/export of 1 million usage rows (target, issue 10: ≥ 100k
// rows/s with flat memory). Reuses the rows bench/analytics.ts generated (run it first, or this
// generates them). The biggest account's first million rows are exported by the plugin's own stream
// (exportStream: keyset pages, CSV/JSON encoding, the seed's include breakdowns), once read straight
// from the stream and once served by Bun.serve and read by fetch over a socket. RSS is sampled every
// 100 ms; "flat" means it does not grow with the rows exported.

import { availableParallelism, cpus, loadavg } from 'node:os';
import { exportStream, type ExportPlan } from '../plugins/analytics/export.ts';
import { benchServices } from './analytics.ts';
import { benchStore } from './analytics-data.ts';
import type { Store } from '../core/spec/store.ts';

const EXPORT_ROWS = Number(process.env.KEYWAY_BENCH_EXPORT_ROWS ?? 1_000_000);
const TARGET_ROWS_PER_SECOND = 100_000;
const INCLUDE = ['provider_breakdown', 'model_breakdown', 'team_breakdown', 'hourly_usage'] as const;
const MIB = 1024 * 1024;

/** The period holding exactly EXPORT_ROWS rows of acct_0: from its first row to just after its millionth. */
async function millionRowPlan(store: Store, format: 'csv' | 'json'): Promise<ExportPlan> {
  const [first] = await store.query(`SELECT created_at FROM usage_records WHERE account_id = 'acct_0' ORDER BY created_at LIMIT 1`);
  const [last] = await store.query(`SELECT created_at FROM usage_records WHERE account_id = 'acct_0' ORDER BY created_at LIMIT 1 OFFSET ?`, [EXPORT_ROWS - 1]);
  if (first === undefined || last === undefined) throw new Error(`acct_0 has fewer than ${EXPORT_ROWS} rows`);
  return {
    accountId: 'acct_0',
    type: 'all_usage',
    format,
    includes: [...INCLUDE],
    from: new Date(String(first.created_at)),
    to: new Date(Date.parse(String(last.created_at)) + 1),
    periodName: 'custom',
  };
}

interface Measure {
  rows: number;
  bytes: number;
  seconds: number;
  rss: Array<{ atRows: number; mib: number }>;
}

/** Reads a byte stream to its end, counting lines (one per CSV row) and sampling RSS. */
async function consume(stream: ReadableStream<Uint8Array>, isJson: boolean): Promise<Measure> {
  const rss: Measure['rss'] = [];
  let rows = 0;
  let bytes = 0;
  const sampler = setInterval(() => rss.push({ atRows: rows, mib: process.memoryUsage.rss() / MIB }), 100);
  const started = performance.now();
  const reader = stream.getReader();
  // JSON rows each start with `{"created_at"`; CSV rows each end with a line feed. A marker may be cut
  // between two chunks: the end of the previous chunk is carried over.
  const marker = Buffer.from(isJson ? '{"created_at"' : '\n');
  let carried = Buffer.alloc(0);
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    const buffer = Buffer.concat([carried, value]);
    for (let at = buffer.indexOf(marker); at !== -1; at = buffer.indexOf(marker, at + marker.length)) rows++;
    carried = Buffer.from(buffer.subarray(Math.max(0, buffer.length - marker.length + 1)));
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rss.push({ atRows: rows, mib: process.memoryUsage.rss() / MIB });
  return { rows, bytes, seconds, rss };
}

function describeRss(measure: Measure): string {
  const at = (fraction: number) => measure.rss.find((sample) => sample.atRows >= fraction * measure.rows)?.mib ?? Number.NaN;
  const max = Math.max(...measure.rss.map((sample) => sample.mib));
  return `${at(0.1).toFixed(0)} / ${at(0.5).toFixed(0)} / ${at(0.9).toFixed(0)} / ${max.toFixed(0)}`;
}

/** A CSV's lines are its header, the usage rows, the breakdown rows and the total: count the usage rows only. */
function usageRowsOnly(measure: Measure, format: 'csv' | 'json'): void {
  if (format === 'json') {
    if (measure.rows !== EXPORT_ROWS) throw new Error(`the JSON export held ${measure.rows} rows, not ${EXPORT_ROWS}`);
    return;
  }
  if (measure.rows < EXPORT_ROWS + 2) throw new Error(`the CSV export held ${measure.rows} lines, fewer than ${EXPORT_ROWS} rows need`);
  measure.rows = EXPORT_ROWS;
}

/**
 * Downloads the export with curl into /dev/null: bytes and seconds from curl's own report. The rows are
 * the ones the direct pass counted in the same export (the same plan, the same rows).
 */
async function downloadWithCurl(port: number, rows: number): Promise<Measure> {
  const rss: Measure['rss'] = [];
  const sampler = setInterval(() => rss.push({ atRows: Number.NaN, mib: process.memoryUsage.rss() / MIB }), 100);
  const child = Bun.spawn(['curl', '-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://127.0.0.1:${port}/`], { stdout: 'pipe' });
  const [bytes = 'NaN', seconds = 'NaN'] = (await new Response(child.stdout).text()).trim().split(' ');
  clearInterval(sampler);
  if ((await child.exited) !== 0) throw new Error('curl could not download the export');
  // RSS samples carry no row count here: spread them evenly over the rows for the 10/50/90% readings.
  rss.forEach((sample, index) => (sample.atRows = ((index + 1) / rss.length) * rows));
  return { rows, bytes: Number(bytes), seconds: Number(seconds), rss };
}

async function main(): Promise<void> {
  const [load = 0] = loadavg();
  console.log(`Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Bun ${Bun.version}, load average ${load.toFixed(2)}`);
  const store = await benchStore();
  const services = benchServices(store);
  const lines = [
    '| path | format | rows | MiB | seconds | rows/s | RSS MiB at 10% / 50% / 90% / max | target |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const report = (path: string, format: string, measure: Measure): void => {
    const rate = measure.rows / measure.seconds;
    lines.push(
      `| ${path} | ${format} | ${measure.rows.toLocaleString('en')} | ${(measure.bytes / MIB).toFixed(0)} | ${measure.seconds.toFixed(2)} | ${Math.round(rate).toLocaleString('en')} | ${describeRss(measure)} | ${rate >= TARGET_ROWS_PER_SECOND ? 'PASS' : 'FAIL'} (≥ 100,000 rows/s) |`,
    );
    console.log(lines.at(-1));
  };
  // The first pass reads the rows from disk into the page cache and warms the JIT: reported apart.
  const cold = await consume(exportStream(services, await millionRowPlan(store, 'csv')), false);
  usageRowsOnly(cold, 'csv');
  report('stream, read directly, first pass (cold)', 'csv', cold);
  for (const format of ['csv', 'json'] as const) {
    const plan = await millionRowPlan(store, format);
    const direct = await consume(exportStream(services, plan), format === 'json');
    usageRowsOnly(direct, format);
    report('stream, read directly', format, direct);
    const server = Bun.serve({ port: 0, fetch: () => new Response(exportStream(services, plan)) });
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    const served = await consume(response.body as ReadableStream<Uint8Array>, format === 'json');
    usageRowsOnly(served, format);
    report('Bun.serve → fetch (one process)', format, served);
    // A client in another process, as `curl` or a finance tool downloads the file: the export's thread
    // then does the export's work only, not the reading and the line counting too.
    report('Bun.serve → curl (another process)', format, await downloadWithCurl(Number(server.port), direct.rows));
    server.stop(true);
  }
  console.log(`\n${lines.join('\n')}`);
  store.close();
}

await main();
