// bun bench/drivers.ts — the store and counter clients compared on Keyway's own statements:
// PostgreSQL through Bun's built-in SQL, postgres.js (`postgres`) and node-postgres (`pg`): a usage
// batch insert (the store's UNNEST statement, from its column list) and a point read, one at a time
// and 64 in flight; Redis through Bun's RedisClient and ioredis: a budget reservation and its
// settlement (the counters' lease scripts, EVALSHA), one at a time and 64 in flight.
// PostgreSQL at KEYWAY_TEST_POSTGRES_URL or 127.0.0.1:5432 (a throwaway database), Redis at
// KEYWAY_TEST_REDIS_URL or 127.0.0.1:6379 (a random key prefix). Figures go to docs/deployment.md, "Drivers".

import { RedisClient, SQL } from 'bun';
import Redis from 'ioredis';
import pg from 'pg';
import postgres from 'postgres';
import { LEASE_BATCH, type Script } from '../plugins/counters-redis/scripts.ts';
import { postgresStoreDriver } from '../plugins/store-postgres/index.ts';
import { USAGE_COLUMNS } from '../plugins/store-postgres/store.ts';
import { deletePrefix, randomPrefix, TEST_REDIS_URL } from '../test/counters-redis/redis.ts';
import { generatedUsageRecord } from '../test/helpers/usage-record.ts';
import { createTestDatabase } from '../test/store-postgres/database.ts';

const BATCH = Number(process.env.BATCH ?? 500);
const BATCHES = Number(process.env.BATCHES ?? 40);
const READS = Number(process.env.READS ?? 4_000);
const BUDGET_CALLS = Number(process.env.BUDGET_CALLS ?? 4_000);
const IN_FLIGHT = 64;
const POOL = 10;
const ROUNDS = 3;

/** The store's usage insert (plugins/store-postgres/store.ts), rebuilt from the same column list. */
const INSERT_USAGE = `WITH inserted AS (
  INSERT INTO usage_records (${USAGE_COLUMNS.map(([column]) => column).join(', ')})
  SELECT * FROM UNNEST(${USAGE_COLUMNS.map(([, type], index) => `$${index + 1}::${type}[]`).join(', ')})
  RETURNING id)
SELECT MIN(id) AS first, MAX(id) AS last FROM inserted`;
const POINT_READ = 'SELECT * FROM usage_records WHERE id = $1';

/** What each PostgreSQL client must do: run a statement with positional parameters, prepared. */
interface PostgresClient {
  name: string;
  query(text: string, parameters: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

interface RedisScriptClient {
  name: string;
  evalsha(script: Script, keys: string[], args: string[]): Promise<unknown>;
  close(): Promise<void>;
}

const usageRow = generatedUsageRecord;

function batchParameters(offset: number): unknown[] {
  const rows = Array.from({ length: BATCH }, (_, index) => usageRow(offset + index));
  return USAGE_COLUMNS.map(([, , read]) => rows.map(read));
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Runs `count` operations with at most `inFlight` at once; answers operations per second. */
async function rate(count: number, inFlight: number, operation: (index: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async (): Promise<void> => {
    while (next < count) await operation(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return count / ((performance.now() - started) / 1000);
}

function postgresClients(url: string): PostgresClient[] {
  const bun = new SQL(url, { max: POOL });
  const postgresJs = postgres(url, { max: POOL, prepare: true, onnotice: () => undefined });
  const nodePostgres = new pg.Pool({ connectionString: url, max: POOL });
  // Dropping the database at the end ends its idle connections; node-postgres reports that as an event.
  nodePostgres.on('error', () => undefined);
  // node-postgres prepares only statements given a name; the store's statements are fixed, so they can be.
  const names = new Map<string, string>();
  return [
    { name: 'Bun SQL (built in)', query: (text, parameters) => bun.unsafe(text, parameters), close: () => bun.close() },
    { name: 'postgres.js', query: (text, parameters) => postgresJs.unsafe(text, parameters as never[], { prepare: true }), close: () => postgresJs.end() },
    {
      name: 'pg (node-postgres)',
      query: (text, values) => {
        const name = names.get(text) ?? `keyway_${names.size}`;
        names.set(text, name);
        return nodePostgres.query({ name, text, values });
      },
      close: () => nodePostgres.end(),
    },
  ];
}

function redisClients(url: string): RedisScriptClient[] {
  const bun = new RedisClient(url);
  const ioredis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  return [
    {
      name: 'Bun RedisClient (built in)',
      evalsha: (script, keys, args) => bun.send('EVALSHA', [script.sha, String(keys.length), ...keys, ...args]),
      close: async () => bun.close(),
    },
    {
      name: 'ioredis',
      evalsha: (script, keys, args) => ioredis.evalsha(script.sha, keys.length, ...keys, ...args),
      close: async () => void (await ioredis.quit()),
    },
  ];
}

type Row = [string, string, string, string];

async function postgresFigures(): Promise<Row[]> {
  const database = await createTestDatabase();
  const store = await postgresStoreDriver.open(database.url, { dataDirectory: '/tmp', env: {} });
  const clients = postgresClients(database.url);
  const figures = new Map<string, { insert: number[]; read: number[]; readInFlight: number[] }>();
  try {
    await store.migrate([]);
    let offset = 0;
    // Rows to read back, and every client's statements prepared, before anything is timed.
    for (const client of clients) {
      await client.query(INSERT_USAGE, batchParameters(offset));
      offset += BATCH;
      await client.query(POINT_READ, [1]);
      figures.set(client.name, { insert: [], read: [], readInFlight: [] });
    }
    // Rounds interleave the clients, so a noisy stretch of the shared machine hits all of them.
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of clients) {
        const entry = figures.get(client.name) as { insert: number[]; read: number[]; readInFlight: number[] };
        const batches = Array.from({ length: BATCHES }, (_, index) => batchParameters(offset + index * BATCH));
        offset += BATCHES * BATCH;
        entry.insert.push(BATCH * (await rate(BATCHES, 1, (index) => client.query(INSERT_USAGE, batches[index] as unknown[]))));
        entry.read.push(await rate(READS, 1, (index) => client.query(POINT_READ, [1 + (index % offset)])));
        entry.readInFlight.push(await rate(READS, IN_FLIGHT, (index) => client.query(POINT_READ, [1 + (index % offset)])));
      }
    }
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    store.close();
    await database.drop();
  }
  return clients.map((client) => {
    const entry = figures.get(client.name) as { insert: number[]; read: number[]; readInFlight: number[] };
    return [
      client.name,
      `${Math.round(median(entry.insert)).toLocaleString('en')} rows/s`,
      `${Math.round(median(entry.read)).toLocaleString('en')} /s`,
      `${Math.round(median(entry.readInFlight)).toLocaleString('en')} /s`,
    ];
  });
}

async function redisFigures(): Promise<Row[]> {
  const prefix = randomPrefix();
  const clients = redisClients(TEST_REDIS_URL);
  const figures = new Map<string, { alone: number[]; inFlight: number[] }>();
  const loader = new RedisClient(TEST_REDIS_URL);
  try {
    await loader.send('SCRIPT', ['LOAD', LEASE_BATCH.source]);
    const budget = async (client: RedisScriptClient, index: number): Promise<void> => {
      // Sixteen counters (teams × providers × day) share the load, as a busy gateway's would.
      const keys = [`${prefix}c:budget:${index % 16}`, `${prefix}l:budget:${index % 16}`];
      const now = Date.now();
      const expiresAt = String(now + 86_400_000);
      const lease = `${client.name.length}-${index}`;
      // One operation a call, as a lone request's batch is (plugins/counters-redis/scripts.ts, LEASE_BATCH).
      await client.evalsha(LEASE_BATCH, keys, ['60000', `r 1 ${now} ${expiresAt} 1200 1e15 ${lease}:1200 ${now + 65_000}`]);
      await client.evalsha(LEASE_BATCH, keys, ['60000', `s 1 ${now} ${expiresAt} ${lease}:1200 900`]);
    };
    for (const client of clients) {
      await rate(500, 8, (index) => budget(client, index));
      figures.set(client.name, { alone: [], inFlight: [] });
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of clients) {
        const entry = figures.get(client.name) as { alone: number[]; inFlight: number[] };
        entry.alone.push(await rate(BUDGET_CALLS, 1, (index) => budget(client, index)));
        entry.inFlight.push(await rate(BUDGET_CALLS * 4, IN_FLIGHT, (index) => budget(client, index)));
      }
    }
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    loader.close();
    await deletePrefix(prefix);
  }
  const microseconds = (perSecond: number): string => `${(1e6 / perSecond).toFixed(1)} µs`;
  return clients.map((client) => {
    const entry = figures.get(client.name) as { alone: number[]; inFlight: number[] };
    return [
      client.name,
      microseconds(median(entry.alone)),
      microseconds(median(entry.inFlight)),
      `${Math.round(median(entry.inFlight)).toLocaleString('en')} /s`,
    ];
  });
}

function table(header: Row, rows: Row[]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

console.log(`Drivers (Bun ${Bun.version}; medians of ${ROUNDS} interleaved rounds; indicative, shared machine)\n`);
console.log(`PostgreSQL: usage batches of ${BATCH} rows (UNNEST, one statement), point read by id; pools of ${POOL}`);
console.log(table(['client', 'batch insert', 'point read, one at a time', `point read, ${IN_FLIGHT} in flight`], await postgresFigures()));
console.log('\nRedis: one budgeted request = reserve lease + settle lease (two EVALSHA round trips)');
console.log(table(['client', 'one at a time, per request', `${IN_FLIGHT} in flight, per request`, `${IN_FLIGHT} in flight, requests`], await redisFigures()));
process.exit(0);
