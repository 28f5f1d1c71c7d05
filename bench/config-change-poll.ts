// bun bench/config-change-poll.ts — what the configuration poll costs (core/credentials/config-watch.ts):
// each instance reads the store's change version once a second (Store.configChangeVersion, one row by
// primary key) so a change whose cluster-bus message was lost arrives within a second. Measured on
// SQLite (a file, Bun's driver) and PostgreSQL (KEYWAY_TEST_POSTGRES_URL or 127.0.0.1:5432, a
// throwaway database): the read's latency one at a time, the CPU it costs this process (the gateway's
// thread, where the poll runs), PostgreSQL's own execution time (EXPLAIN ANALYZE), and a full snapshot
// load of the same database for scale (what the poll saves when nothing changed: the backstop's work).
// Figures go to docs/deployment.md, "When the bus fails".

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSnapshots } from '../core/credentials/snapshot.ts';
import type { Store } from '../core/spec/store.ts';
import { postgresStoreDriver } from '../plugins/store-postgres/index.ts';
import { CONFIG_CHANGE_VERSION } from '../plugins/store-sqlite/config-changes.ts';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import { createTestDatabase } from '../test/store-postgres/database.ts';

const READS = Number(process.env.READS ?? 2_000);
const ROUNDS = 3;
const KEYS = Number(process.env.KEYS ?? 1_000);

async function seed(store: Store): Promise<void> {
  await store.migrate([]);
  await store.insertAccount('default', 'Default');
  for (let index = 0; index < KEYS; index++) {
    await store.insertGatewayKey({
      id: `key_${index}`,
      accountId: 'default',
      role: 'developer',
      name: `member ${index}`,
      keyHash: `hash_${index}`,
      maskedKey: 'mk_…',
    });
  }
  for (let index = 0; index < 5; index++) await store.recordConfigChange?.();
}

interface Figures {
  latencyUs: number;
  cpuUs: number;
}

async function reads(store: Store): Promise<Figures> {
  const read = store.configChangeVersion?.bind(store);
  if (read === undefined) throw new Error('the store keeps no change version');
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let index = 0; index < READS; index++) await read();
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { latencyUs: (elapsed * 1000) / READS, cpuUs: (used.user + used.system) / READS };
}

async function fullLoads(store: Store): Promise<number> {
  const snapshots = new ConfigSnapshots(store, undefined);
  const started = performance.now();
  const loads = 20;
  for (let index = 0; index < loads; index++) await snapshots.catchUp('bench');
  return ((performance.now() - started) * 1000) / loads;
}

function line(name: string, figures: Figures[], load: number, server?: number[]): string {
  const format = (values: number[]) => values.map((value) => value.toFixed(1)).join(' / ');
  return `| ${name} | ${format(figures.map((entry) => entry.latencyUs))} | ${format(figures.map((entry) => entry.cpuUs))} | ${server === undefined ? '—' : format(server)} | ${(load / 1000).toFixed(1)} ms |`;
}

async function measure(name: string, store: Store, serverTime?: () => Promise<number>): Promise<string> {
  await seed(store);
  await reads(store);
  const figures: Figures[] = [];
  const server: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    figures.push(await reads(store));
    if (serverTime !== undefined) server.push(await serverTime());
  }
  return line(name, figures, await fullLoads(store), serverTime === undefined ? undefined : server);
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-poll-bench-'));
const database = await createTestDatabase();
try {
  const sqlite = await sqliteStoreDriver.open(`file:${join(directory, 'keyway.db')}`, { dataDirectory: directory, env: {} });
  const postgres = await postgresStoreDriver.open(database.url, { dataDirectory: directory, env: {} });
  const postgresExecution = async (): Promise<number> => {
    const plan = await postgres.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${CONFIG_CHANGE_VERSION}`);
    const document = Object.values(plan[0] ?? {})[0];
    const parsed = (typeof document === 'string' ? JSON.parse(document) : document) as Array<{ 'Execution Time': number; 'Planning Time': number }>;
    return ((parsed[0]?.['Execution Time'] ?? Number.NaN) + (parsed[0]?.['Planning Time'] ?? 0)) * 1000;
  };
  console.log(`${READS} reads a round, ${ROUNDS} rounds; a full snapshot load with ${KEYS} gateway keys for scale`);
  console.log('| store | one read, latency µs | one read, this process CPU µs | PostgreSQL planning + execution µs | full snapshot load |');
  console.log('|---|---|---|---|---|');
  console.log(await measure('SQLite (file)', sqlite));
  console.log(await measure('PostgreSQL', postgres, postgresExecution));
  sqlite.close();
  postgres.close();
} finally {
  await database.drop();
  rmSync(directory, { recursive: true, force: true });
}
