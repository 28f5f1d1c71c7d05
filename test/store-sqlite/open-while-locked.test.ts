// A database file another process holds a lock on, for a moment, as the last connection of a stopping
// process does while it checkpoints the WAL: opening it waits for the lock (busy_timeout) instead of
// failing at once with SQLITE_BUSY. The timeout must be set before the first pragma that takes a lock.

import { afterAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStorage } from '../../plugins/store-sqlite/database.ts';

const directory = mkdtempSync(join(tmpdir(), 'keyway-open-locked-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

test('a file locked by another process for 300 ms is opened once the lock is released', async () => {
  const path = join(directory, 'keyway.db');
  // A file in rollback-journal mode: switching it to WAL needs the lock the other process holds.
  const setup = new Database(path, { create: true });
  setup.exec('PRAGMA journal_mode = DELETE; CREATE TABLE held (id INTEGER);');
  setup.close();
  const holder = Bun.spawn(
    [
      process.execPath,
      '-e',
      `const { Database } = require('bun:sqlite'); const d = new Database(${JSON.stringify(path)}); d.exec('BEGIN EXCLUSIVE'); console.log('locked'); setTimeout(() => { d.exec('COMMIT'); d.close(); }, 300);`,
    ],
    { stdout: 'pipe', stderr: 'inherit' },
  );
  const reader = holder.stdout.getReader();
  const first = await reader.read();
  expect(new TextDecoder().decode(first.value)).toContain('locked');
  const storage = await openStorage(`file:${path}`);
  try {
    expect(await storage.queryRows('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
  } finally {
    storage.close();
    await holder.exited;
  }
});
