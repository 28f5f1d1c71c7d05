// Multi-row statements prepared once per connection. bun:sqlite caches a prepared statement by its
// text, but finding it that way meant building and hashing a text of several kilobytes for every 32
// rows; the statement objects kept here are bun's own cached ones, finalized when the connection closes.

import type { Database } from 'bun:sqlite';

/**
 * A statement run with its parameters as one array, which bun:sqlite binds positionally as it does a
 * spread (Database.run documents the array form; the Statement typings know only the spread).
 */
export type ArrayStatement = { run(parameters: ReadonlyArray<string | number | null>): { lastInsertRowid: number | bigint } };

/** A lookup of each connection's statement for a key and a row count, built by `build` on first use. */
export function statementCache<Key>(build: (key: Key, count: number) => string): (connection: Database, key: Key, count: number) => ArrayStatement {
  const byConnection = new WeakMap<Database, Map<Key, Array<ArrayStatement | undefined>>>();
  return (connection, key, count) => {
    let byKey = byConnection.get(connection);
    if (byKey === undefined) {
      byKey = new Map();
      byConnection.set(connection, byKey);
    }
    let byCount = byKey.get(key);
    if (byCount === undefined) {
      byCount = [];
      byKey.set(key, byCount);
    }
    let statement = byCount[count];
    if (statement === undefined) {
      statement = connection.query(build(key, count)) as unknown as ArrayStatement;
      byCount[count] = statement;
    }
    return statement;
  };
}
