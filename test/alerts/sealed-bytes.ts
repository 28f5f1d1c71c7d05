// What an attacker with a copy of the database reads, for the sealed-at-rest tests, and the two
// tests (SQLite, PostgreSQL) each of those suites runs its scenario in.

import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMasterKey } from '../crypto/helpers.ts';
import { createTestDatabase, postgresReachable } from '../store-postgres/database.ts';

/** Every byte of the database files (main, WAL, shared memory). */
export function sqliteBytes(dataDirectory: string): string {
  return readdirSync(dataDirectory)
    .filter((name) => name.startsWith('keyway.db'))
    .map((name) => {
      try {
        return readFileSync(join(dataDirectory, name)).toString('latin1');
      } catch {
        return '';
      }
    })
    .join('\n');
}

const reachable = await postgresReachable();

/** A suite's clean-ups, run last first after its tests. */
export function cleanUps(): Array<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  return stops;
}

/** A check that throws naming the first canary a text holds, and where it was. */
export function canaryCheck(canaries: readonly string[]): (text: string, where: string) => void {
  return (text, where) => {
    for (const canary of canaries) {
      if (text.includes(canary)) throw new Error(`${where} holds the canary ${canary}`);
    }
  };
}

/** What a suite checks on one database: it stores and restarts, and answers what it left running. */
export type AtRestScenario = (env: Record<string, string>) => Promise<unknown>;

/**
 * The two tests of a sealed-at-rest suite: the scenario on SQLite, then every byte of its files searched;
 * on PostgreSQL (skipped when the local server does not answer), then a pg_dump of the database searched.
 */
export function testBothStores(
  sqliteTitle: string,
  scenario: AtRestScenario,
  { stops, expectNoCanary }: { stops: Array<() => Promise<void>>; expectNoCanary(text: string, where: string): void },
): void {
  const masterKey = generateMasterKey();
  test(sqliteTitle, async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-sealed-'));
    stops.push(async () => rmSync(dataDirectory, { recursive: true, force: true }));
    await scenario({ KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`, KEYWAY_MASTER_KEY: masterKey });
    expectNoCanary(sqliteBytes(dataDirectory), 'the SQLite files');
  });

  test.skipIf(!reachable)('PostgreSQL: the same, and a dump of the database holds no canary', async () => {
    const database = await createTestDatabase();
    stops.push(() => database.drop());
    await scenario({ KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: masterKey });
    const dumped = Bun.spawnSync(['pg_dump', '--no-owner', database.url]);
    expect(dumped.exitCode).toBe(0);
    expectNoCanary(dumped.stdout.toString(), 'the PostgreSQL dump');
  });
}
