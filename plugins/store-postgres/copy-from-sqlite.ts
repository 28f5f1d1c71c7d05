// Moves an embedded SQLite installation's rows into a PostgreSQL database already migrated to the
// same schema (the copy-store command, plugins/copy-store.ts; docs/deployment.md, "Moving from SQLite
// to PostgreSQL"). Every table is copied as stored: sealed secrets stay sealed under the master key
// that sealed them, usage rows keep their ids, roll-ups come along as rows. One read transaction on the
// source (a consistent snapshot) and one write transaction on the target (all or none), filled in
// batches so a large usage table never sits in memory whole; row counts are compared before commit.

import type { Database } from 'bun:sqlite';
import type { SQL } from 'bun';
import { LEASE_TABLE } from '../../core/spec/instance-lease.ts';
import { arrayLiteral } from './array-literal.ts';

export class CopyError extends Error {
  override name = 'CopyError';
}

type Row = Record<string, unknown>;

export const MIGRATIONS_TABLE = 'keyway_migrations';
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
/** The source's rowid, read beside the columns: it fills the PostgreSQL stand-ins for SQLite's implicit rowid. */
const ROWID_ALIAS = '__keyway_rowid';
/** The array type each column's values travel as (one array parameter per column, unnested). */
const ARRAY_TYPES: Readonly<Record<string, string>> = {
  text: 'text',
  bigint: 'int8',
  integer: 'int4',
  smallint: 'int2',
  'double precision': 'float8',
  real: 'float4',
  numeric: 'numeric',
};

interface TargetColumn {
  name: string;
  arrayType: string;
  identity: boolean;
  optional: boolean;
}

/** Where a target column's values come from: a source column, or the source's rowid. */
interface ColumnPlan {
  target: TargetColumn;
  from: string;
}

interface TablePlan {
  table: string;
  columns: ColumnPlan[];
  /** A rowid table is read in rowid order, its rowid beside the columns; a WITHOUT ROWID one in key order. */
  hasRowid: boolean;
}

export interface CopiedTable {
  table: string;
  rows: number;
}

export interface CopyOptions {
  /** The source, open read-only (`safeIntegers`, so 64-bit integers arrive whole). */
  source: Database;
  target: SQL;
  batchSize: number;
  progress: (line: string) => void;
}

function quoted(name: string): string {
  if (!IDENTIFIER.test(name)) throw new CopyError(`'${name}' is not a plain SQL name; copy-store copies only Keyway's own tables`);
  return `"${name}"`;
}

async function rows(client: SQL, statement: string, parameters: unknown[] = []): Promise<Row[]> {
  return [...((await client.unsafe(statement, parameters)) as Row[])];
}

/** The target's tables that hold rows (migration bookkeeping aside): copy-store writes only into an empty database. */
export async function targetTablesWithRows(target: SQL): Promise<string[]> {
  const tables = await rows(target, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
  const filled: string[] = [];
  for (const { table_name: table } of tables) {
    // The instance lease's row (core/process/instance-lease.ts) is a running or dead instance's, not data.
    if (table === MIGRATIONS_TABLE || table === LEASE_TABLE || !IDENTIFIER.test(String(table))) continue;
    if ((await rows(target, `SELECT 1 FROM ${quoted(String(table))} LIMIT 1`)).length > 0) filled.push(String(table));
  }
  return filled.sort();
}

/** The source's applied migrations: id → when. */
export function sourceMigrations(source: Database): Map<string, string> {
  const table = source.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(MIGRATIONS_TABLE);
  if (table === null) throw new CopyError(`the source has no ${MIGRATIONS_TABLE} table: it is not a Keyway database`);
  const applied = source.query(`SELECT id, applied_at FROM ${MIGRATIONS_TABLE}`).all() as Row[];
  return new Map(applied.map((row) => [String(row.id), String(row.applied_at)]));
}

async function targetColumns(target: SQL): Promise<Map<string, TargetColumn[]>> {
  const found = await rows(
    target,
    `SELECT c.table_name, c.column_name, c.data_type, c.is_identity, c.column_default, c.is_nullable
     FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position`,
  );
  const tables = new Map<string, TargetColumn[]>();
  for (const row of found) {
    const table = String(row.table_name);
    const arrayType = ARRAY_TYPES[String(row.data_type)];
    if (arrayType === undefined) throw new CopyError(`${table}.${row.column_name} is of type ${row.data_type}, which copy-store does not copy`);
    const identity = row.is_identity === 'YES';
    const column = { name: String(row.column_name), arrayType, identity, optional: identity || row.column_default !== null || row.is_nullable === 'YES' };
    tables.set(table, [...(tables.get(table) ?? []), column]);
  }
  return tables;
}

/** Parents before children, so every foreign key finds its row; otherwise by name. */
async function foreignKeyOrder(target: SQL, tables: readonly string[]): Promise<string[]> {
  const edges = await rows(
    target,
    `SELECT child.relname AS child, parent.relname AS parent FROM pg_constraint k
     JOIN pg_class child ON child.oid = k.conrelid JOIN pg_class parent ON parent.oid = k.confrelid
     JOIN pg_namespace n ON n.oid = child.relnamespace WHERE k.contype = 'f' AND n.nspname = current_schema()`,
  );
  const parents = new Map<string, string[]>();
  for (const edge of edges) parents.set(String(edge.child), [...(parents.get(String(edge.child)) ?? []), String(edge.parent)]);
  const ordered: string[] = [];
  const visit = (table: string, path: readonly string[]): void => {
    if (ordered.includes(table) || path.includes(table)) return;
    for (const parent of parents.get(table) ?? []) if (tables.includes(parent)) visit(parent, [...path, table]);
    ordered.push(table);
  };
  for (const table of [...tables].sort()) visit(table, []);
  return ordered;
}

/** How each table is copied; refuses a table or column the other side lacks, which would lose data or fail. */
async function planTables(source: Database, target: SQL): Promise<TablePlan[]> {
  const sourceTables = new Map(
    (source.query("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Row[]).map((row) => [
      String(row.name),
      Number(row.wr) === 0,
    ]),
  );
  sourceTables.delete(MIGRATIONS_TABLE);
  // A file a libSQL server served holds the lease table: whose instance it names means nothing in the target.
  sourceTables.delete(LEASE_TABLE);
  const columnsOf = await targetColumns(target);
  const missing = [...sourceTables.keys()].filter((table) => !columnsOf.has(table));
  if (missing.length > 0) throw new CopyError(`the target has no table ${missing.sort().join(', ')}: their rows would be lost`);
  const plans: TablePlan[] = [];
  for (const table of await foreignKeyOrder(target, [...sourceTables.keys()])) {
    const hasRowid = sourceTables.get(table) === true;
    const sourceColumns = (source.query(`SELECT name FROM pragma_table_info(?)`).all(table) as Row[]).map((row) => String(row.name));
    const columns = columnsOf.get(table) ?? [];
    const unknown = sourceColumns.filter((name) => !columns.some((column) => column.name === name));
    if (unknown.length > 0) throw new CopyError(`the target's ${table} has no column ${unknown.join(', ')}: its values would be lost`);
    const plan: ColumnPlan[] = [];
    for (const column of columns) {
      if (sourceColumns.includes(column.name)) plan.push({ target: column, from: column.name });
      // PostgreSQL's stand-in for SQLite's implicit rowid (provider_keys.position, teams.rowid): the same numbers, the same order.
      else if (column.identity && hasRowid) plan.push({ target: column, from: ROWID_ALIAS });
      else if (!column.optional) throw new CopyError(`the source's ${table} has no column ${column.name}, which the target requires`);
    }
    plans.push({ table, columns: plan, hasRowid });
  }
  return plans;
}

/** A source value as its target array type reads it; anything that would change on the way is refused. */
function element(value: unknown, arrayType: string, where: () => string): string | null {
  if (value === null || value === undefined) return null;
  if (arrayType === 'text') {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  } else if (arrayType.startsWith('int')) {
    if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value))) return String(value);
    if (typeof value === 'string' && /^-?\d+$/.test(value)) return value;
  } else {
    if (typeof value === 'bigint' || (typeof value === 'number' && Number.isFinite(value))) return String(value);
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return value;
  }
  throw new CopyError(
    `${where()} holds ${typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value}, which a ${arrayType} column cannot take as it is`,
  );
}

async function copyTable(plan: TablePlan, options: CopyOptions, transaction: SQL): Promise<number> {
  const { source, batchSize, progress } = options;
  const table = quoted(plan.table);
  const total = Number((source.query(`SELECT COUNT(*) AS count FROM ${table}`).get() as Row).count);
  const sourceColumns = plan.columns.filter((column) => column.from !== ROWID_ALIAS).map((column) => quoted(column.from));
  const select = plan.hasRowid
    ? `SELECT rowid AS ${ROWID_ALIAS}${sourceColumns.map((column) => `, ${column}`).join('')} FROM ${table} ORDER BY rowid`
    : `SELECT ${sourceColumns.join(', ')} FROM ${table}`;
  const overriding = plan.columns.some((column) => column.target.identity) ? ' OVERRIDING SYSTEM VALUE' : '';
  const insert = `INSERT INTO ${table} (${plan.columns.map((column) => quoted(column.target.name)).join(', ')})${overriding}
    SELECT * FROM UNNEST(${plan.columns.map((column, index) => `$${index + 1}::${column.target.arrayType}[]`).join(', ')})`;
  let copied = 0;
  let batch: Row[] = [];
  const write = async (): Promise<void> => {
    const parameters = plan.columns.map((column) =>
      arrayLiteral(
        batch.map((row, offset) => element(row[column.from], column.target.arrayType, () => `${plan.table}.${column.from} (row ${copied + offset + 1})`)),
      ),
    );
    await transaction.unsafe(insert, parameters);
    copied += batch.length;
    batch = [];
    if (total > batchSize) progress(`  ${plan.table}: ${copied.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} rows`);
  };
  for (const row of source.query(select).iterate() as IterableIterator<Row>) {
    batch.push(row);
    if (batch.length >= batchSize) await write();
  }
  if (batch.length > 0) await write();
  // Identity columns were given their values: the next row the gateway inserts continues after them.
  for (const column of plan.columns.filter((candidate) => candidate.target.identity)) {
    await transaction.unsafe(
      `SELECT setval(pg_get_serial_sequence($1, $2), (SELECT COALESCE(MAX(${quoted(column.target.name)}), 0) FROM ${table}) + 1, false)`,
      [plan.table, column.target.name],
    );
  }
  const stored = Number((await rows(transaction, `SELECT COUNT(*) AS count FROM ${table}`))[0]?.count ?? -1);
  if (stored !== total || copied !== total)
    throw new CopyError(`${plan.table}: the source holds ${total} rows, ${copied} were read and the target holds ${stored}`);
  return total;
}

/**
 * Copies every table of the source into the target, whose schema is already migrated and whose tables
 * are empty, in one transaction: a failure leaves the target as empty as it was (its schema stays).
 * The migration bookkeeping keeps the target's rows (PostgreSQL has a few migrations of its own) with
 * the source's dates for the migrations both applied.
 */
export async function copySqliteIntoPostgres(options: CopyOptions): Promise<CopiedTable[]> {
  const { source, target } = options;
  source.exec('BEGIN');
  try {
    const plans = await planTables(source, target);
    const applied = sourceMigrations(source);
    return await target.begin(async (transaction) => {
      const copied: CopiedTable[] = [];
      for (const plan of plans) copied.push({ table: plan.table, rows: await copyTable(plan, options, transaction) });
      for (const [id, appliedAt] of applied) await transaction.unsafe(`UPDATE ${MIGRATIONS_TABLE} SET applied_at = $2 WHERE id = $1`, [id, appliedAt]);
      return copied;
    });
  } finally {
    source.exec('COMMIT');
  }
}
