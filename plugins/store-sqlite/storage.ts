// What the SQLite store is written against (store.ts): one database reached through Bun's built-in
// driver or a libSQL client (database.ts opens either), or a consistent read's view of it (consistent-read.ts).

import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import type { JournalRange } from '../../core/spec/store.ts';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import type { schema } from './schema.ts';

export type KeywayDatabase = BaseSQLiteDatabase<'sync' | 'async', unknown, typeof schema>;

export interface Storage {
  db: KeywayDatabase;
  driver: 'bun-sqlite' | 'libsql';
  /** Runs one SQL statement outside drizzle (migrations, plugin tables, health checks). */
  execute(statement: string, parameters?: readonly unknown[]): Promise<void>;
  queryRows(statement: string, parameters?: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  /** Runs the statements atomically. */
  executeAtomically(statements: string[]): Promise<void>;
  /**
   * Inserts many rows in one transaction with a prepared statement: all or none. For the usage queue,
   * where drizzle's builder costs more per row than SQLite itself. In the same transaction, what the
   * rows add to the `folds` tables (core/spec/usage-fold.ts), then the `after` statements.
   */
  insertMany(
    table: string,
    columns: readonly string[],
    rows: ReadonlyArray<readonly unknown[]>,
    after?: readonly string[],
    folds?: readonly UsageFoldTable[],
  ): Promise<void>;
  /**
   * `insertMany` for usage rows given as usage journal text (usage-values.ts), decoded where they are
   * written: present only where that is the writer thread, so the gateway's thread never encodes them again.
   */
  insertUsageText?(
    table: string,
    columns: readonly string[],
    text: string,
    count: number,
    after: readonly string[],
    folds: readonly UsageFoldTable[],
  ): Promise<void>;
  /**
   * `insertUsageText` for rows the writer thread reads from a usage journal file (Store.insertJournalRange):
   * the text is neither kept nor copied on the gateway's thread.
   */
  insertUsageFile?(
    table: string,
    columns: readonly string[],
    range: JournalRange,
    count: number,
    after: readonly string[],
    folds: readonly UsageFoldTable[],
  ): Promise<void>;
  /** Runs one parameterized statement per row in one transaction: all or none; answers the rows each run changed. */
  runEach(statement: string, rows: ReadonlyArray<readonly unknown[]>): Promise<number[]>;
  /**
   * Store.readConsistent: `read` gets a storage whose reads all happen in one read transaction, and
   * which refuses writes (consistent-read.ts). Absent on a view itself.
   */
  readConsistent?<Result>(read: (view: Storage) => Promise<Result>): Promise<Result>;
  /**
   * True once no consistent read of this process holds a read transaction on the file, false when one
   * still does after `waitMs`. A TRUNCATE checkpoint waits for every reader in SQLite's busy handler,
   * which blocks this thread, so a read of this same thread could never end: it is waited for here.
   */
  readsSettled?(waitMs: number): Promise<boolean>;
  close(): void;
}
