// Writing a usage batch's folds (core/spec/usage-fold.ts): each table's new sums as multi-row upserts,
// in the batch's transaction. Shared by the usage writer thread and the gateway's thread.

import type { Database } from 'bun:sqlite';
import { compileUsageFolds, type UsageFoldRows, type UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { statementCache } from './statement-cache.ts';

/** Buckets per upsert statement: a batch has a few to a few hundred per table. */
const ROWS_PER_UPSERT = 32;

export type UsageFolder = (rows: ReadonlyArray<readonly unknown[]>, pause?: () => void) => UsageFoldRows[];

/** Adds each row's sums to the table's row of its key, or inserts it: `count` rows in one statement. */
export function upsertStatement(table: UsageFoldTable, count: number): string {
  const keys = table.keys.map((key) => key.column);
  const sums = table.sums.map((sum) => sum.column);
  const tuple = `(${[...keys, ...sums].map(() => '?').join(', ')})`;
  return `INSERT INTO ${table.table} (${[...keys, ...sums].join(', ')}) VALUES ${Array.from({ length: count }, () => tuple).join(', ')}
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${sums.map((column) => `${column} = ${column} + excluded.${column}`).join(', ')}`;
}

const folders = new WeakMap<readonly UsageFoldTable[], UsageFolder>();

/** The fold of usage rows given in `columns` order, compiled once per list of tables. */
export function usageFolder(tables: readonly UsageFoldTable[], columns: readonly string[]): UsageFolder {
  let folder = folders.get(tables);
  if (folder === undefined) {
    folder = compileUsageFolds(tables, columns);
    folders.set(tables, folder);
  }
  return folder;
}

/** Each connection's upsert statements, by table and row count. */
const statementFor = statementCache(upsertStatement);

/** Writes what a batch adds to each table; the caller holds the batch's transaction. */
export function writeFolds(connection: Database, folded: readonly UsageFoldRows[]): void {
  for (const { table, rows } of folded) {
    for (let start = 0; start < rows.length; start += ROWS_PER_UPSERT) {
      const count = Math.min(ROWS_PER_UPSERT, rows.length - start);
      const parameters: Array<string | number> = [];
      for (let index = start; index < start + count; index++) for (const value of rows[index] as Array<string | number>) parameters.push(value);
      statementFor(connection, table, count).run(parameters);
    }
  }
}
