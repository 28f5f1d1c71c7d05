// The Store contract over SQLite (Bun's built-in driver, or libSQL over HTTP): domain records in,
// domain records out; drizzle's row types never leave this folder.

import { and, eq, isNull } from 'drizzle-orm';
import type { KeyOwner, PrincipalRole, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type {
  AccountRecord,
  UsageRollup,
  GatewayKeyRecord,
  JournalRange,
  Migration,
  MigrationReport,
  NewGatewayKey,
  NewProviderKey,
  ProviderKeyReseal,
  SealedProviderKey,
  ProviderKeySecret,
  Store,
  StoredProviderKey,
  UsageKey,
  UsageRecord,
  UsageSummaryFilter,
  UsageSummaryRow,
} from '../../core/spec/store.ts';
import { migrate, type KeywayDatabase, type Storage } from './database.ts';
import { rowsOfRange, USAGE_COLUMN_NAMES, usageValues } from './usage-values.ts';
import { WIPED_BACKEND } from '../../core/spec/key-source.ts';
import { usageKeyWindows } from '../../core/spec/usage-keys.ts';
import type { UsageFold, UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { usageFolder } from './fold-upsert.ts';
import { CONFIG_CHANGE_VERSION, RECORD_CONFIG_CHANGE } from './config-changes.ts';
import { accounts, gatewayKeys, platformSettings, providerKeys, usageRecords } from './schema.ts';

type AccountRow = typeof accounts.$inferSelect;
type GatewayKeyRow = typeof gatewayKeys.$inferSelect;
type ProviderKeyRow = typeof providerKeys.$inferSelect;
type UsageRow = typeof usageRecords.$inferSelect;

const now = (): string => new Date().toISOString();

/** SQLite's busy and locked codes (extended ones too), and the socket errors of a libSQL server gone away. */
const UNAVAILABLE_CODE = /^(SQLITE_BUSY|SQLITE_LOCKED|ECONNREFUSED$|ECONNRESET$|ETIMEDOUT$|EHOSTUNREACH$|ENETUNREACH$)/;

/** A busy WAL's checkpoint is asked again this many times, waiting this long times the attempt between them. */
const CHECKPOINT_ATTEMPTS = 5;
const CHECKPOINT_RETRY_MS = 50;
/** How long a checkpoint attempt waits for this process's consistent read to end (a snapshot load takes milliseconds). */
const CHECKPOINT_READ_WAIT_MS = 1_000;

/** Swallows the checkpoint's busy error (SQLITE_BUSY) only; anything else is still thrown. */
function unlessBusy(error: unknown): void {
  if ((error as { code?: unknown } | null)?.code !== 'SQLITE_BUSY') throw error;
}

function parseJsonObject(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const toAccount = (row: AccountRow): AccountRecord => ({ id: row.id, name: row.name, createdAt: row.createdAt, settings: parseJsonObject(row.settings) });

const toGatewayKey = (row: GatewayKeyRow): GatewayKeyRecord => ({
  ...row,
  role: row.role as PrincipalRole,
  byokAccess: row.byokAccess === 1,
  settings: parseJsonObject(row.settings),
});

/** `duplicate_of` is the schema's own bookkeeping (migration 0013), not part of the record. */
const toProviderKey = ({ duplicateOf: _duplicateOf, ...row }: ProviderKeyRow): StoredProviderKey => ({
  ...row,
  owner: row.owner as KeyOwner,
  settings: parseJsonObject(row.settings) as ProviderKeySettings,
});

function toUsage(row: UsageRow): UsageRecord {
  const { id: _id, unpriced, cacheWrite1hTokens, ...rest } = row;
  return {
    ...rest,
    costUsd: unpriced === 1 ? null : row.costUsd,
    cacheWrite1hTokens,
    byok: row.byok === 1,
    streamed: row.streamed === 1,
    usageEstimated: row.usageEstimated === 1,
    audited: row.audited === 1,
  };
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite';
  private readonly db: KeywayDatabase;
  private usageRollupStatements: readonly string[] = [];
  private usageFoldTables: readonly UsageFoldTable[] = [];

  constructor(private readonly storage: Storage) {
    this.db = storage.db;
  }

  get driver(): string {
    return this.storage.driver;
  }

  async appendRows(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Promise<void> {
    if (rows.length === 0) return;
    if (!/^[a-z_][a-z0-9_]*$/.test(table) || columns.some((column) => !/^[a-z_][a-z0-9_]*$/.test(column))) {
      throw new Error(`appendRows: '${table}' and its columns must be plain SQL identifiers`);
    }
    await this.storage.insertMany(table, columns, rows);
  }

  setUsageRollups(rollups: readonly UsageRollup[]): void {
    this.usageRollupStatements = rollups.flatMap((rollup) => rollup.statements);
  }

  /** Compiled here first: a fold that reads a column usage_records lacks stops the start, not a batch. */
  setUsageFolds(folds: readonly UsageFold[]): void {
    const tables = folds.flatMap((fold) => fold.tables);
    usageFolder(tables, USAGE_COLUMN_NAMES);
    this.usageFoldTables = tables;
  }

  migrate(plugins: ReadonlyArray<{ plugin: string; migrations: readonly Migration[] }>): Promise<MigrationReport> {
    return migrate(this.storage, plugins);
  }

  async ping(): Promise<void> {
    await this.storage.queryRows('SELECT 1');
  }

  /**
   * SQLite busy or locked past its busy_timeout (another writer held the file), or a libSQL server
   * that cannot be reached: a retry a little later may succeed (core/storage-availability.ts).
   */
  isUnavailable(error: unknown): boolean {
    let current: unknown = error;
    for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string' && UNAVAILABLE_CODE.test(code)) return true;
      current = (current as { cause?: unknown }).cause;
    }
    return false;
  }

  close(): void {
    this.storage.close();
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return (await this.db.select().from(accounts).all()).map(toAccount);
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const row = (await this.db.select().from(accounts).where(eq(accounts.id, id)).all())[0];
    return row === undefined ? undefined : toAccount(row);
  }

  async insertAccount(id: string, name: string): Promise<AccountRecord> {
    const row: AccountRow = { id, name, createdAt: now(), settings: '{}' };
    await this.db.insert(accounts).values(row).run();
    return toAccount(row);
  }

  async updateAccountSettings(id: string, settings: Record<string, unknown>): Promise<void> {
    await this.db
      .update(accounts)
      .set({ settings: JSON.stringify(settings) })
      .where(eq(accounts.id, id))
      .run();
  }

  async listActiveGatewayKeys(): Promise<GatewayKeyRecord[]> {
    return (await this.db.select().from(gatewayKeys).where(isNull(gatewayKeys.revokedAt)).all()).map(toGatewayKey);
  }

  async countGatewayKeys(role: PrincipalRole): Promise<number> {
    return (
      await this.db
        .select({ id: gatewayKeys.id })
        .from(gatewayKeys)
        .where(and(eq(gatewayKeys.role, role), isNull(gatewayKeys.revokedAt)))
        .all()
    ).length;
  }

  async insertGatewayKey(key: NewGatewayKey): Promise<GatewayKeyRecord> {
    const row: GatewayKeyRow = {
      id: key.id,
      accountId: key.accountId,
      role: key.role,
      name: key.name,
      keyHash: key.keyHash,
      maskedKey: key.maskedKey,
      teamId: key.teamId ?? null,
      byokAccess: key.byokAccess === false ? 0 : 1,
      settings: JSON.stringify(key.settings ?? {}),
      createdAt: now(),
      revokedAt: null,
    };
    await this.db.insert(gatewayKeys).values(row).run();
    return toGatewayKey(row);
  }

  async revokeGatewayKey(id: string, accountId: string): Promise<boolean> {
    const rows = await this.db
      .update(gatewayKeys)
      .set({ revokedAt: now() })
      .where(and(eq(gatewayKeys.id, id), eq(gatewayKeys.accountId, accountId), isNull(gatewayKeys.revokedAt)))
      .returning({ id: gatewayKeys.id })
      .all();
    return rows.length > 0;
  }

  async listActiveProviderKeys(): Promise<StoredProviderKey[]> {
    return (await this.db.select().from(providerKeys).where(isNull(providerKeys.deletedAt)).all()).map(toProviderKey);
  }

  async insertProviderKeys(keys: readonly NewProviderKey[]): Promise<StoredProviderKey[]> {
    const createdAt = now();
    const rows: ProviderKeyRow[] = keys.map((key) => ({ ...key, settings: JSON.stringify(key.settings), createdAt, deletedAt: null, duplicateOf: null }));
    if (rows.length > 0) await this.db.insert(providerKeys).values(rows).run();
    return rows.map(toProviderKey);
  }

  async updateProviderKeyStatus(id: string, status: string): Promise<void> {
    await this.db.update(providerKeys).set({ status }).where(eq(providerKeys.id, id)).run();
  }

  /** In rowid order: neighbouring rows share pages, so each re-wrap batch rewrites few pages (a small WAL, rare checkpoints). */
  async listSealedProviderKeys(cursor: string, limit: number): Promise<SealedProviderKey[]> {
    const after = cursor === '' ? 0 : Number(cursor);
    const rows = await this.storage.queryRows(
      'SELECT rowid AS position, id, owner, account_id, provider, ciphertext, key_version, crypto_backend, status, deleted_at FROM provider_keys WHERE rowid > ? ORDER BY rowid LIMIT ?',
      [Number.isSafeInteger(after) ? after : 0, limit],
    );
    return rows.map((row) => ({
      cursor: String(row.position),
      id: String(row.id),
      owner: row.owner as KeyOwner,
      accountId: (row.account_id as string | null) ?? null,
      provider: String(row.provider),
      ciphertext: String(row.ciphertext),
      keyVersion: Number(row.key_version),
      cryptoBackend: String(row.crypto_backend),
      status: String(row.status),
      deletedAt: (row.deleted_at as string | null) ?? null,
    }));
  }

  async resealProviderKeys(updates: readonly ProviderKeyReseal[]): Promise<string[]> {
    if (updates.length === 0) return [];
    const changed = await this.storage.runEach(
      'UPDATE provider_keys SET ciphertext = ?, key_version = ?, crypto_backend = ? WHERE id = ? AND ciphertext = ?',
      updates.map((update) => [update.ciphertext, update.keyVersion, update.cryptoBackend, update.id, update.expectedCiphertext]),
    );
    return updates.filter((_, index) => (changed[index] ?? 0) > 0).map((update) => update.id);
  }

  /** Soft delete: usage rows keep pointing at a key id that still explains itself; the ciphertext is wiped (nothing decrypts a deleted key). */
  async deleteProviderKey(id: string, owner: KeyOwner, accountId: string | null): Promise<boolean> {
    const ownerCondition = accountId === null ? isNull(providerKeys.accountId) : eq(providerKeys.accountId, accountId);
    const rows = await this.db
      .update(providerKeys)
      .set({ deletedAt: now(), status: 'deleted', ciphertext: '', cryptoBackend: WIPED_BACKEND })
      .where(and(eq(providerKeys.id, id), eq(providerKeys.owner, owner), ownerCondition, isNull(providerKeys.deletedAt)))
      .returning({ id: providerKeys.id })
      .all();
    if (rows.length === 0) return false;
    // The delete is stored: a WAL another connection holds is left to the next checkpoint, not answered as a failed delete.
    await this.reclaimReplacedRows().catch(unlessBusy);
    return true;
  }

  async replaceProviderKeySecret(id: string, secret: ProviderKeySecret): Promise<boolean> {
    const rows = await this.db
      .update(providerKeys)
      .set(secret)
      .where(and(eq(providerKeys.id, id), isNull(providerKeys.deletedAt)))
      .returning({ id: providerKeys.id })
      .all();
    if (rows.length === 0) return false;
    await this.reclaimReplacedRows([], { rebuild: true }).catch(unlessBusy);
    return true;
  }

  /**
   * secure_delete (set at open) zeroed the old cell in the new page; the checkpoint puts that page over
   * the old one in the main file and empties the WAL, which still held the page as it was. With
   * `rebuild`, VACUUM rewrites the file (copies left in free space before secure_delete was on) and a
   * second checkpoint empties the WAL it filled, so no earlier copy of a row survives in the database,
   * its -wal or its -shm. Every table at once: `tables` is for stores that can reclaim fewer.
   */
  async reclaimReplacedRows(_tables: readonly string[] = [], options: { rebuild?: boolean } = {}): Promise<void> {
    // A libSQL server keeps its own files: the overwrite is all Keyway can do there.
    if (this.storage.driver !== 'bun-sqlite') return;
    await this.checkpoint();
    if (options.rebuild !== true) return;
    await this.storage.execute('VACUUM');
    await this.checkpoint();
  }

  /**
   * TRUNCATE waits (busy_timeout) for a writer and for readers of an older snapshot, but another
   * connection's checkpoint (a worker's automatic one) makes it give up at once, answering busy rather
   * than failing: asked again a few times, then an SQLITE_BUSY error (503, retry), never a silent half.
   */
  private async checkpoint(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      // This process's own snapshot read (readConsistent) could not end while the checkpoint waits for it on this thread.
      const settled = (await this.storage.readsSettled?.(CHECKPOINT_READ_WAIT_MS)) ?? true;
      const [result] = settled ? await this.storage.queryRows('PRAGMA wal_checkpoint(TRUNCATE)') : [{ busy: 1 }];
      if (Number(result?.busy ?? 0) === 0) return;
      if (attempt === CHECKPOINT_ATTEMPTS) {
        throw Object.assign(new Error('The database WAL could not be checkpointed: another connection kept it busy. Try again.'), { code: 'SQLITE_BUSY' });
      }
      await Bun.sleep(CHECKPOINT_RETRY_MS * attempt);
    }
  }

  async listPlatformSettings(): Promise<Record<string, unknown>> {
    const rows = await this.db.select().from(platformSettings).all();
    const settings: Record<string, unknown> = {};
    for (const row of rows) {
      try {
        settings[row.key] = JSON.parse(row.value) as unknown;
      } catch {
        // A value that does not parse is ignored rather than taking the gateway down.
      }
    }
    return settings;
  }

  /**
   * One read transaction around `read` (consistent-read.ts): on a file, a deferred `BEGIN … COMMIT` on
   * a read connection of its own, which in WAL mode blocks no writer; in memory, a copy of the
   * database taken in one call; on libSQL, a `read` transaction. The view refuses writes.
   */
  async readConsistent<Result>(read: (view: Store) => Promise<Result>): Promise<Result> {
    // A view (a storage without it) reads in the transaction it is already in.
    if (this.storage.readConsistent === undefined) return read(this);
    return this.storage.readConsistent((view) => read(new SqliteStore(view)));
  }

  async setPlatformSetting(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    const updatedAt = now();
    await this.db
      .insert(platformSettings)
      .values({ key, value: text, updatedAt })
      .onConflictDoUpdate({ target: platformSettings.key, set: { value: text, updatedAt } })
      .run();
  }

  async configChangeVersion(): Promise<number> {
    return Number((await this.storage.queryRows(CONFIG_CHANGE_VERSION))[0]?.version ?? 0);
  }

  async recordConfigChange(): Promise<void> {
    await this.storage.execute(RECORD_CONFIG_CHANGE);
  }

  async insertUsage(rows: readonly UsageRecord[]): Promise<void> {
    if (rows.length === 0) return;
    // One transaction per flush, with a prepared statement: drizzle's builder costs more per row than SQLite.
    await this.storage.insertMany('usage_records', USAGE_COLUMN_NAMES, rows.map(usageValues), this.usageRollupStatements, this.usageFoldTables);
  }

  async insertJournalRange(count: number, range: JournalRange): Promise<void> {
    if (count === 0) return;
    // The writer thread reads the lines from the journal file itself; without one (writes on this thread) they are read here.
    if (this.storage.insertUsageFile === undefined) return this.insertUsage(rowsOfRange(range, count));
    await this.storage.insertUsageFile('usage_records', USAGE_COLUMN_NAMES, range, count, this.usageRollupStatements, this.usageFoldTables);
  }

  async insertJournaledUsage(rows: readonly UsageRecord[], lines: string): Promise<void> {
    if (rows.length === 0) return;
    // The writer thread decodes the journal's text itself; on this thread the rows are cheaper than a decode.
    if (this.storage.insertUsageText === undefined) return this.insertUsage(rows);
    await this.storage.insertUsageText('usage_records', USAGE_COLUMN_NAMES, lines, rows.length, this.usageRollupStatements, this.usageFoldTables);
  }

  async summarizeUsage(filter: UsageSummaryFilter): Promise<UsageSummaryRow[]> {
    const conditions = ['account_id = ?', 'created_at >= ?', 'created_at < ?'];
    const parameters: Array<string | number> = [filter.accountId, filter.from, filter.to];
    if (filter.gatewayKeyId !== undefined) {
      conditions.push('gateway_key_id = ?');
      parameters.push(filter.gatewayKeyId);
    }
    if (filter.teamId !== undefined) {
      conditions.push('team_id = ?');
      parameters.push(filter.teamId);
    }
    const rows = await this.storage.queryRows(
      `SELECT provider, model, team_id, COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd,
       SUM(unpriced) AS unpriced_requests
       FROM usage_records WHERE ${conditions.join(' AND ')} GROUP BY provider, model, team_id ORDER BY provider, model, team_id`,
      parameters,
    );
    return rows.map((row) => ({
      provider: (row.provider as string | null) ?? null,
      model: (row.model as string | null) ?? null,
      teamId: (row.team_id as string | null) ?? null,
      requests: Number(row.requests),
      inputTokens: Number(row.input_tokens ?? 0),
      outputTokens: Number(row.output_tokens ?? 0),
      costUsd: Number(row.cost_usd ?? 0),
      unpricedRequests: Number(row.unpriced_requests ?? 0),
    }));
  }

  async listUsage(accountId: string): Promise<UsageRecord[]> {
    return (await this.db.select().from(usageRecords).where(eq(usageRecords.accountId, accountId)).all()).map(toUsage);
  }

  /** Through the (account_id, created_at) index: a few hundred keys per statement, each one account's short time window. */
  async findUsageKeys(wanted: readonly UsageKey[]): Promise<UsageKey[]> {
    const keys: UsageKey[] = [];
    for (const chunk of usageKeyWindows(wanted)) {
      const rows = await this.storage.queryRows(
        `SELECT request_id, account_id, created_at FROM usage_records
         WHERE account_id = ? AND created_at >= ? AND created_at <= ? AND request_id IN (${chunk.requestIds.map(() => '?').join(', ')})`,
        [chunk.accountId, chunk.from, chunk.to, ...chunk.requestIds],
      );
      for (const row of rows) keys.push({ requestId: String(row.request_id), accountId: String(row.account_id), createdAt: String(row.created_at) });
    }
    return keys;
  }

  async query(sql: string, parameters: readonly unknown[] = []): Promise<Array<Record<string, unknown>>> {
    return this.storage.queryRows(sql, parameters);
  }

  async execute(sql: string, parameters: readonly unknown[] = []): Promise<void> {
    await this.storage.execute(sql, parameters);
  }
}
