// A throwaway PostgreSQL database per test file on the local server (127.0.0.1:5432, trust auth):
// created under a random name, dropped after. KEYWAY_TEST_POSTGRES_URL names another server, and
// KEYWAY_TEST_DATABASE_PREFIX another name prefix (so runs sharing a server can tell theirs apart).

import { SQL } from 'bun';

const SERVER = process.env.KEYWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = /^[a-z_][a-z0-9_]{0,30}$/.test(process.env.KEYWAY_TEST_DATABASE_PREFIX ?? '')
  ? (process.env.KEYWAY_TEST_DATABASE_PREFIX as string)
  : 'keyway_test_';

/** Whether the server answers; tests skip with a message when it does not. */
export async function postgresReachable(): Promise<boolean> {
  const admin = new SQL(SERVER, { max: 1, connectionTimeout: 3 });
  try {
    await admin.unsafe('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${PREFIX}${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new SQL(SERVER, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = new URL(SERVER);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropper = new SQL(SERVER, { max: 1 });
      await dropper.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await dropper.close();
    },
  };
}
