import { Database } from 'bun:sqlite';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { drizzle as drizzleBunSqlite } from 'drizzle-orm/bun-sqlite';
import type { Client } from '@libsql/client';
import { insertBatch } from './batch-insert.ts';
import { upsertStatement, usageFolder } from './fold-upsert.ts';
import { CONNECTION_PRAGMAS } from './connection-settings.ts';
import { createUsageWriterClient, usageWriterBatchScheduled, usageWriterMode, type UsageWriterOptions } from './usage-writer-client.ts';
import type { Logger } from '../../core/logger.ts';
import type { Migration, MigrationReport } from '../../core/spec/store.ts';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { MIGRATIONS } from './migrations.ts';
import { createPrivately, readableByOthers } from './file-modes.ts';
import { schema } from './schema.ts';
import { StorageError } from './storage-error.ts';
import type { KeywayDatabase, Storage } from './storage.ts';
import { fileReader, libsqlReader, memoryReader } from './consistent-read.ts';

export type { KeywayDatabase, Storage } from './storage.ts';

export { StorageError };

/**
 * Opens the database named by KEYWAY_DATABASE_URL. `file:` uses Bun's built-in SQLite (no native
 * module to ship, so the single binary runs anywhere); `libsql://` and `http(s)://` use the libSQL
 * HTTP client, loaded only when asked for. `logger` (the plugin's) hears that the usage writer thread started.
 */
export async function openStorage(url: string, env: Readonly<Record<string, string | undefined>> = {}, logger?: Logger): Promise<Storage> {
  if (url.startsWith('file:') || url === ':memory:') {
    // One warning for the gateway, not one per worker of KEYWAY_WORKERS.
    const speaks = env.KEYWAY_WORKER_INDEX === undefined || env.KEYWAY_WORKER_INDEX === '1';
    return openFile(url, usageWriterMode(env), { batchSchedule: usageWriterBatchScheduled(env), logger }, speaks ? logger : undefined);
  }
  if (/^(libsql|https?|wss?):\/\//.test(url)) return openLibsql(url);
  throw new StorageError('KEYWAY_DATABASE_URL is not a file: or libsql:// URL.');
}

function insertStatement(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

function errorCode(error: unknown): string {
  return String((error as { code?: unknown }).code ?? 'unknown error');
}

const UNWRITABLE = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * Before SQLite sees the path: a folder that cannot be made or written to, or a path that is a
 * folder, each get a sentence naming the path, not SQLite's "unable to open database file".
 */
function checkDatabasePath(path: string, logger: Logger | undefined): void {
  const folder = dirname(path);
  try {
    // Private when Keyway makes it (docs/security.md, "Files Keyway writes"); an existing one is left as it is.
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = errorCode(error);
    const why = UNWRITABLE.has(code)
      ? `could not be written (${code})`
      : code === 'EEXIST'
        ? 'is a file, not a folder'
        : code === 'ENOTDIR'
          ? `could not be created: part of its path is a file (${code})`
          : `could not be created (${code})`;
    throw new StorageError(`The database folder ${folder} (KEYWAY_DATABASE_URL) ${why}.`);
  }
  let exists = true;
  try {
    if (statSync(path).isDirectory()) throw new StorageError(`KEYWAY_DATABASE_URL names ${path}, which is a folder, not a database file.`);
  } catch (error) {
    if (error instanceof StorageError) throw error;
    if (errorCode(error) !== 'ENOENT') throw new StorageError(`The database file ${path} could not be read (${errorCode(error)}).`);
    exists = false;
  }
  // SQLite writes its WAL and shared-memory files beside the database, so the folder must be writable too.
  for (const [target, label] of [...(exists ? [[path, 'database file']] : []), [folder, 'database folder']] as const) {
    try {
      accessSync(target, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new StorageError(`The ${label} ${target} could not be written (${errorCode(error)}); Keyway needs to write there.`);
    }
  }
  if (!exists) {
    // 0600 from the first byte: SQLite gives the -wal and -shm files it creates the database file's mode.
    try {
      createPrivately(path);
    } catch (error) {
      throw new StorageError(`The database file ${path} could not be created (${errorCode(error)}).`);
    }
    return;
  }
  const readable = readableByOthers(path);
  if (readable.length > 0)
    logger?.warn(
      { files: readable },
      `SECURITY WARNING: the database ${path} can be read by its group or other users (${readable.map((file) => `${file.path} ${file.mode}`).join(', ')}); it holds member e-mails, client addresses and usage. Unless that is meant, run: chmod 600 ${readable.map((file) => file.path).join(' ')}`,
    );
}

/** SQLite's own error, restated for an operator: which file, and what is wrong with it. */
function fileOpenError(error: unknown, path: string): StorageError {
  const code = errorCode(error);
  const detail = (error as Error).message;
  if (code === 'SQLITE_NOTADB') return new StorageError(`The database file ${path} is not a SQLite database (${detail}).`);
  if (code === 'SQLITE_CORRUPT') return new StorageError(`The database file ${path} is damaged (${detail}); restore it from a backup.`);
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') return new StorageError(`The database file ${path} could not be written (${detail}).`);
  if (code.startsWith('SQLITE_CANTOPEN')) return new StorageError(`The database file ${path} could not be opened (${detail}).`);
  if (code === 'SQLITE_FULL') return new StorageError(`The database file ${path} could not be written: the disk is full.`);
  return new StorageError(`The database file ${path} could not be opened (${code}: ${detail}).`);
}

/**
 * `PRAGMA quick_check`: a pass over every page, without the index cross-checks of integrity_check,
 * so a damaged file is refused at start instead of failing requests one by one later.
 */
function checkIntegrity(sqlite: Database, path: string): void {
  const rows = sqlite.query('PRAGMA quick_check(5)').all() as Array<Record<string, unknown>>;
  const problems = rows
    .flatMap((row) => String(Object.values(row)[0] ?? '').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'ok' && !line.startsWith('***'));
  if (problems.length > 0) {
    throw new StorageError(`The database file ${path} failed its integrity check (PRAGMA quick_check: ${problems[0]}); restore it from a backup.`);
  }
}

/** Opens and vets the file; every refusal is one StorageError naming the file. */
function openSqliteFile(path: string, logger: Logger | undefined): Database {
  if (path !== ':memory:') checkDatabasePath(path, logger);
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(path, { create: true });
    // WAL lets the usage writer and management reads proceed without blocking each other.
    sqlite.exec(`${CONNECTION_PRAGMAS} PRAGMA foreign_keys = ON;`);
    // Freed and overwritten content is zeroed, so a wiped provider-key ciphertext leaves no copy in the file (docs/key-lifecycle.md).
    sqlite.exec('PRAGMA secure_delete = ON;');
    if (path !== ':memory:') checkIntegrity(sqlite, path);
    return sqlite;
  } catch (error) {
    sqlite?.close();
    throw error instanceof StorageError ? error : fileOpenError(error, path);
  }
}

/**
 * `file:<path>?mode=ro` (SQLite's own URI parameter): the file as it is, for a look at an earlier
 * installation (core/earlier-installation.ts, the copy-store command). Nothing is written, checked or
 * created: no folder, no pragma, no integrity pass (a large file would take seconds), no writer thread.
 */
function openReadOnly(path: string): Database {
  try {
    return new Database(path, { readonly: true });
  } catch (error) {
    throw fileOpenError(error, path);
  }
}

/** `warnings`: the logger that hears about a database file others may read (worker 1's, or a lone process's). */
function openFile(url: string, writerMode: 'worker' | 'inline', writerOptions: UsageWriterOptions, warnings?: Logger): Storage {
  const path = url === ':memory:' || url === 'file::memory:' ? ':memory:' : resolve(url.slice('file:'.length).split('?')[0] as string);
  const readOnly = path !== ':memory:' && new URLSearchParams(url.split('?')[1] ?? '').get('mode') === 'ro';
  const sqlite = readOnly ? openReadOnly(path) : openSqliteFile(path, warnings);
  const db = drizzleBunSqlite(sqlite, { schema }) as unknown as KeywayDatabase;
  const reader = path === ':memory:' ? undefined : fileReader(path, readOnly);
  const insertInline = batchInserter(sqlite);
  // An in-memory database is private to its connection: its usage stays on this thread.
  const writer = writerMode === 'worker' && path !== ':memory:' && !readOnly ? createUsageWriterClient(path, insertInline, writerOptions) : undefined;
  // Typed by the interface, so their parameters are written once, there.
  const insertUsageText: Storage['insertUsageText'] =
    writer === undefined
      ? undefined
      : (table, columns, text, count, after, folds) => writer.insertJournalText(insertStatement(table, columns), text, count, after, folds, columns);
  const insertUsageFile: Storage['insertUsageFile'] =
    writer === undefined
      ? undefined
      : (table, columns, range, count, after, folds) => writer.insertJournalFile(insertStatement(table, columns), range, count, after, folds, columns);
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
    insertMany: async (table, columns, rows, after = [], folds = []) => {
      if (writer !== undefined) return writer.insert(insertStatement(table, columns), rows, after, folds, columns);
      insertInline(insertStatement(table, columns), rows, after, folds, columns);
    },
    ...(insertUsageText === undefined ? {} : { insertUsageText }),
    ...(insertUsageFile === undefined ? {} : { insertUsageFile }),
    runEach: async (text, rows) => {
      const statement = sqlite.query(text);
      return sqlite.transaction(() => rows.map((row) => statement.run(...(row as Array<string | number | null>)).changes))();
    },
    readConsistent: reader?.readConsistent ?? memoryReader(sqlite),
    ...(reader === undefined ? {} : { readsSettled: reader.readsSettled }),
    close: () => {
      // Before the writer thread is terminated: a checkpoint racing its teardown was answered busy at once (seen in tests).
      if (path !== ':memory:' && !readOnly) checkpointOnClose(sqlite);
      writer?.close();
      sqlite.close();
    },
  };
}

/**
 * The last connection to close checkpoints the WAL and removes it, but the writer thread's connection
 * is not closed (its thread is terminated), so this one is not the last: without this the WAL outlived
 * every clean stop with the page images it held (tens of MB, QA17; earlier versions of rows, such as
 * ciphertexts a master-key rotation replaced). The usage queue has drained by now, so the writer holds
 * no transaction; a checkpoint that cannot finish (another worker busy) leaves the WAL to the next one.
 */
function checkpointOnClose(sqlite: Database): void {
  try {
    sqlite.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } catch {
    // A stop goes on: the WAL is still valid and the next start reads it.
  }
}

/** One usage batch and its roll-ups, on this thread: one transaction. */
function batchInserter(sqlite: Database) {
  return (sql: string, rows: ReadonlyArray<readonly unknown[]>, after: readonly string[], folds: readonly UsageFoldTable[], columns: readonly string[]): void =>
    insertBatch(sqlite, sql, rows, after, folds.length === 0 ? undefined : usageFolder(folds, columns));
}

/** The libSQL HTTP client for a server URL, its token from `?authToken=` or KEYWAY_DATABASE_AUTH_TOKEN (the store's and the instance lease's). */
export async function libsqlClient(url: string) {
  const { createClient } = await import('@libsql/client/web');
  const parsed = new URL(url);
  const authToken = parsed.searchParams.get('authToken') ?? process.env.KEYWAY_DATABASE_AUTH_TOKEN;
  parsed.searchParams.delete('authToken');
  return createClient(authToken ? { url: parsed.toString(), authToken } : { url: parsed.toString() });
}

async function openLibsql(url: string): Promise<Storage> {
  const { drizzle } = await import('drizzle-orm/libsql/web');
  return libsqlStorage(await libsqlClient(url), drizzle);
}

/** The storage over a libSQL client; exported so tests can give it the native client on a local file. */
export function libsqlStorage(client: Client, drizzle: (client: Client, config: { schema: typeof schema }) => unknown): Storage {
  const db = drizzle(client, { schema }) as KeywayDatabase;
  return {
    db,
    driver: 'libsql',
    readConsistent: libsqlReader(client, drizzle),
    execute: async (statement, parameters) => {
      await client.execute({ sql: statement, args: (parameters ?? []) as Array<string | number | null> });
    },
    queryRows: async (statement, parameters) =>
      (await client.execute({ sql: statement, args: (parameters ?? []) as Array<string | number | null> })).rows as unknown as Array<Record<string, unknown>>,
    executeAtomically: async (statements) => {
      await client.batch(statements, 'write');
    },
    insertMany: async (table, columns, rows, after = [], folds = []) => {
      const sql = insertStatement(table, columns);
      // One upsert per bucket: libsql is reached over the network, where a batch is one round trip either way.
      const upserts = (folds.length === 0 || rows.length === 0 ? [] : usageFolder(folds, columns)(rows)).flatMap(({ table: folded, rows: buckets }) =>
        buckets.map((bucket) => ({ sql: upsertStatement(folded, 1), args: bucket })),
      );
      if (after.length === 0) {
        await client.batch([...rows.map((row) => ({ sql, args: row as Array<string | number | null> })), ...upserts], 'write');
        return;
      }
      // The follow-up statements need the batch's ids: an interactive write transaction.
      const transaction = await client.transaction('write');
      try {
        let first: bigint | undefined;
        let last: bigint | undefined;
        for (const row of rows) {
          last = (await transaction.execute({ sql, args: row as Array<string | number | null> })).lastInsertRowid;
          first ??= last;
        }
        for (const upsert of upserts) await transaction.execute(upsert);
        if (first !== undefined && last !== undefined)
          for (const text of after) await transaction.execute({ sql: text, args: text.includes('?') ? [first, last] : [] });
        await transaction.commit();
      } finally {
        transaction.close();
      }
    },
    runEach: async (sql, rows) => {
      const results = await client.batch(
        rows.map((row) => ({ sql, args: row as Array<string | number | null> })),
        'write',
      );
      return results.map((result) => result.rowsAffected);
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
