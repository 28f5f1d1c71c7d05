// Approvals migration 0003 makes a pending approval unique per key's request (account, team, key, body,
// provider, model). A database written before it may hold twins already (QA18: identical requests at
// once each stored one): the migration must not fail on them. Every pending copy but the earliest is
// marked `duplicate_of` the earliest and left out of the index (each still waits and can be decided),
// decided copies are untouched, and from then on a further pending copy is refused. SQLite and PostgreSQL.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { SQL } from 'bun';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import { APPROVAL_MIGRATIONS } from '../../policies/approvals/records.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';

const UPGRADE = '0003_pending_once';
const row = (id: string, status: string, created: string, body = 'hash_a') =>
  `INSERT INTO approvals (id, account_id, team_id, gateway_key_id, body_hash, provider, model, worst_case_usd, status, created_at, expires_at)
   VALUES ('${id}', 'acct', 'team', 'key', '${body}', 'openai', 'gpt-4o', 0.01, '${status}', '${created}', '2099-01-01T00:00:00.000Z')`;
const TWINS = [
  row('apr_second', 'pending', '2026-12-07T10:00:01.000Z'),
  row('apr_first', 'pending', '2026-12-07T10:00:00.000Z'),
  row('apr_third', 'pending', '2026-12-07T10:00:01.000Z'),
  row('apr_denied', 'denied', '2026-12-07T09:00:00.000Z'),
  row('apr_other_body', 'pending', '2026-12-07T10:00:02.000Z', 'hash_b'),
];
const MIGRATED = { apr_first: null, apr_second: 'apr_first', apr_third: 'apr_first', apr_denied: null, apr_other_body: null };
const ANOTHER_TWIN = `${row('apr_fourth', 'pending', '2026-12-07T11:00:00.000Z')} ON CONFLICT DO NOTHING RETURNING id`;
const ANOTHER_DENIED = `${row('apr_denied_again', 'denied', '2026-12-07T11:00:00.000Z')} ON CONFLICT DO NOTHING RETURNING id`;

interface Connection {
  run(sql: string): Promise<Array<Record<string, unknown>>>;
}

async function upgradeTwins(database: Connection, migrations: typeof APPROVAL_MIGRATIONS): Promise<void> {
  for (const migration of migrations.filter((entry) => entry.id !== UPGRADE)) for (const statement of migration.statements) await database.run(statement);
  for (const statement of TWINS) await database.run(statement);
  for (const statement of migrations.find((entry) => entry.id === UPGRADE)?.statements ?? []) await database.run(statement);
  const rows = await database.run('SELECT id, duplicate_of FROM approvals');
  expect(Object.fromEntries(rows.map((entry) => [entry.id, entry.duplicate_of]))).toEqual(MIGRATED);
  expect(await database.run(ANOTHER_TWIN)).toEqual([]);
  expect(await database.run(ANOTHER_DENIED)).toEqual([{ id: 'apr_denied_again' }]);
  // Once the pending one is decided, the same request may wait again.
  await database.run("UPDATE approvals SET status = 'approved' WHERE id = 'apr_first'");
  expect(await database.run(ANOTHER_TWIN)).toEqual([{ id: 'apr_fourth' }]);
}

test('SQLite: pending twins from before 0003 migrate without failing, marked; a further pending copy is refused after', async () => {
  const database = new Database(':memory:');
  try {
    await upgradeTwins({ run: async (sql) => database.query(sql).all() as Array<Record<string, unknown>> }, APPROVAL_MIGRATIONS);
  } finally {
    database.close();
  }
});

const reachable = await postgresReachable();
let postgres: TestDatabase | undefined;

beforeAll(async () => {
  if (reachable) postgres = await createTestDatabase();
});

afterAll(async () => {
  await postgres?.drop();
});

test.skipIf(!reachable)('PostgreSQL: the same twins migrate the same way', async () => {
  const connection = new SQL((postgres as TestDatabase).url, { max: 1 });
  try {
    await upgradeTwins(
      { run: async (sql) => [...((await connection.unsafe(sql)) as Array<Record<string, unknown>>)] },
      postgresMigrationsFromSqlite(APPROVAL_MIGRATIONS),
    );
  } finally {
    await connection.close();
  }
});
