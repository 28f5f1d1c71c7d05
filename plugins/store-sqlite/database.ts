import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import { drizzle as drizzleBunSqlite } from 'drizzle-orm/bun-sqlite';
import type { Migration, MigrationReport } from '../../core/spec/store.ts';
import { MIGRATIONS } from './migrations.ts';
import { schema } from './schema.ts';

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
   * where drizzle's builder costs more per row than SQLite itself.
   */
  insertMany(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Promise<void>;
  close(): void;
}

export class StorageError extends Error {
  override name = 'StorageError';
}

/**
 * Opens the database named by KEYWAY_DATABASE_URL. `file:` uses Bun's built-in SQLite (no native
 * module to ship, so the single binary runs anywhere); `libsql://` and `http(s)://` use the libSQL
 * HTTP client, loaded only when asked for.
 */
export async function openStorage(url: string): Promise<Storage> {
  if (url.startsWith('file:') || url === ':memory:') return openFile(url);
  if (/^(libsql|https?|wss?):\/\//.test(url)) return openLibsql(url);
  throw new StorageError('KEYWAY_DATABASE_URL is not a file: or libsql:// URL.');
}

function insertStatement(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

function openFile(url: string): Storage {
  const path = url === ':memory:' || url === 'file::memory:' ? ':memory:' : resolve(url.slice('file:'.length).split('?')[0] as string);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { create: true });
  // WAL lets the usage writer and management reads proceed without blocking each other.
  sqlite.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
  const db = drizzleBunSqlite(sqlite, { schema }) as unknown as KeywayDatabase;
  return {
    db,
    driver: 'bun-sqlite',
    execute: async (statement, parameters) => {
      if (parameters === undefined || parameters.length === 0) sqlite.exec(statement);
      else sqlite.query(statement).run(...(parameters as Array<string | number | null>));
    },
    queryRows: async (statement, parameters) =>
      sqlite.query(statement).all(...((parameters ?? []) as Array<string | number | null>)) as Array<Record<string, unknown>>,
    executeAtomically: async (statements) => {
      sqlite.transaction(() => {
        for (const statement of statements) sqlite.exec(statement);
      })();
    },
    insertMany: async (table, columns, rows) => {
      // bun:sqlite caches prepared statements by text: the statement is compiled once.
      const statement = sqlite.query(insertStatement(table, columns));
      sqlite.transaction(() => {
        for (const row of rows) statement.run(...(row as Array<string | number | null>));
      })();
    },
    close: () => sqlite.close(),
  };
}

async function openLibsql(url: string): Promise<Storage> {
  const { createClient } = await import('@libsql/client/web');
  const { drizzle } = await import('drizzle-orm/libsql/web');
  const parsed = new URL(url);
  const authToken = parsed.searchParams.get('authToken') ?? process.env.KEYWAY_DATABASE_AUTH_TOKEN;
  parsed.searchParams.delete('authToken');
  const client = createClient(authToken ? { url: parsed.toString(), authToken } : { url: parsed.toString() });
  const db = drizzle(client, { schema }) as unknown as KeywayDatabase;
  return {
    db,
    driver: 'libsql',
    execute: async (statement, parameters) => {
      await client.execute({ sql: statement, args: (parameters ?? []) as Array<string | number | null> });
    },
    queryRows: async (statement, parameters) =>
      (await client.execute({ sql: statement, args: (parameters ?? []) as Array<string | number | null> })).rows as unknown as Array<Record<string, unknown>>,
    executeAtomically: async (statements) => {
      await client.batch(statements, 'write');
    },
    insertMany: async (table, columns, rows) => {
      const sql = insertStatement(table, columns);
      await client.batch(
        rows.map((row) => ({ sql, args: row as Array<string | number | null> })),
        'write',
      );
    },
    close: () => client.close(),
  };
}

/**
 * Applies pending migrations in order, each recorded in `keyway_migrations`: the core's first, then
 * each plugin's, namespaced `<plugin>:<id>` so two plugins cannot collide.
 */
export async function migrate(storage: Storage, plugins: ReadonlyArray<{ plugin: string; migrations: readonly Migration[] }> = []): Promise<MigrationReport> {
  await storage.execute('CREATE TABLE IF NOT EXISTS keyway_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const rows = await storage.queryRows('SELECT id FROM keyway_migrations');
  const done = new Set(rows.map((row) => String(row.id)));
  const applied: string[] = [];
  const all = [
    ...MIGRATIONS.map((migration) => ({ id: migration.id, statements: migration.statements })),
    ...plugins.flatMap(({ plugin, migrations }) => migrations.map((migration) => ({ id: `${plugin}:${migration.id}`, statements: migration.statements }))),
  ];
  for (const migration of all) {
    if (done.has(migration.id)) continue;
    try {
      await storage.executeAtomically([
        ...migration.statements,
        `INSERT INTO keyway_migrations (id, applied_at) VALUES ('${migration.id.replaceAll("'", "''")}', '${new Date().toISOString()}')`,
      ]);
    } catch (error) {
      throw new StorageError(`Migration ${migration.id} failed: ${(error as Error).message}`);
    }
    applied.push(migration.id);
  }
  return { applied, alreadyApplied: done.size, latest: MIGRATIONS.at(-1)?.id };
}
