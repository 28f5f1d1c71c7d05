// Store.readConsistent for the SQLite store: every read of one snapshot load sees one state of the
// database. The gateway's own connection cannot hold the read transaction: a management write of this
// process landing between two awaited reads would run on that connection inside it (and see, or be
// rolled back with, the read), so the file is read through a connection of its own. In WAL mode its
// read transaction does not block the writers (the gateway's connection, the usage writer thread,
// the other workers); it only keeps a checkpoint from passing the pages it still reads, for as long as
// a snapshot load takes.

import { Database } from 'bun:sqlite';
import { drizzle as drizzleBunSqlite } from 'drizzle-orm/bun-sqlite';
import type { Client, Transaction } from '@libsql/client';
import type { KeywayDatabase, Storage } from './storage.ts';
import { schema } from './schema.ts';

type ConsistentRead = NonNullable<Storage['readConsistent']>;

/** Writes through a view are refused: it lives only as long as one read, inside a read transaction. */
function refuseWrite(): never {
  throw new Error('A consistent read of the store is for reading only; write through the store itself.');
}

/** A Storage that reads through `queryRows` and `db` and refuses every write of its own. */
function readOnlyStorage(db: KeywayDatabase, driver: Storage['driver'], queryRows: Storage['queryRows'], execute: Storage['execute'] = refuseWrite): Storage {
  return {
    db,
    driver,
    execute,
    queryRows,
    executeAtomically: async () => refuseWrite(),
    insertMany: async () => refuseWrite(),
    runEach: async () => refuseWrite(),
    // The view's connection belongs to the storage that made it.
    close: () => undefined,
  };
}

/** A connection's rows, as Storage.queryRows answers them. */
function rowsOf(connection: Database): Storage['queryRows'] {
  return async (statement, parameters) =>
    connection.query(statement).all(...((parameters ?? []) as Array<string | number | null>)) as Array<Record<string, unknown>>;
}

/**
 * One `BEGIN … COMMIT` (deferred: its snapshot is taken at its first read) on `connection`, around
 * `read`. `query_only` refuses a write through it with SQLite's own error.
 */
async function inReadTransaction<Result>(connection: Database, view: Storage, read: (view: Storage) => Promise<Result>): Promise<Result> {
  connection.exec('BEGIN');
  try {
    return await read(view);
  } finally {
    // A read transaction holds no change: ending it frees its WAL snapshot for the checkpoints.
    if (connection.inTransaction) connection.exec('COMMIT');
  }
}

/** One read on its own connection, closed after it. */
async function readThrough<Result>(connection: Database, read: (view: Storage) => Promise<Result>): Promise<Result> {
  try {
    // busy_timeout: opening a WAL file's read snapshot can meet a checkpoint or a recovery for a moment.
    connection.exec('PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;');
    const db = drizzleBunSqlite(connection, { schema }) as unknown as KeywayDatabase;
    return await inReadTransaction(connection, readOnlyStorage(db, 'bun-sqlite', rowsOf(connection)), read);
  } finally {
    connection.close();
  }
}

export interface FileReader {
  readConsistent: ConsistentRead;
  /** Storage.readsSettled: false when a consistent read of this process is still open after `waitMs`. */
  readsSettled(waitMs: number): Promise<boolean>;
}

/**
 * For a database file: a connection of its own for each read, closed when the read ends, so an idle
 * gateway holds no more connections (nor their page caches) than before. Opening one costs a fraction
 * of a millisecond, next to a snapshot load that reads every configuration table.
 */
export function fileReader(path: string, readOnly: boolean): FileReader {
  const running = new Set<Promise<unknown>>();
  const readConsistent: ConsistentRead = (read) => {
    const reading = readThrough(readOnly ? new Database(path, { readonly: true }) : new Database(path, { readwrite: true }), read);
    running.add(reading);
    const forget = (): void => {
      running.delete(reading);
    };
    reading.then(forget, forget);
    return reading;
  };
  const readsSettled = async (waitMs: number): Promise<boolean> => {
    const deadline = Date.now() + waitMs;
    while (running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([Promise.allSettled([...running]), Bun.sleep(left)]);
    }
    return true;
  };
  return { readConsistent, readsSettled };
}

/**
 * For `:memory:`: a second connection would open another, empty database, and the only connection
 * is the one this process writes through. The database is copied instead (sqlite3_serialize, one
 * synchronous call, so no write of this process can land in the middle), and read from the copy.
 * An in-memory database is for tests and tries, small: the copy costs what the database weighs.
 */
export function memoryReader(sqlite: Database): ConsistentRead {
  return async (read) => {
    const copy = Database.deserialize(sqlite.serialize());
    try {
      copy.exec('PRAGMA query_only = ON;');
      return await read(readOnlyStorage(drizzleBunSqlite(copy, { schema }) as unknown as KeywayDatabase, 'bun-sqlite', rowsOf(copy)));
    } finally {
      copy.close();
    }
  };
}

/**
 * For libSQL: one interactive read transaction (`BEGIN TRANSACTION READONLY`, on one stream of the
 * server), drizzle's queries sent through it as they would be through the client.
 */
export function libsqlReader(client: Pick<Client, 'transaction'>, drizzle: (client: Client, config: { schema: typeof schema }) => unknown): ConsistentRead {
  return async (read) => {
    const transaction: Transaction = await client.transaction('read');
    try {
      const queryRows: Storage['queryRows'] = async (statement, parameters) =>
        (await transaction.execute({ sql: statement, args: (parameters ?? []) as Array<string | number | null> })).rows as unknown as Array<
          Record<string, unknown>
        >;
      // drizzle's libSQL session sends each query with `execute`, which the transaction has too.
      const db = drizzle(transaction as unknown as Client, { schema }) as KeywayDatabase;
      const result = await read(readOnlyStorage(db, 'libsql', queryRows));
      await transaction.commit();
      return result;
    } finally {
      transaction.close();
    }
  };
}
