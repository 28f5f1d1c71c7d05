// `keyway copy-store --from sqlite:<path> [--to <postgres url>]`: moves an embedded SQLite
// installation into an empty PostgreSQL database (docs/deployment.md, "Moving from SQLite to
// PostgreSQL"). Part of the composition root: it loads the plugins as a start does, for their
// PostgreSQL migrations and the master key, and names the two built-in stores it copies between.

import { Database } from 'bun:sqlite';
import { SQL } from 'bun';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { loadConfig } from '../core/config.ts';
import { MasterKeyCheckError, verifyKeyChecksBeforeMigrations } from '../core/credentials/key-check.ts';
import { describeContents, embeddedInstallation } from '../core/earlier-installation.ts';
import { createLogger } from '../core/logger.ts';
import { importPluginModules, loadPlugins, type PluginSet } from '../core/registry.ts';
import { createServices } from '../core/services.ts';
import { SettingError } from '../core/spec/settings.ts';
import { builtinPlugins } from './builtin.ts';
import { copySqliteIntoPostgres, CopyError, sourceMigrations, targetTablesWithRows } from './store-postgres/copy-from-sqlite.ts';
import { postgresStoreDriver } from './store-postgres/index.ts';
import { MIGRATIONS as SQLITE_CORE_MIGRATIONS } from './store-sqlite/migrations.ts';

const USAGE = `Usage: keyway copy-store --from sqlite:<path of keyway.db> [--to <postgres://… URL>] [--batch-size <rows>]

Copies an embedded SQLite installation (accounts, keys, sealed provider keys, teams, policies, usage rows
and roll-ups, every plugin's tables) into an empty PostgreSQL database, migrated first. Stop every Keyway
that uses the SQLite file before. --to defaults to KEYWAY_DATABASE_URL (keeping the password off the
command line). The master key must be the one the SQLite installation used (KEYWAY_MASTER_KEY, or the
master.key file in KEYWAY_DATA_DIR). See docs/deployment.md, "Moving from SQLite to PostgreSQL".
`;

const DEFAULT_BATCH_SIZE = 5_000;

interface CopyArguments {
  from: string;
  to: string;
  batchSize: number;
}

export class CopyStoreUsageError extends Error {
  override name = 'CopyStoreUsageError';
}

/** `--name value` and `--name=value`; every option once. */
export function parseCopyArguments(args: readonly string[], env: Readonly<Record<string, string | undefined>>): CopyArguments | 'help' {
  const options = new Map<string, string>();
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    const [name, inline] = arg.split(/=(.*)/s) as [string, string | undefined];
    if (!['--from', '--to', '--batch-size'].includes(name)) throw new CopyStoreUsageError(`unknown argument '${arg.slice(0, 40)}'`);
    const value = inline ?? args[++index];
    if (value === undefined || value === '') throw new CopyStoreUsageError(`${name} needs a value`);
    if (options.has(name)) throw new CopyStoreUsageError(`${name} is given twice`);
    options.set(name, value);
  }
  const from = options.get('--from');
  if (from === undefined) throw new CopyStoreUsageError('--from sqlite:<path of keyway.db> is required');
  const path = /^(sqlite|file):/.test(from) ? from.replace(/^(sqlite|file):(\/\/)?/, '').split('?')[0] : from;
  if (path === undefined || path === '' || path === ':memory:') throw new CopyStoreUsageError('--from must name a SQLite file');
  const to = options.get('--to') ?? env.KEYWAY_DATABASE_URL ?? '';
  if (!/^postgres(ql)?:\/\//.test(to)) {
    throw new CopyStoreUsageError(
      options.has('--to') ? '--to must be a postgres:// or postgresql:// URL' : '--to is missing: give a postgres:// URL, or set KEYWAY_DATABASE_URL to one',
    );
  }
  const batchSize = Number(options.get('--batch-size') ?? DEFAULT_BATCH_SIZE);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)
    throw new CopyStoreUsageError('--batch-size must be a whole number from 1 to 100000');
  return { from: resolve(path), to, batchSize };
}

/** The ids a SQLite store of this version, with these plugins, records: the source must hold exactly these. */
function expectedSqliteMigrations(plugins: PluginSet): Set<string> {
  const ids = new Set(SQLITE_CORE_MIGRATIONS.map((migration) => migration.id));
  for (const { plugin, dialect, migrations } of plugins.migrations)
    if (dialect === 'sqlite') for (const migration of migrations) ids.add(`${plugin}:${migration.id}`);
  return ids;
}

function refuseMismatchedMigrations(source: Database, expected: ReadonlySet<string>, path: string): void {
  const applied = sourceMigrations(source);
  const missing = [...expected].filter((id) => !applied.has(id));
  const unknown = [...applied.keys()].filter((id) => !expected.has(id));
  if (missing.length > 0) {
    throw new CopyError(
      `${path} was last opened by an older Keyway: it lacks the migrations ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''}. ` +
        'Start this Keyway on it once (KEYWAY_DATABASE_URL unset, or file:<path>), so it migrates, stop it, and copy again.',
    );
  }
  if (unknown.length > 0) {
    throw new CopyError(
      `${path} holds migrations this Keyway does not know (${unknown.slice(0, 5).join(', ')}): it was written by a newer Keyway, or with plugins ` +
        'not loaded now (KEYWAY_PLUGINS). Copy with the same version and plugins.',
    );
  }
}

/** Usage rows a process left in the journal beside the source are not in the file yet. */
function journalWarning(path: string, dataDirectory: string): string | undefined {
  const folders = [...new Set([join(dirname(path), 'usage-journal'), join(dataDirectory, 'usage-journal')])];
  const files = folders.flatMap((folder) => (existsSync(folder) ? readdirSync(folder).filter((name) => name.endsWith('.jsonl')) : []));
  if (files.length === 0) return undefined;
  return (
    `warning: ${files.length} usage journal file(s) in ${folders.join(' or ')} hold usage rows not yet in ${path}. A Keyway started on this data ` +
    'directory writes them into its database (now PostgreSQL) at start; to have them in the SQLite file first, start Keyway on it once and stop it.'
  );
}

/** Runs the command; answers the exit code. Output goes to `out`, problems to `error`. */
export async function copyStore(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
  error: (line: string) => void,
): Promise<number> {
  let parsed: CopyArguments | 'help';
  try {
    parsed = parseCopyArguments(args, env);
  } catch (problem) {
    error(`keyway copy-store: ${(problem as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    out(USAGE);
    return 0;
  }
  const { from, to, batchSize } = parsed;
  if (!existsSync(from) || !statSync(from).isFile()) {
    error(`keyway copy-store: ${from} does not exist or is not a file.`);
    return 1;
  }
  let source: Database | undefined;
  let target: SQL | undefined;
  try {
    // The target's URL as the start would see it: crypto-local then never generates a key for it.
    const config = loadConfig({ ...env, KEYWAY_DATABASE_URL: to });
    const logger = createLogger(env.KEYWAY_LOG_LEVEL ?? 'warn', { write: (line: string) => void error(line.trimEnd()) } as never);
    const { services } = createServices({
      logger,
      fetch,
      env: config.env,
      dataDirectory: config.dataDirectory,
      clock: systemClock,
      maxBodyBytes: config.maxBodyBytes,
      maxJsonDepth: config.maxJsonDepth,
      bodyTimeoutMs: config.bodyTimeoutMs,
    });
    const external = await importPluginModules(config.pluginPaths);
    const plugins = await loadPlugins([...builtinPlugins(), ...external], {
      logger,
      fetch,
      env: config.env,
      dataDirectory: config.dataDirectory,
      config: config.pluginConfig,
      services,
    });
    const contents = await embeddedInstallation(plugins, from, config);
    if (contents === undefined) throw new CopyError(`${from} holds no Keyway installation (no account): nothing to copy.`);
    out(`source: ${from} (${describeContents(contents)})`);

    source = new Database(from, { readonly: true, safeIntegers: true });
    refuseMismatchedMigrations(source, expectedSqliteMigrations(plugins), from);
    // The copied secrets stay sealed under the source's master key: the target is useless without it.
    const sqliteStore = await plugins.storeDrivers.find((entry) => entry.value.accepts(`file:${from}?mode=ro`))?.value.open(`file:${from}?mode=ro`, config);
    try {
      if (sqliteStore !== undefined) await verifyKeyChecksBeforeMigrations(sqliteStore, plugins.cryptoBackends);
    } catch (problem) {
      if (!(problem instanceof MasterKeyCheckError)) throw problem;
      const versions = problem.failures.map((failure) => `v${failure.keyVersion}${failure.source === undefined ? '' : ` (from ${failure.source})`}`);
      throw new CopyError(
        `Wrong master key: master key ${versions.join(', ')} does not open ${from}'s key check, so its sealed provider keys would be unreadable ` +
          'after the copy. Nothing was copied. Set the master key that installation used (KEYWAY_MASTER_KEY, or its master.key in KEYWAY_DATA_DIR).',
      );
    } finally {
      sqliteStore?.close();
    }

    target = new SQL(to, { max: 1, bigint: true, connectionTimeout: 10 });
    const host = new URL(to).host;
    const filled = await targetTablesWithRows(target);
    if (filled.length > 0) {
      throw new CopyError(
        `the PostgreSQL database at ${host} is not empty (${filled.slice(0, 8).join(', ')}${filled.length > 8 ? '…' : ''} hold rows). ` +
          'copy-store writes only into an empty database, so nothing there is overwritten or mixed: create a new database and copy into it.',
      );
    }
    const pending = plugins.migrations.filter((entry) => entry.dialect === 'postgres');
    const withoutPostgres = [...new Set(plugins.migrations.map((entry) => entry.plugin))].filter((plugin) => !pending.some((entry) => entry.plugin === plugin));
    if (withoutPostgres.length > 0) throw new CopyError(`${withoutPostgres.join(', ')} ship no PostgreSQL migrations: their tables cannot be made there.`);
    const store = await postgresStoreDriver.open(to, config);
    try {
      const report = await store.migrate(pending);
      out(`target: PostgreSQL at ${host}, ${report.applied.length} migration(s) applied`);
    } finally {
      store.close();
    }

    const started = Date.now();
    const copied = await copySqliteIntoPostgres({ source, target, batchSize, progress: out });
    for (const { table, rows } of copied) if (rows > 0) out(`  ${table}: ${rows.toLocaleString('en-US')} row(s)`);
    const total = copied.reduce((sum, { rows }) => sum + rows, 0);
    out(
      `copied ${total.toLocaleString('en-US')} rows in ${copied.length} tables in ${((Date.now() - started) / 1000).toFixed(1)} s; every table's row count matches.`,
    );
    const warning = journalWarning(from, config.dataDirectory);
    if (warning !== undefined) out(warning);
    out('Start Keyway with KEYWAY_DATABASE_URL set to this database and the same master key; the SQLite file is left as it was.');
    return 0;
  } catch (problem) {
    const known = problem instanceof CopyError || problem instanceof SettingError || (problem instanceof Error && /master key|KEYWAY_/i.test(problem.message));
    error(`keyway copy-store: ${problem instanceof Error ? (known ? problem.message : (problem.stack ?? problem.message)) : String(problem)}`);
    return 1;
  } finally {
    source?.close();
    await target?.close().catch(() => undefined);
  }
}
