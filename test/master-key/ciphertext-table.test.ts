// The table-backed ciphertext holder plugins contribute: pages in id order from a cursor, hands out the
// binding each value was sealed with, replaces a value only where the row still holds the one read, and
// counts its values by key version in the database (what the start's missing-version check reads);
// a row with no backend (a value not sealed yet) is none of its values.

import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { tableCiphertextHolder, type CiphertextTable } from '../../core/spec/ciphertext-table.ts';
import type { CiphertextVersionReader } from '../../core/spec/crypto-backend.ts';

function tableWith(rows: ReadonlyArray<[string, string, string]>) {
  const database = new Database(':memory:');
  database.run('CREATE TABLE sealed (id TEXT PRIMARY KEY, owner TEXT NOT NULL, backend TEXT NOT NULL, key_version INTEGER NOT NULL, ciphertext TEXT NOT NULL)');
  for (const [id, owner, ciphertext] of rows) database.run("INSERT INTO sealed VALUES (?, ?, 'local', 1, ?)", [id, owner, ciphertext]);
  const store = {
    query: async (sql: string, parameters: readonly unknown[] = []) => database.query(sql).all(...(parameters as string[])) as Array<Record<string, unknown>>,
  };
  const holder = tableCiphertextHolder(
    { store },
    {
      name: 'example:sealed',
      table: 'sealed',
      idColumn: 'id',
      ciphertextColumn: 'ciphertext',
      backendColumn: 'backend',
      keyVersionColumn: 'key_version',
      bindingColumns: ['owner'],
      binding: (row) => `example:${String(row.owner)}:${String(row.id)}`,
    },
  );
  return { database, holder };
}

describe('tableCiphertextHolder', () => {
  test('pages in id order from the cursor, with each row binding and recorded version', async () => {
    const { holder } = tableWith([
      ['c', 'carol', 'ct-c'],
      ['a', 'alice', 'ct-a'],
      ['b', 'bob', 'ct-b'],
    ]);
    const first = await holder.list('', 2);
    expect(first).toEqual([
      { id: 'a', ciphertext: 'ct-a', binding: 'example:alice:a', backend: 'local', keyVersion: 1 },
      { id: 'b', ciphertext: 'ct-b', binding: 'example:bob:b', backend: 'local', keyVersion: 1 },
    ]);
    expect((await holder.list('b', 2)).map((item) => item.id)).toEqual(['c']);
    expect(await holder.list('c', 2)).toEqual([]);
  });

  test('replaces only where the row still holds the expected ciphertext', async () => {
    const { database, holder } = tableWith([
      ['a', 'alice', 'ct-a'],
      ['b', 'bob', 'ct-b'],
    ]);
    // Replaced meanwhile (a new secret entered): the re-wrap of the old one must not overwrite it.
    database.run("UPDATE sealed SET ciphertext = 'ct-b-new' WHERE id = 'b'");
    const stored = await holder.replace([
      { id: 'a', expectedCiphertext: 'ct-a', ciphertext: 'ct-a-v2', backend: 'local', keyVersion: 2 },
      { id: 'b', expectedCiphertext: 'ct-b', ciphertext: 'ct-b-v2', backend: 'local', keyVersion: 2 },
      { id: 'gone', expectedCiphertext: 'ct-x', ciphertext: 'ct-x-v2', backend: 'local', keyVersion: 2 },
    ]);
    expect(stored).toEqual(['a']);
    expect(database.query('SELECT id, key_version, ciphertext FROM sealed ORDER BY id').all()).toEqual([
      { id: 'a', key_version: 2, ciphertext: 'ct-a-v2' },
      { id: 'b', key_version: 1, ciphertext: 'ct-b-new' },
    ]);
  });
});

/** A store over an in-memory table that records every statement it runs. */
function recordingStore(database: Database) {
  const statements: string[] = [];
  const store = {
    query: async (sql: string, parameters: readonly unknown[] = []) => {
      statements.push(sql);
      return database.query(sql).all(...(parameters as string[])) as Array<Record<string, unknown>>;
    },
  };
  return { store, statements };
}

const notes = (keyVersionColumn: string | undefined): CiphertextTable => ({
  name: 'example:notes',
  table: 'notes',
  idColumn: 'id',
  ciphertextColumn: 'ciphertext',
  backendColumn: 'backend',
  ...(keyVersionColumn === undefined ? {} : { keyVersionColumn }),
  bindingColumns: [],
  binding: (row) => `example:${String(row.id)}`,
});

/** Reads `v<N>` out of the test ciphertexts `ct-v<N>-…`, as a backend's keyVersionOf would; counts its calls. */
function versionReader(): { read: CiphertextVersionReader; calls: () => number } {
  let calls = 0;
  const read: CiphertextVersionReader = (_backend, ciphertext) => {
    calls++;
    const match = /^ct-v(\d+)-/.exec(ciphertext);
    return match === null ? undefined : Number(match[1]);
  };
  return { read, calls: () => calls };
}

const byBackendAndVersion = (counts: Array<{ backend: string; keyVersion: number | undefined; count: number }>) =>
  [...counts].sort((left, right) => left.backend.localeCompare(right.backend) || (left.keyVersion ?? 0) - (right.keyVersion ?? 0));

describe('tableCiphertextHolder.countByVersion', () => {
  test('with a key-version column: one GROUP BY, no ciphertext read', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, key_version INTEGER, ciphertext TEXT NOT NULL)');
    const rows: Array<[string, string, number]> = [
      ['a', 'local', 1],
      ['b', 'local', 1],
      ['c', 'local', 2],
      ['d', 'vault-transit', 7],
    ];
    for (const [id, backend, version] of rows) database.run('INSERT INTO notes VALUES (?, ?, ?, ?)', [id, backend, version, `ct-v${version}-${id}`]);
    const { store, statements } = recordingStore(database);
    const reader = versionReader();
    const holder = tableCiphertextHolder({ store }, notes('key_version'));
    const counts = await holder.countByVersion?.(store, reader.read);
    expect(byBackendAndVersion(counts ?? [])).toEqual([
      { backend: 'local', keyVersion: 1, count: 2 },
      { backend: 'local', keyVersion: 2, count: 1 },
      { backend: 'vault-transit', keyVersion: 7, count: 1 },
    ]);
    expect(statements).toHaveLength(1);
    expect(statements[0]).toContain('GROUP BY');
    expect(statements[0]).not.toContain('ciphertext');
    expect(reader.calls()).toBe(0);
  });

  test('rows that recorded no version (NULL, written before the column) have it read from their ciphertext', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, key_version INTEGER, ciphertext TEXT NOT NULL)');
    database.run("INSERT INTO notes VALUES ('a', 'local', 2, 'ct-v2-a'), ('b', 'local', NULL, 'ct-v1-b'), ('c', 'local', NULL, 'ct-v2-c')");
    const { store } = recordingStore(database);
    const reader = versionReader();
    const counts = await tableCiphertextHolder({ store }, notes('key_version')).countByVersion?.(store, reader.read);
    expect(byBackendAndVersion(counts ?? [])).toEqual([
      { backend: 'local', keyVersion: 1, count: 1 },
      { backend: 'local', keyVersion: 2, count: 2 },
    ]);
    // Only the two unversioned rows were read.
    expect(reader.calls()).toBe(2);
  });

  test('with record, the versions read from ciphertexts are stored (where still NULL), so the next count reads none', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, key_version INTEGER, ciphertext TEXT NOT NULL)');
    database.run("INSERT INTO notes VALUES ('a', 'local', NULL, 'ct-v1-a'), ('b', 'local', NULL, 'ct-v2-b'), ('c', 'local', NULL, 'unreadable')");
    const { store } = recordingStore(database);
    const holder = tableCiphertextHolder({ store }, notes('key_version'));
    const reader = versionReader();
    // Without record (the check before the migrations, the status) nothing is written.
    await holder.countByVersion?.(store, reader.read);
    expect(database.query('SELECT COUNT(*) AS unrecorded FROM notes WHERE key_version IS NULL').get()).toEqual({ unrecorded: 3 });
    await holder.countByVersion?.(store, reader.read, { record: true });
    expect(database.query('SELECT id, key_version FROM notes ORDER BY id').all()).toEqual([
      { id: 'a', key_version: 1 },
      { id: 'b', key_version: 2 },
      { id: 'c', key_version: null },
    ]);
    const before = reader.calls();
    const counts = await holder.countByVersion?.(store, reader.read);
    expect(byBackendAndVersion(counts ?? [])).toEqual([
      { backend: 'local', keyVersion: undefined, count: 1 },
      { backend: 'local', keyVersion: 1, count: 1 },
      { backend: 'local', keyVersion: 2, count: 1 },
    ]);
    // Only the one row whose version cannot be told is read again.
    expect(reader.calls() - before).toBe(1);
  });

  test('a table that keeps no version: every ciphertext read in pages, none decrypted', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, ciphertext TEXT NOT NULL)');
    for (let index = 0; index < 450; index++) {
      const id = String(index).padStart(4, '0');
      database.run('INSERT INTO notes VALUES (?, ?, ?)', [id, 'local', `ct-v${index < 300 ? 1 : 2}-${id}`]);
    }
    const { store, statements } = recordingStore(database);
    const counts = await tableCiphertextHolder({ store }, notes(undefined)).countByVersion?.(store, versionReader().read);
    expect(byBackendAndVersion(counts ?? [])).toEqual([
      { backend: 'local', keyVersion: 1, count: 300 },
      { backend: 'local', keyVersion: 2, count: 150 },
    ]);
    expect(statements.length).toBe(3);
  });

  test('a row without a recorded version is listed without one (not as version 0)', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, key_version INTEGER, ciphertext TEXT NOT NULL)');
    database.run("INSERT INTO notes VALUES ('a', 'local', NULL, 'ct-v1-a')");
    const { store } = recordingStore(database);
    expect(await tableCiphertextHolder({ store }, notes('key_version')).list('', 10)).toEqual([
      { id: 'a', ciphertext: 'ct-v1-a', binding: 'example:a', backend: 'local' },
    ]);
  });

  test('a row without a backend holds no sealed value (one kept in plaintext until its plugin seals it): neither listed nor counted', async () => {
    const database = new Database(':memory:');
    database.run('CREATE TABLE notes (id TEXT PRIMARY KEY, backend TEXT, key_version INTEGER, ciphertext TEXT, plaintext TEXT)');
    database.run("INSERT INTO notes VALUES ('a', 'local', 1, 'ct-v1-a', NULL), ('b', NULL, NULL, NULL, 'not sealed yet')");
    const { store } = recordingStore(database);
    const holder = tableCiphertextHolder({ store }, notes('key_version'));
    expect((await holder.list('', 10)).map((item) => item.id)).toEqual(['a']);
    expect(await holder.countByVersion?.(store, versionReader().read)).toEqual([{ backend: 'local', keyVersion: 1, count: 1 }]);
  });
});
