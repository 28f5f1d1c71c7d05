// One batch of rows and its follow-up statements (the roll-ups) in one transaction: shared by the
// usage writer thread (usage-writer.ts) and the gateway's thread when writes stay there (database.ts).

import type { Database } from 'bun:sqlite';
import { type UsageFolder, writeFolds } from './fold-upsert.ts';
import { runFollowUp } from './follow-up.ts';
import { statementCache } from './statement-cache.ts';

/**
 * Rows per INSERT statement. One statement per row made SQLite's per-statement work (and the
 * AUTOINCREMENT bookkeeping, once per statement) and the call from JavaScript a part of every row:
 * 32 rows a statement cost 10–25 % less per usage row (2.3–3.1 µs against 2.9–3.6 µs, 26 columns).
 */
const ROWS_PER_STATEMENT = 32;

/** `INSERT … VALUES (?, …)` for one row, made to take `count` rows. */
function multiRowStatement(sql: string, count: number): string {
  if (count === 1) return sql;
  const tuple = sql.slice(sql.lastIndexOf('('));
  return `${sql}${`, ${tuple}`.repeat(count - 1)}`;
}

/** Each connection's multi-row INSERTs, by one-row text and row count. */
const statementFor = statementCache(multiRowStatement);

/**
 * Inserts the rows with `sql` (an INSERT of one row's placeholders), writes what `fold` sums from them
 * (core/spec/usage-fold.ts), then runs each follow-up with the batch's first and last id: all or none.
 * Each statement is compiled once per connection. `pause` runs every 256 rows of the fold, after it and
 * after each INSERT (the writer thread yields its core there: usage-writer.ts).
 */
export function insertBatch(
  connection: Database,
  sql: string,
  rows: ReadonlyArray<readonly unknown[]>,
  after: readonly string[],
  fold?: UsageFolder,
  pause?: () => void,
): void {
  // Summed before the transaction opens: the write lock is held for the writes only.
  const folded = fold === undefined || rows.length === 0 ? [] : fold(rows, pause);
  pause?.();
  connection.transaction(() => {
    let first: number | bigint | undefined;
    let last: number | bigint | undefined;
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const count = Math.min(ROWS_PER_STATEMENT, rows.length - start);
      const parameters: Array<string | number | null> = [];
      for (let index = start; index < start + count; index++) {
        const row = rows[index] as ReadonlyArray<string | number | null>;
        for (let column = 0; column < row.length; column++) parameters.push(row[column] as string | number | null);
      }
      // One array argument rather than a spread: ~0.2 µs a row less (bun builds no argument list of ~1000).
      last = statementFor(connection, sql, count).run(parameters).lastInsertRowid;
      // One transaction holds the write lock, so the batch's rowids are first..last with no gap.
      first ??= typeof last === 'bigint' ? last - BigInt(count - 1) : last - (count - 1);
      pause?.();
    }
    writeFolds(connection, folded);
    // Each follow-up is prepared in turn (bun caches it by text): one may use a table an earlier one creates.
    if (first !== undefined && last !== undefined) for (const text of after) runFollowUp(connection.query(text), text, first, last);
  })();
}
