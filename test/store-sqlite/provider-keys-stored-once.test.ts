// Migration 0013 makes a live provider key unique per owner and provider. A database written before it
// may hold the same key twice (QA17: two workers adding it at once each stored it): the migration
// must not fail on those. Every live copy but the earliest is marked `duplicate_of` the earliest and
// left out of the unique indexes, nothing is deleted, and from then on a further copy is refused.

import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openStorage, type Storage } from '../../plugins/store-sqlite/database.ts';
import { MIGRATIONS } from '../../plugins/store-sqlite/migrations.ts';
import { ANOTHER_TWIN, TWIN_ACCOUNTS, TWIN_ROWS, TWINS_MIGRATED, UPGRADE } from '../helpers/provider-key-twins.ts';

const directory = mkdtempSync(join(tmpdir(), 'keyway-stored-once-'));
let storage: Storage | undefined;

afterAll(() => {
  storage?.close();
  rmSync(directory, { recursive: true, force: true });
});

test('keys stored twice before 0013 migrate without failing, marked; a further copy is refused after', async () => {
  storage = await openStorage(`file:${join(directory, 'keyway.db')}`);
  // The database as the release before wrote it: every migration before 0013.
  await storage.execute('CREATE TABLE keyway_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (const migration of MIGRATIONS.filter((entry) => entry.id !== UPGRADE)) {
    await storage.executeAtomically([...migration.statements, `INSERT INTO keyway_migrations (id, applied_at) VALUES ('${migration.id}', 'then')`]);
  }
  await storage.executeAtomically([...TWIN_ACCOUNTS, ...TWIN_ROWS]);

  const report = await migrate(storage);
  expect(report.applied).toEqual([UPGRADE]);
  const rows = await storage.queryRows('SELECT id, duplicate_of FROM provider_keys');
  expect(Object.fromEntries(rows.map((row) => [row.id, row.duplicate_of]))).toEqual(TWINS_MIGRATED);

  await expect(storage.execute(ANOTHER_TWIN.account)).rejects.toThrow(/UNIQUE/);
  await expect(storage.execute(ANOTHER_TWIN.platform)).rejects.toThrow(/UNIQUE/);
  await storage.execute(ANOTHER_TWIN.elsewhere);
  expect((await storage.queryRows('SELECT count(*) AS live FROM provider_keys WHERE deleted_at IS NULL'))[0]?.live).toBe(8);
});
