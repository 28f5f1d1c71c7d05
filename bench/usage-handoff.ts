// bun bench/usage-handoff.ts — what the usage queue's path to the embedded store costs each thread per
// row, without HTTP around it: rows booked in event-loop turns of TURN (default 27, a turn's rows at
// c=64), journaled, flushed in batches of 2,000 to a SQLite file through the writer thread. Two ways,
// interleaved round by round in one process: the batch handed over as the journal's text
// (Store.insertJournaledUsage) and as rows (insertUsage: the gateway thread builds the column arrays
// and JSON-stringifies them). CPU time per thread from /proc (bench/load/cpu-time.ts), so a busy
// machine slows the rounds but hardly moves the figures. ROUNDS (default 20) and ROWS per round
// (default 40,000).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageJournal } from '../core/accounting/usage-journal.ts';
import { UsageQueue, type UsageWriter } from '../core/accounting/usage-queue.ts';
import { createLogger } from '../core/logger.ts';
import type { UsageRecord } from '../core/spec/store.ts';
import { benchUsageRecord } from '../test/helpers/usage-record.ts';
import { analyticsPlugin } from '../plugins/analytics/index.ts';
import type { PluginContributions } from '../core/spec/plugin.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS } from '../plugins/reconciliation/schema.ts';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import { cpuByThread } from './load/cpu-time.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const ROWS = Number(process.env.ROWS ?? 40_000);
const TURN = Number(process.env.TURN ?? 27);
const BATCH = 2000;

const directory = mkdtempSync(join(tmpdir(), 'keyway-handoff-bench-'));
const logger = createLogger('error', { write: () => undefined } as never);
const analytics = (await analyticsPlugin.setup?.({ services: {} } as never)) as PluginContributions;
const store = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env: {} });
await store.migrate([
  { plugin: 'analytics', migrations: analytics.migrations?.sqlite ?? [] },
  { plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS.sqlite ?? [] },
]);
store.setUsageFolds?.([
  { plugin: 'analytics', tables: analytics.usageFolds ?? [] },
  { plugin: 'reconciliation', tables: RECONCILIATION_USAGE_FOLDS },
]);

const ways: Array<{ name: string; writer: UsageWriter; main: number[]; others: number[]; worker: number[] }> = [
  { name: 'journal text (insertJournaledUsage)', writer: store, main: [], others: [], worker: [] },
  { name: 'rows (insertUsage)', writer: { insertUsage: (rows) => store.insertUsage(rows) }, main: [], others: [], worker: [] },
];

const ID_PREFIX = `req_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
let sequence = 0;
function benchRow(): UsageRecord {
  sequence += 1;
  return benchUsageRecord(`${ID_PREFIX}${sequence.toString(36).padStart(6, '0')}`);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function round(writer: UsageWriter): Promise<void> {
  const journal = UsageJournal.open(join(directory, 'usage-journal'), logger);
  const queue = new UsageQueue(writer, logger, { flushIntervalMs: 3_600_000, batchSize: BATCH, journal });
  for (let booked = 0; booked < ROWS; booked += TURN) {
    for (let index = 0; index < TURN; index++) queue.enqueue(benchRow());
    await queue.journaled();
    await nextTurn();
  }
  await queue.close();
}

const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
const range = (values: number[]): string => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;

// A warm-up round of each: the writer thread starts, statements are compiled.
for (const way of ways) await round(way.writer);
for (let index = 1; index <= ROUNDS; index++) {
  for (const way of index % 2 === 0 ? [...ways].reverse() : ways) {
    const before = cpuByThread(process.pid);
    await round(way.writer);
    // The writer's reply for the last batch arrives before close() returns; its thread is idle now.
    const after = cpuByThread(process.pid);
    const perRow = (name: string): number => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) / 1000 / ROWS;
    // The runtime's own threads (garbage collection, JIT) work for both JavaScript threads: counted apart.
    let others = 0;
    for (const name of after.keys()) if (name !== 'main' && name !== 'Worker') others += perRow(name);
    way.main.push(perRow('main'));
    way.others.push(others);
    way.worker.push(perRow('Worker'));
    console.log(
      `round ${index} ${way.name.padEnd(38)} gateway thread ${perRow('main').toFixed(2)} µs/row, writer thread ${perRow('Worker').toFixed(2)} µs/row, runtime threads ${others.toFixed(2)} µs/row`,
    );
  }
}
for (const way of ways) {
  console.log(
    `${way.name.padEnd(38)} gateway thread median ${median(way.main).toFixed(2)} µs/row (${range(way.main)}), writer thread median ${median(way.worker).toFixed(2)} µs/row (${range(way.worker)}), runtime threads ${median(way.others).toFixed(2)} (${range(way.others)})`,
  );
}
const [text, rows] = ways;
if (text !== undefined && rows !== undefined) {
  const paired = (select: (way: (typeof ways)[number]) => number[]): number[] => select(text).map((value, index) => value - (select(rows)[index] as number));
  console.log(
    `text − rows, paired by round: gateway thread ${median(paired((way) => way.main)).toFixed(2)} µs/row (${range(paired((way) => way.main))}), ` +
      `writer thread ${median(paired((way) => way.worker)).toFixed(2)} µs/row (${range(paired((way) => way.worker))}), ` +
      `runtime threads ${median(paired((way) => way.others)).toFixed(2)} µs/row (${range(paired((way) => way.others))})`,
  );
}
store.close();
rmSync(directory, { recursive: true, force: true });
