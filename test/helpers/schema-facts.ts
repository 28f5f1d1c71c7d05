// The DDL facts of a schema in one dialect-neutral shape, read three ways: from the drizzle table
// definitions the SQLite store queries with (plugins/store-sqlite/schema.ts), from a migrated SQLite
// database (pragmas) and from a migrated PostgreSQL database (catalogs). Tests compare them, so the
// drizzle schema, the SQLite migrations and the PostgreSQL migrations cannot drift apart unnoticed.
//
// Types map as the migrations translate them: TEXT ↔ text, INTEGER ↔ bigint, REAL ↔ double precision,
// BLOB ↔ bytea; any other type keeps its dialect-prefixed name, so it can only equal itself.

import { is, SQL } from 'drizzle-orm';
import { getTableConfig, SQLiteSyncDialect, type SQLiteColumn, type SQLiteTable } from 'drizzle-orm/sqlite-core';

export interface ColumnFacts {
  type: string;
  /** Primary-key columns count as NOT NULL in every dialect (see sqliteSchemaFacts). */
  notNull: boolean;
  /** The DEFAULT clause as a canonical SQL literal (`'{}'`, `1`), or null for none. */
  default: string | null;
  /** Ids the database assigns: SQLite AUTOINCREMENT, a PostgreSQL identity (or serial) column. */
  identity: 'by default' | 'always' | null;
}

export interface IndexFacts {
  unique: boolean;
  /** Key columns in order; an expression key reads `<expression>`. */
  columns: string[];
  /** A partial index's WHERE clause, canonical (no casts, quotes, parentheses, spaces or case). */
  where: string | null;
}

export interface TableFacts {
  columns: Record<string, ColumnFacts>;
  primaryKey: string[];
  /** Indexes created by name (CREATE INDEX), by that name; constraint-backed indexes are not here. */
  indexes: Record<string, IndexFacts>;
  /** UNIQUE constraints as comma-joined column lists, sorted (their index names differ by dialect). */
  uniqueConstraints: string[];
  /** FOREIGN KEYs as `columns -> table(columns)`, sorted. */
  foreignKeys: string[];
}

export type SchemaFacts = Record<string, TableFacts>;

/** Runs SQL on a migrated store (`store.query`). */
export type Query = (sql: string) => Promise<Array<Record<string, unknown>>>;

/** Columns PostgreSQL has in place of SQLite's implicit rowid (ordering and re-wrap walks). */
export const POSTGRES_ROWID_STANDINS: ReadonlySet<string> = new Set(['provider_keys.position', 'teams.rowid', 'team_members.rowid']);

const SQLITE_TYPES: Readonly<Record<string, string>> = { TEXT: 'text', INTEGER: 'integer', REAL: 'real', BLOB: 'blob' };
const POSTGRES_TYPES: Readonly<Record<string, string>> = { text: 'text', bigint: 'integer', 'double precision': 'real', bytea: 'blob' };
const DRIZZLE_TYPES: Readonly<Record<string, string>> = { text: 'text', integer: 'integer', real: 'real', blob: 'blob' };
const NUMERIC_CASTS = /^'(-?\d+(?:\.\d+)?)'::(?:smallint|integer|bigint|numeric|real|double precision)$/i;

function canonicalType(types: Readonly<Record<string, string>>, dialect: string, type: string): string {
  return types[type] ?? `${dialect}:${type}`;
}

/** `'{}'::text` (PostgreSQL), `('{}')` (SQLite) and `'{}'` (drizzle) all read `'{}'`; `1.0` reads `1`. */
export function canonicalDefault(raw: string | null): string | null {
  if (raw === null) return null;
  let text = raw.trim();
  while (/^\((?:[^()]|'[^']*')*\)$/.test(text)) text = text.slice(1, -1).trim();
  const quotedNumber = NUMERIC_CASTS.exec(text);
  if (quotedNumber?.[1] !== undefined) text = quotedNumber[1];
  text = text.replace(/::[a-z ]+$/i, '');
  if (/^null$/i.test(text)) return null;
  if (/^-?\d+(?:\.\d+)?$/.test(text)) return String(Number(text));
  return text;
}

/** A partial index's predicate, so `(status = 'x'::text)` and `"status" = 'x'` read alike; quoted text keeps its case and spaces. */
export function canonicalPredicate(raw: string | null): string | null {
  if (raw === null) return null;
  return raw
    .split(/('(?:[^']|'')*')/)
    .map((part, index) =>
      index % 2 === 1
        ? part
        : part
            .replace(/::[a-z ]+/gi, '')
            .replace(/["()\s]/g, '')
            .toLowerCase(),
    )
    .join('');
}

function emptyTable(): TableFacts {
  return { columns: {}, primaryKey: [], indexes: {}, uniqueConstraints: [], foreignKeys: [] };
}

function tableOf(facts: SchemaFacts, name: string): TableFacts {
  facts[name] ??= emptyTable();
  return facts[name];
}

/** Key columns count as NOT NULL (see sqliteSchemaFacts); names in order, so a difference reads plainly. */
function normalized(facts: SchemaFacts): SchemaFacts {
  const tables = Object.keys(facts).sort();
  return Object.fromEntries(
    tables.map((name) => {
      const table = facts[name] ?? emptyTable();
      for (const column of table.primaryKey) if (table.columns[column] !== undefined) table.columns[column].notNull = true;
      return [
        name,
        {
          columns: Object.fromEntries(Object.entries(table.columns).sort(([left], [right]) => left.localeCompare(right))),
          primaryKey: table.primaryKey,
          indexes: Object.fromEntries(Object.entries(table.indexes).sort(([left], [right]) => left.localeCompare(right))),
          uniqueConstraints: [...table.uniqueConstraints].sort(),
          foreignKeys: [...table.foreignKeys].sort(),
        },
      ];
    }),
  );
}

// --- drizzle ----------------------------------------------------------------------------------

const drizzleSqlite = new SQLiteSyncDialect();

function drizzleSql(value: SQL): string {
  return drizzleSqlite.sqlToQuery(value).sql;
}

function drizzleDefault(column: SQLiteColumn): string | null {
  // A $defaultFn default is filled in by drizzle, not by the database: there is no DEFAULT clause.
  if (!column.hasDefault || column.default === undefined) return null;
  if (is(column.default, SQL)) return canonicalDefault(drizzleSql(column.default));
  const value: unknown = column.mapToDriverValue(column.default);
  if (value === null) return null;
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
  if (typeof value === 'number' || typeof value === 'bigint') return canonicalDefault(String(value));
  if (typeof value === 'boolean') return value ? '1' : '0';
  throw new Error(`schema facts: column ${column.name} has a default drizzle maps to ${typeof value}, which has no SQL literal here`);
}

function columnNames(columns: ReadonlyArray<SQLiteColumn | SQL>): string[] {
  return columns.map((column) => (is(column, SQL) ? '<expression>' : column.name));
}

/** The facts drizzle's table definitions declare (what the store's queries assume the database holds). */
export function drizzleSchemaFacts(tables: readonly SQLiteTable[]): SchemaFacts {
  const facts: SchemaFacts = {};
  for (const definition of tables) {
    const config = getTableConfig(definition);
    const table = tableOf(facts, config.name);
    for (const column of config.columns) {
      const autoIncrement = 'autoIncrement' in column && column.autoIncrement === true;
      table.columns[column.name] = {
        type: canonicalType(DRIZZLE_TYPES, 'drizzle', column.getSQLType()),
        notNull: column.notNull,
        default: drizzleDefault(column),
        identity: autoIncrement ? 'by default' : null,
      };
      if (column.primary) table.primaryKey.push(column.name);
      if (column.isUnique) table.uniqueConstraints.push(column.name);
    }
    for (const primaryKey of config.primaryKeys) table.primaryKey.push(...primaryKey.columns.map((column) => column.name));
    for (const unique of config.uniqueConstraints) table.uniqueConstraints.push(unique.columns.map((column) => column.name).join(','));
    for (const index of config.indexes) {
      const where = index.config.where === undefined ? null : drizzleSql(index.config.where);
      table.indexes[index.config.name] = { unique: index.config.unique, columns: columnNames(index.config.columns), where: canonicalPredicate(where) };
    }
    for (const foreignKey of config.foreignKeys) {
      const reference = foreignKey.reference();
      const target = getTableConfig(reference.foreignTable).name;
      table.foreignKeys.push(`${columnNames(reference.columns).join(',')} -> ${target}(${columnNames(reference.foreignColumns).join(',')})`);
    }
  }
  return normalized(facts);
}

// --- SQLite -----------------------------------------------------------------------------------

/** A migrated SQLite database's facts, every table (the migrations' bookkeeping table included). */
export async function sqliteSchemaFacts(query: Query): Promise<SchemaFacts> {
  const facts: SchemaFacts = {};
  const columns = await query(
    `SELECT m.name AS table_name, m.sql AS table_sql, p.name AS column_name, p.type, p."notnull" AS not_null, p.dflt_value, p.pk
     FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.pk, p.cid`,
  );
  for (const row of columns) {
    const table = tableOf(facts, String(row.table_name));
    const primary = Number(row.pk) > 0;
    const name = String(row.column_name);
    // Only an INTEGER PRIMARY KEY may say AUTOINCREMENT, so the keyword in the table names that column.
    const autoIncrement = primary && /\bAUTOINCREMENT\b/i.test(String(row.table_sql));
    // SQLite (for old compatibility) lets a non-INTEGER primary key hold NULL unless declared NOT NULL;
    // PostgreSQL and drizzle make every key column NOT NULL. Keyway always writes its ids, so key
    // columns count as NOT NULL here too, and the difference is written down in docs/deployment.md.
    table.columns[name] = {
      type: canonicalType(SQLITE_TYPES, 'sqlite', String(row.type).toUpperCase()),
      notNull: Number(row.not_null) === 1,
      default: canonicalDefault(row.dflt_value === null ? null : String(row.dflt_value)),
      identity: autoIncrement ? 'by default' : null,
    };
    if (primary) table.primaryKey.push(name);
  }
  const indexes = await query(
    `SELECT m.name AS table_name, i.name AS index_name, i."unique" AS is_unique, i.origin, i.partial, x.name AS column_name,
            (SELECT s.sql FROM sqlite_master s WHERE s.type = 'index' AND s.name = i.name) AS index_sql
     FROM sqlite_master m JOIN pragma_index_list(m.name) i JOIN pragma_index_info(i.name) x
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, i.name, x.seqno`,
  );
  const uniqueKeys = new Map<string, { table: string; columns: string[] }>();
  for (const row of indexes) {
    const tableName = String(row.table_name);
    const table = tableOf(facts, tableName);
    const column = row.column_name === null ? '<expression>' : String(row.column_name);
    if (row.origin === 'u') {
      const key = `${tableName}.${String(row.index_name)}`;
      const unique = uniqueKeys.get(key) ?? { table: tableName, columns: [] };
      unique.columns.push(column);
      uniqueKeys.set(key, unique);
      continue;
    }
    if (row.origin !== 'c') continue;
    const name = String(row.index_name);
    const where = Number(row.partial) === 1 ? (/\bWHERE\b([\s\S]*)$/i.exec(String(row.index_sql))?.[1] ?? '') : null;
    const index = table.indexes[name] ?? { unique: Number(row.is_unique) === 1, columns: [], where: canonicalPredicate(where) };
    index.columns.push(column);
    table.indexes[name] = index;
  }
  for (const { table, columns: uniqueColumns } of uniqueKeys.values()) tableOf(facts, table).uniqueConstraints.push(uniqueColumns.join(','));
  const foreignKeys = await query(
    `SELECT m.name AS table_name, f.id, f."table" AS target, f."from" AS from_column, f."to" AS to_column
     FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, f.id, f.seq`,
  );
  const references = new Map<string, { table: string; target: string; from: string[]; to: string[] }>();
  for (const row of foreignKeys) {
    const key = `${String(row.table_name)}#${String(row.id)}`;
    const reference = references.get(key) ?? { table: String(row.table_name), target: String(row.target), from: [], to: [] };
    reference.from.push(String(row.from_column));
    reference.to.push(String(row.to_column));
    references.set(key, reference);
  }
  for (const reference of references.values()) {
    tableOf(facts, reference.table).foreignKeys.push(`${reference.from.join(',')} -> ${reference.target}(${reference.to.join(',')})`);
  }
  return normalized(facts);
}

// --- PostgreSQL -------------------------------------------------------------------------------

function withoutStandins(facts: SchemaFacts): SchemaFacts {
  for (const standin of POSTGRES_ROWID_STANDINS) {
    const [tableName, column] = standin.split('.');
    const table = tableName === undefined ? undefined : facts[tableName];
    if (table !== undefined && column !== undefined) delete table.columns[column];
  }
  return facts;
}

/** A migrated PostgreSQL database's facts (schema `public`), without the rowid stand-in columns. */
export async function postgresSchemaFacts(query: Query): Promise<SchemaFacts> {
  const facts: SchemaFacts = {};
  const columns = await query(
    `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default, c.is_identity, c.identity_generation
     FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position`,
  );
  for (const row of columns) {
    const table = tableOf(facts, String(row.table_name));
    const rawDefault = row.column_default === null ? null : String(row.column_default);
    const serial = rawDefault?.startsWith('nextval(') === true;
    const identity = row.is_identity === 'YES' ? String(row.identity_generation).toLowerCase() : serial ? 'by default' : null;
    table.columns[String(row.column_name)] = {
      type: canonicalType(POSTGRES_TYPES, 'postgres', String(row.data_type)),
      notNull: row.is_nullable === 'NO',
      default: serial ? null : canonicalDefault(rawDefault),
      identity: identity === 'by default' || identity === 'always' ? identity : null,
    };
  }
  const indexes = await query(
    `SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique AS is_unique, x.indisprimary AS is_primary,
            pg_get_expr(x.indpred, x.indrelid) AS predicate,
            (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), ',' ORDER BY k) FROM generate_series(1, x.indnkeyatts) AS k) AS key_columns,
            EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype = 'u') AS is_constraint
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = 'public' ORDER BY t.relname, i.relname`,
  );
  for (const row of indexes) {
    const table = tableOf(facts, String(row.table_name));
    const keyColumns = String(row.key_columns)
      .split(',')
      .map((column) => (/^"?[a-z_][a-z0-9_]*"?$/i.test(column) ? column.replaceAll('"', '') : '<expression>'));
    if (row.is_primary === true) table.primaryKey = keyColumns;
    else if (row.is_constraint === true) table.uniqueConstraints.push(keyColumns.join(','));
    else {
      const predicate = row.predicate === null ? null : String(row.predicate);
      table.indexes[String(row.index_name)] = { unique: row.is_unique === true, columns: keyColumns, where: canonicalPredicate(predicate) };
    }
  }
  const foreignKeys = await query(
    `SELECT t.relname AS table_name, r.relname AS target,
            (SELECT string_agg(a.attname, ',' ORDER BY k.position) FROM unnest(c.conkey) WITH ORDINALITY AS k(number, position)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.number) AS from_columns,
            (SELECT string_agg(a.attname, ',' ORDER BY k.position) FROM unnest(c.confkey) WITH ORDINALITY AS k(number, position)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.number) AS to_columns
     FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE c.contype = 'f' AND n.nspname = 'public'`,
  );
  for (const row of foreignKeys) {
    tableOf(facts, String(row.table_name)).foreignKeys.push(`${String(row.from_columns)} -> ${String(row.target)}(${String(row.to_columns)})`);
  }
  return normalized(withoutStandins(facts));
}

/** The tables `declared` names, as `facts` holds them (undefined for one it lacks): a migrated database against drizzle's tables. */
export function onlyTables(facts: SchemaFacts, declared: SchemaFacts): Record<string, TableFacts | undefined> {
  return Object.fromEntries(Object.keys(declared).map((name) => [name, facts[name]]));
}
