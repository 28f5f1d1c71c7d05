// A ciphertext holder (crypto-backend.ts) over one plugin table whose rows each hold one value sealed
// with `services.secrets`, so a plugin that seals its own secrets hands them to master-key rotation
// in a few lines instead of writing the paging and compare-and-swap itself.

import type { CiphertextHolder, CiphertextReplacement, HeldCiphertext } from './crypto-backend.ts';
import type { Store } from './store.ts';

type Row = Record<string, unknown>;

export interface CiphertextTable {
  /** The holder's name, unique among holders: `<plugin>:<table>`. */
  name: string;
  table: string;
  /** A unique column: the rows are paged in its order and replaced by it. */
  idColumn: string;
  ciphertextColumn: string;
  backendColumn: string;
  /** Absent when the table keeps no version: the backend reads it from the ciphertext. */
  keyVersionColumn?: string;
  /** The further columns `binding` reads. */
  bindingColumns: readonly string[];
  /** The binding the value was sealed with, built from its row exactly as the plugin builds it. */
  binding(row: Row): string;
}

function selectSql(table: CiphertextTable): string {
  const columns = [table.idColumn, table.ciphertextColumn, table.backendColumn, ...(table.keyVersionColumn === undefined ? [] : [table.keyVersionColumn])];
  const wanted = [...new Set([...columns, ...table.bindingColumns])].join(', ');
  return `SELECT ${wanted} FROM ${table.table} WHERE ${table.idColumn} > ? ORDER BY ${table.idColumn} LIMIT ?`;
}

function updateSql(table: CiphertextTable): string {
  const versionAssignment = table.keyVersionColumn === undefined ? '' : `, ${table.keyVersionColumn} = ?`;
  return `UPDATE ${table.table} SET ${table.ciphertextColumn} = ?, ${table.backendColumn} = ?${versionAssignment} WHERE ${table.idColumn} = ? AND ${table.ciphertextColumn} = ? RETURNING ${table.idColumn}`;
}

function heldOf(table: CiphertextTable, row: Row): HeldCiphertext {
  const version = table.keyVersionColumn === undefined ? undefined : Number(row[table.keyVersionColumn]);
  return {
    id: String(row[table.idColumn]),
    ciphertext: String(row[table.ciphertextColumn]),
    binding: table.binding(row),
    backend: String(row[table.backendColumn]),
    ...(version !== undefined && Number.isSafeInteger(version) ? { keyVersion: version } : {}),
  };
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
  };
}
