// A batch goes in as multi-row INSERTs; its follow-ups (the roll-ups) still get the batch's exact
// first and last id, and a failure leaves nothing behind.

import { Database } from 'bun:sqlite';
import { expect, test } from 'bun:test';
import { insertBatch } from '../../plugins/store-sqlite/batch-insert.ts';

const SQL = 'INSERT INTO items (name, size) VALUES (?, ?)';

function database(): Database {
  const connection = new Database(':memory:');
  connection.exec('CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, size INTEGER NOT NULL)');
  connection.exec('CREATE TABLE ranges (first INTEGER, last INTEGER, rows INTEGER)');
  return connection;
}

const FOLLOW_UP = 'INSERT INTO ranges SELECT ?1, ?2, (SELECT COUNT(*) FROM items WHERE id BETWEEN ?1 AND ?2)';

test.each([1, 31, 32, 33, 70, 500])('%i rows: all inserted in order, the follow-up sees exactly their ids', (count) => {
  const connection = database();
  // An earlier batch, so the ids do not start at 1.
  insertBatch(connection, SQL, [['before', 0]], []);
  const rows = Array.from({ length: count }, (_, index) => [`item ${index}`, index]);
  insertBatch(connection, SQL, rows, [FOLLOW_UP]);
  const stored = connection.query('SELECT id, name, size FROM items WHERE id > 1 ORDER BY id').all() as Array<{ id: number; name: string; size: number }>;
  expect(stored.map((row) => [row.name, row.size])).toEqual(rows);
  expect(connection.query('SELECT first, last, rows FROM ranges').all()).toEqual([{ first: 2, last: count + 1, rows: count }]);
});

test('a failing row rolls the whole batch back, follow-ups included', () => {
  const connection = database();
  const rows: Array<Array<string | number | null>> = Array.from({ length: 40 }, (_, index) => [`item ${index}`, index]);
  rows[35] = [null, 35];
  expect(() => insertBatch(connection, SQL, rows, [FOLLOW_UP])).toThrow();
  expect(connection.query('SELECT COUNT(*) AS count FROM items').get()).toEqual({ count: 0 });
  expect(connection.query('SELECT COUNT(*) AS count FROM ranges').get()).toEqual({ count: 0 });
});
