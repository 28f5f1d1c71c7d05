// A ciphertext holder (crypto-backend.ts) over one plugin table whose rows each hold one value sealed
// with `services.secrets`, so a plugin that seals its own secrets hands them to master-key rotation
// in a few lines instead of writing the paging and compare-and-swap itself.

import type { CiphertextHolder, CiphertextReplacement, CiphertextVersionReader, HeldCiphertext, HeldVersionCount } from './crypto-backend.ts';
import type { Store } from './store.ts';

type Row = Record<string, unknown>;

/** Rows whose version is read from their ciphertext, per page: bounded memory on a large table. */
const UNVERSIONED_PAGE = 200;

export interface CiphertextTable {
  /** The holder's name, unique among holders: `<plugin>:<table>`. */
  name: string;
  table: string;
  /** A unique column: the rows are paged in its order and replaced by it. */
  idColumn: string;
  ciphertextColumn: string;
  /**
   * A row where it is NULL holds no sealed value (one an earlier release kept in plaintext, until the
   * plugin seals it): it is neither listed nor counted.
   */
  backendColumn: string;
  /**
   * Absent when the table keeps no version: the backend reads it from the ciphertext. With it (and an
   * index on backend and version for a large table), the start check counts by version in one query.
   * A row where it is NULL (written before the column existed) has its version read from the ciphertext,
   * and stored when the count may record it, so that is done once.
   */
  keyVersionColumn?: string;
  /** The further columns `binding` reads. */
  bindingColumns: readonly string[];
  /** The binding the value was sealed with, built from its row exactly as the plugin builds it. */
  binding(row: Row): string;
}

/** The rows that hold a sealed value (read from the backend column: a count by version reads no ciphertext). */
function sealed(table: CiphertextTable): string {
  return `${table.backendColumn} IS NOT NULL`;
}

function selectSql(table: CiphertextTable): string {
  const columns = [table.idColumn, table.ciphertextColumn, table.backendColumn, ...(table.keyVersionColumn === undefined ? [] : [table.keyVersionColumn])];
  const wanted = [...new Set([...columns, ...table.bindingColumns])].join(', ');
  return `SELECT ${wanted} FROM ${table.table} WHERE ${sealed(table)} AND ${table.idColumn} > ? ORDER BY ${table.idColumn} LIMIT ?`;
}

function updateSql(table: CiphertextTable): string {
  const versionAssignment = table.keyVersionColumn === undefined ? '' : `, ${table.keyVersionColumn} = ?`;
  return `UPDATE ${table.table} SET ${table.ciphertextColumn} = ?, ${table.backendColumn} = ?${versionAssignment} WHERE ${table.idColumn} = ? AND ${table.ciphertextColumn} = ? RETURNING ${table.idColumn}`;
}

/** The recorded version, or undefined when the table keeps none or the row has none (NULL). */
function recordedVersion(table: CiphertextTable, row: Row): number | undefined {
  const value = table.keyVersionColumn === undefined ? undefined : row[table.keyVersionColumn];
  return value === null || value === undefined ? undefined : Number(value);
}

function heldOf(table: CiphertextTable, row: Row): HeldCiphertext {
  const version = recordedVersion(table, row);
  return {
    id: String(row[table.idColumn]),
    ciphertext: String(row[table.ciphertextColumn]),
    binding: table.binding(row),
    backend: String(row[table.backendColumn]),
    ...(version !== undefined && Number.isSafeInteger(version) ? { keyVersion: version } : {}),
  };
}

/** Counted by the database; the NULL group is the rows that recorded no version. */
function countSql(table: CiphertextTable, keyVersionColumn: string): string {
  return `SELECT ${table.backendColumn} AS backend, ${keyVersionColumn} AS key_version, COUNT(*) AS held FROM ${table.table} WHERE ${sealed(table)} GROUP BY ${table.backendColumn}, ${keyVersionColumn}`;
}

function unversionedSql(table: CiphertextTable): string {
  const unrecorded = table.keyVersionColumn === undefined ? '' : `${table.keyVersionColumn} IS NULL AND `;
  return `SELECT ${table.idColumn}, ${table.backendColumn}, ${table.ciphertextColumn} FROM ${table.table} WHERE ${unrecorded}${sealed(table)} AND ${table.idColumn} > ? ORDER BY ${table.idColumn} LIMIT ?`;
}

/** Adds `count` values of one backend and version to a tally keyed by both. */
export function addHeldCount(tally: Map<string, HeldVersionCount>, backend: string, keyVersion: number | undefined, count: number): void {
  const name = `${backend}\u0000${keyVersion ?? ''}`;
  const entry = tally.get(name) ?? { backend, keyVersion, count: 0 };
  entry.count += count;
  tally.set(name, entry);
}

/**
 * Stores the versions read from a page's ciphertexts, one statement per version, only where the row
 * still records none: a row a rotation re-wrapped meanwhile already has its new version.
 */
async function recordVersions(
  table: CiphertextTable,
  keyVersionColumn: string,
  store: Pick<Store, 'query'>,
  versions: ReadonlyMap<number, string[]>,
): Promise<void> {
  for (const [version, ids] of versions) {
    const placeholders = ids.map(() => '?').join(', ');
    await store.query(`UPDATE ${table.table} SET ${keyVersionColumn} = ? WHERE ${keyVersionColumn} IS NULL AND ${table.idColumn} IN (${placeholders})`, [
      version,
      ...ids,
    ]);
  }
}

/** Pages through the rows that recorded no version, reading it from each ciphertext (no decryption). */
async function countUnversioned(
  table: CiphertextTable,
  store: Pick<Store, 'query'>,
  versionOf: CiphertextVersionReader,
  tally: Map<string, HeldVersionCount>,
  record: boolean,
): Promise<void> {
  const select = unversionedSql(table);
  let cursor = '';
  for (;;) {
    const rows = await store.query(select, [cursor, UNVERSIONED_PAGE]);
    const read = new Map<number, string[]>();
    for (const row of rows) {
      const backend = String(row[table.backendColumn]);
      const version = versionOf(backend, String(row[table.ciphertextColumn]));
      addHeldCount(tally, backend, version, 1);
      if (version !== undefined) read.set(version, [...(read.get(version) ?? []), String(row[table.idColumn])]);
    }
    if (record && table.keyVersionColumn !== undefined) await recordVersions(table, table.keyVersionColumn, store, read);
    if (rows.length < UNVERSIONED_PAGE) return;
    cursor = String(rows.at(-1)?.[table.idColumn]);
  }
}

/** One GROUP BY where the table records versions; the ciphertexts are read only for rows that recorded none. */
async function countByVersion(
  table: CiphertextTable,
  store: Pick<Store, 'query'>,
  versionOf: CiphertextVersionReader,
  record: boolean,
): Promise<HeldVersionCount[]> {
  const tally = new Map<string, HeldVersionCount>();
  let unversioned = true;
  if (table.keyVersionColumn !== undefined) {
    unversioned = false;
    for (const row of await store.query(countSql(table, table.keyVersionColumn))) {
      if (row.key_version === null || row.key_version === undefined) unversioned = true;
      else addHeldCount(tally, String(row.backend), Number(row.key_version), Number(row.held));
    }
  }
  if (unversioned) await countUnversioned(table, store, versionOf, tally, record);
  return [...tally.values()];
}

function updateParameters(table: CiphertextTable, update: CiphertextReplacement): unknown[] {
  const version = table.keyVersionColumn === undefined ? [] : [update.keyVersion];
  return [update.ciphertext, update.backend, ...version, update.id, update.expectedCiphertext];
}

/** `services.store` is read at each call: it exists only once the gateway has started, after plugin setup. */
export function tableCiphertextHolder(services: { readonly store: Pick<Store, 'query'> }, table: CiphertextTable): CiphertextHolder {
  const select = selectSql(table);
  const update = updateSql(table);
  return {
    name: table.name,
    tables: [table.table],
    async list(cursor, limit) {
      return (await services.store.query(select, [cursor, limit])).map((row) => heldOf(table, row));
    },
    async replace(updates) {
      const stored: string[] = [];
      // One statement per value, each a compare-and-swap on the ciphertext read: a value written
      // meanwhile (a secret replaced, a row deleted) is left as it is and not counted.
      for (const replacement of updates) {
        const rows = await services.store.query(update, updateParameters(table, replacement));
        if (rows.length > 0) stored.push(replacement.id);
      }
      return stored;
    },
    countByVersion: (store, versionOf, options) => countByVersion(table, store, versionOf, options?.record === true),
  };
}
