// The table-backed ciphertext holder plugins contribute: pages in id order from a cursor, hands out the
// binding each value was sealed with, and replaces a value only where the row still holds the one read.

import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';

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
