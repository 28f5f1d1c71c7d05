// The Store contract over PostgreSQL through Bun's built-in client (`Bun.SQL`: no native module, so the
// single binary keeps working). Domain records in, domain records out; the SQL is written by hand in
// the `postgres` dialect, the core schema's migrations are in migrations.ts.

import type { SQL } from 'bun';
import { WIPED_BACKEND } from '../../core/spec/key-source.ts';
import type { KeyOwner, PrincipalRole } from '../../core/spec/plugin.ts';
import { usageKeyWindows } from '../../core/spec/usage-keys.ts';
import type {
  AccountRecord,
  GatewayKeyRecord,
  Migration,
  MigrationReport,
  NewGatewayKey,
  NewProviderKey,
  ProviderKeyReseal,
  ProviderKeySecret,
  SealedProviderKey,
  Store,
  StoredProviderKey,
  UsageKey,
  UsageRecord,
  UsageRollup,
  UsageSummaryFilter,
  UsageSummaryRow,
} from '../../core/spec/store.ts';
import { CONFIG_CHANGE_VERSION, RECORD_CONFIG_CHANGE } from '../store-sqlite/config-changes.ts';
import { arrayLiteral } from './array-literal.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { toPostgresPlaceholders } from './placeholders.ts';
import { postgresUnavailable } from './unavailable.ts';
import { normalize, sealedPart, textOrNull, toAccount, toGatewayKey, toProviderKey, toUsage, type Row } from './records.ts';

/** Advisory lock keys: one for migrations, one serializing usage batches across instances (see insertUsage). */
const MIGRATION_LOCK = 7_413_001;
const USAGE_LOCK = 7_413_002;
/** PostgreSQL takes at most 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;

const now = (): string => new Date().toISOString();

/** Each usage column, its array type for UNNEST, and its value for one record (bench/store-postgres.ts uses them too). */
export const USAGE_COLUMNS: ReadonlyArray<readonly [string, 'text' | 'int8' | 'float8', (row: UsageRecord) => string | number | null]> = [
  ['request_id', 'text', (row) => row.requestId],
  ['account_id', 'text', (row) => row.accountId],
  ['gateway_key_id', 'text', (row) => row.gatewayKeyId],
  ['team_id', 'text', (row) => row.teamId],
  ['project_tag', 'text', (row) => row.projectTag],
  ['endpoint', 'text', (row) => row.endpoint],
  ['provider', 'text', (row) => row.provider],
  ['model', 'text', (row) => row.model],
  ['requested_model', 'text', (row) => row.requestedModel],
  ['provider_key_id', 'text', (row) => row.providerKeyId],
  ['byok', 'int8', (row) => (row.byok ? 1 : 0)],
  ['status', 'int8', (row) => row.status],
  ['error_code', 'text', (row) => row.errorCode],
  ['input_tokens', 'int8', (row) => row.inputTokens],
  ['output_tokens', 'int8', (row) => row.outputTokens],
  ['cached_input_tokens', 'int8', (row) => row.cachedInputTokens],
  ['cache_write_tokens', 'int8', (row) => row.cacheWriteTokens],
  ['cache_write_1h_tokens', 'int8', (row) => row.cacheWrite1hTokens ?? 0],
  ['reasoning_tokens', 'int8', (row) => row.reasoningTokens],
  ['cost_usd', 'float8', (row) => row.costUsd ?? 0],
  ['unpriced', 'int8', (row) => (row.costUsd === null ? 1 : 0)],
  ['latency_ms', 'float8', (row) => row.latencyMs],
  ['streamed', 'int8', (row) => (row.streamed ? 1 : 0)],
  ['fallback_attempts', 'int8', (row) => row.fallbackAttempts],
  ['created_at', 'text', (row) => row.createdAt],
  ['usage_estimated', 'int8', (row) => (row.usageEstimated === true ? 1 : 0)],
  ['audited', 'int8', (row) => (row.audited === true ? 1 : 0)],
  ['client_ip', 'text', (row) => row.clientIp ?? null],
  ['actor_role', 'text', (row) => row.actorRole ?? null],
  ['request_sha256', 'text', (row) => row.requestSha256 ?? null],
];
/**
 * One statement per batch whatever its size: one array parameter per column, unnested into rows
 * (2.5× the rows/s of a multi-row VALUES list, which also needs a parameter per cell and so a split
 * past 65,535; bench/store-postgres.ts). It answers the batch's first and last id.
 */
const INSERT_USAGE = `WITH inserted AS (
  INSERT INTO usage_records (${USAGE_COLUMNS.map(([column]) => column).join(', ')})
  SELECT * FROM UNNEST(${USAGE_COLUMNS.map(([, type], index) => `$${index + 1}::${type}[]`).join(', ')})
  RETURNING id)
SELECT MIN(id) AS first, MAX(id) AS last FROM inserted`;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** One multi-row INSERT: `INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)…`, and its flat parameters. */
function multiRowInsert(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix = ''): [string, unknown[]] {
  const parameters: unknown[] = [];
  const tuples = rows.map((row) => {
    const slots = columns.map((_, index) => {
      parameters.push(row[index] ?? null);
      return `$${parameters.length}`;
    });
    return `(${slots.join(', ')})`;
  });
  return [`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}${suffix}`, parameters];
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

export class PostgresStore implements Store {
  readonly dialect = 'postgres';
  readonly driver = 'bun-sql';
  private usageRollupStatements: readonly string[] = [];

  constructor(
    private readonly sql: SQL,
    /** Set on the view `readConsistent` hands out: its `sql` is that read transaction's. */
    private readonly view = false,
  ) {}

  private async rows(statement: string, parameters: readonly unknown[] = [], client: SQL = this.sql): Promise<Row[]> {
    const result = (await client.unsafe(statement, [...parameters])) as Row[];
    return [...result].map(normalize);
  }

  async migrate(plugins: ReadonlyArray<{ plugin: string; migrations: readonly Migration[] }>): Promise<MigrationReport> {
    const all = [
      ...POSTGRES_MIGRATIONS.map((migration) => ({ id: migration.id, statements: migration.statements })),
      ...plugins.flatMap(({ plugin, migrations }) => migrations.map((migration) => ({ id: `${plugin}:${migration.id}`, statements: migration.statements }))),
    ];
    // Several instances may start at once: one migrates at a time, each migration in its own transaction (DDL is transactional here).
    const reserved = await this.sql.reserve();
    try {
      await reserved.unsafe('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await reserved.unsafe('CREATE TABLE IF NOT EXISTS keyway_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
      const done = new Set((await this.rows('SELECT id FROM keyway_migrations', [], reserved)).map((row) => String(row.id)));
      const applied: string[] = [];
      for (const migration of all) {
        if (done.has(migration.id)) continue;
        try {
          await reserved.begin(async (transaction) => {
            for (const statement of migration.statements) await transaction.unsafe(statement);
            await transaction.unsafe('INSERT INTO keyway_migrations (id, applied_at) VALUES ($1, $2)', [migration.id, now()]);
          });
        } catch (error) {
          throw new Error(`Migration ${migration.id} failed: ${(error as Error).message}`);
        }
        applied.push(migration.id);
      }
      return { applied, alreadyApplied: done.size, latest: POSTGRES_MIGRATIONS.at(-1)?.id };
    } finally {
      await reserved.unsafe('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      reserved.release();
    }
  }

  async ping(): Promise<void> {
    await this.sql.unsafe('SELECT 1');
  }

  isUnavailable(error: unknown): boolean {
    return postgresUnavailable(error);
  }

  close(): void {
    // A view's connection goes back to the pool when its transaction ends.
    if (!this.view) void this.sql.close({ timeout: 5 });
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return (await this.rows('SELECT * FROM accounts ORDER BY created_at, id')).map(toAccount);
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const row = (await this.rows('SELECT * FROM accounts WHERE id = $1', [id]))[0];
    return row === undefined ? undefined : toAccount(row);
  }

  async insertAccount(id: string, name: string): Promise<AccountRecord> {
    const row = await this.rows('INSERT INTO accounts (id, name, created_at, settings) VALUES ($1, $2, $3, $4) RETURNING *', [id, name, now(), '{}']);
    return toAccount(row[0] as Row);
  }

  async updateAccountSettings(id: string, settings: Record<string, unknown>): Promise<void> {
    await this.sql.unsafe('UPDATE accounts SET settings = $1 WHERE id = $2', [JSON.stringify(settings), id]);
  }

  async listActiveGatewayKeys(): Promise<GatewayKeyRecord[]> {
    return (await this.rows('SELECT * FROM gateway_keys WHERE revoked_at IS NULL ORDER BY created_at, id')).map(toGatewayKey);
  }

  async countGatewayKeys(role: PrincipalRole): Promise<number> {
    const rows = await this.rows('SELECT COUNT(*) AS count FROM gateway_keys WHERE role = $1 AND revoked_at IS NULL', [role]);
    return Number(rows[0]?.count ?? 0);
  }

  async insertGatewayKey(key: NewGatewayKey): Promise<GatewayKeyRecord> {
    const rows = await this.rows(
      `INSERT INTO gateway_keys (id, account_id, role, name, key_hash, masked_key, team_id, byok_access, settings, created_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL) RETURNING *`,
      [
        key.id,
        key.accountId,
        key.role,
        key.name,
        key.keyHash,
        key.maskedKey,
        key.teamId ?? null,
        key.byokAccess === false ? 0 : 1,
        JSON.stringify(key.settings ?? {}),
        now(),
      ],
    );
    return toGatewayKey(rows[0] as Row);
  }

  async revokeGatewayKey(id: string, accountId: string): Promise<boolean> {
    const rows = await this.rows('UPDATE gateway_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL RETURNING id', [
      now(),
      id,
      accountId,
    ]);
    return rows.length > 0;
  }

  async listActiveProviderKeys(): Promise<StoredProviderKey[]> {
    return (await this.rows('SELECT * FROM provider_keys WHERE deleted_at IS NULL ORDER BY position')).map(toProviderKey);
  }

  async insertProviderKeys(keys: readonly NewProviderKey[]): Promise<StoredProviderKey[]> {
    if (keys.length === 0) return [];
    const createdAt = now();
    const columns = [
      'id',
      'owner',
      'account_id',
      'provider',
      'ciphertext',
      'key_version',
      'crypto_backend',
      'masked_key',
      'fingerprint',
      'organization_id',
      'settings',
      'status',
      'weight',
      'created_at',
    ];
    const values = keys.map((key) => [
      key.id,
      key.owner,
      key.accountId,
      key.provider,
      key.ciphertext,
      key.keyVersion,
      key.cryptoBackend,
      key.maskedKey,
      key.fingerprint,
      key.organizationId,
      JSON.stringify(key.settings),
      key.status,
      key.weight,
      createdAt,
    ]);
    // One statement: all or none.
    const [statement, parameters] = multiRowInsert('provider_keys', columns, values, ' RETURNING *');
    const rows = await this.rows(statement, parameters);
    const byId = new Map(rows.map((row) => [String(row.id), toProviderKey(row)]));
    return keys.map((key) => byId.get(key.id) as StoredProviderKey);
  }

  async updateProviderKeyStatus(id: string, status: string): Promise<void> {
    await this.sql.unsafe('UPDATE provider_keys SET status = $1 WHERE id = $2', [status, id]);
  }

  /** In insertion order (the identity column `position`), the stable order the contract asks for. */
  async listSealedProviderKeys(cursor: string, limit: number): Promise<SealedProviderKey[]> {
    const after = cursor === '' ? 0 : Number(cursor);
    const rows = await this.rows(
      'SELECT position, id, owner, account_id, provider, ciphertext, key_version, crypto_backend, status, deleted_at FROM provider_keys WHERE position > $1 ORDER BY position LIMIT $2',
      [Number.isSafeInteger(after) ? after : 0, limit],
    );
    return rows.map((row) => ({ cursor: String(row.position), ...sealedPart(row) }));
  }

  async resealProviderKeys(updates: readonly ProviderKeyReseal[]): Promise<string[]> {
    if (updates.length === 0) return [];
    return this.sql.begin(async (transaction) => {
      const changed: string[] = [];
      for (const update of updates) {
        const rows = await this.rows(
          'UPDATE provider_keys SET ciphertext = $1, key_version = $2, crypto_backend = $3 WHERE id = $4 AND ciphertext = $5 RETURNING id',
          [update.ciphertext, update.keyVersion, update.cryptoBackend, update.id, update.expectedCiphertext],
          transaction,
        );
        if (rows.length > 0) changed.push(update.id);
      }
      return changed;
    });
  }

  async deleteProviderKey(id: string, owner: KeyOwner, accountId: string | null): Promise<boolean> {
    const rows = await this.rows(
      `UPDATE provider_keys SET deleted_at = $1, status = 'deleted', ciphertext = '', crypto_backend = $2
       WHERE id = $3 AND owner = $4 AND account_id IS NOT DISTINCT FROM $5 AND deleted_at IS NULL RETURNING id`,
      [now(), WIPED_BACKEND, id, owner, accountId],
    );
    if (rows.length === 0) return false;
    await this.reclaimReplacedRows(['provider_keys']);
    return true;
  }

  async replaceProviderKeySecret(id: string, secret: ProviderKeySecret): Promise<boolean> {
    const rows = await this.rows(
      'UPDATE provider_keys SET ciphertext = $1, crypto_backend = $2, key_version = $3, fingerprint = $4 WHERE id = $5 AND deleted_at IS NULL RETURNING id',
      [secret.ciphertext, secret.cryptoBackend, secret.keyVersion, secret.fingerprint, id],
    );
    if (rows.length === 0) return false;
    await this.reclaimReplacedRows(['provider_keys']);
    return true;
  }

  /**
   * An UPDATE or DELETE leaves the old row version in the table until vacuumed: VACUUM makes its space
   * reusable at once. Only the tables named (a whole-database VACUUM would walk the usage tables too);
   * `rebuild` asks nothing more here, as nothing older than the row versions is kept. The server's WAL
   * and backups are the operator's (docs/deployment.md, "PostgreSQL").
   */
  async reclaimReplacedRows(tables: readonly string[]): Promise<void> {
    for (const table of new Set(tables)) {
      // Names come from holders and plugins, never from a request; anything but a plain identifier is skipped.
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) continue;
      await this.sql.unsafe(`VACUUM "${table}"`).catch(() => undefined);
    }
  }

  async listPlatformSettings(): Promise<Record<string, unknown>> {
    const settings: Record<string, unknown> = {};
    for (const row of await this.rows('SELECT key, value FROM platform_settings')) {
      try {
        settings[String(row.key)] = JSON.parse(String(row.value)) as unknown;
      } catch {
        // A value that does not parse is ignored rather than taking the gateway down.
      }
    }
    return settings;
  }

  /**
   * One `REPEATABLE READ READ ONLY` transaction on one connection around `read`: every read sees the
   * snapshot its first statement took, whatever commits meanwhile; a write through the view is refused
   * by the server. It blocks no writer (MVCC) and can fail no serialization check, as it writes nothing.
   */
  async readConsistent<Result>(read: (view: Store) => Promise<Result>): Promise<Result> {
    if (this.view) return read(this);
    // Boxed: Bun's `begin` awaits each element of an array the callback answers, as if they were queries.
    const boxed = await this.sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (transaction) => ({
      value: await read(new PostgresStore(transaction, true)),
    }));
    return boxed.value as Result;
  }

  async setPlatformSetting(key: string, value: unknown): Promise<void> {
    await this.sql.unsafe(
      'INSERT INTO platform_settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      [key, JSON.stringify(value), now()],
    );
  }

  async configChangeVersion(): Promise<number> {
    return Number((await this.rows(CONFIG_CHANGE_VERSION))[0]?.version ?? 0);
  }

  async recordConfigChange(): Promise<void> {
    await this.sql.unsafe(RECORD_CONFIG_CHANGE);
  }

  setUsageRollups(rollups: readonly UsageRollup[]): void {
    this.usageRollupStatements = rollups.flatMap((rollup) => rollup.statements.map(toPostgresPlaceholders));
  }

  /**
   * One transaction per batch: one INSERT of the whole batch (INSERT_USAGE), then the roll-ups with
   * the batch's first and last id. A transaction-level advisory lock serializes usage
   * batches across instances, so a batch's ids are contiguous (no other writer draws from the
   * sequence meanwhile) and two instances never upsert the same roll-up rows in opposite orders.
   */
  async insertUsage(rows: readonly UsageRecord[]): Promise<void> {
    if (rows.length === 0) return;
    const columns = USAGE_COLUMNS.map(([, , read]) => arrayLiteral(rows.map(read)));
    await this.sql.begin(async (transaction) => {
      await transaction.unsafe('SELECT pg_advisory_xact_lock($1)', [USAGE_LOCK]);
      const [range] = await this.rows(INSERT_USAGE, columns, transaction);
      if (range?.first === null || range?.first === undefined) return;
      for (const statement of this.usageRollupStatements) await transaction.unsafe(statement, statement.includes('$') ? [range.first, range.last] : []);
    });
  }

  async listUsage(accountId: string): Promise<UsageRecord[]> {
    return (await this.rows('SELECT * FROM usage_records WHERE account_id = $1 ORDER BY id', [accountId])).map(toUsage);
  }

  async summarizeUsage(filter: UsageSummaryFilter): Promise<UsageSummaryRow[]> {
    const conditions = ['account_id = $1', 'created_at >= $2', 'created_at < $3'];
    const parameters: string[] = [filter.accountId, filter.from, filter.to];
    if (filter.gatewayKeyId !== undefined) {
      parameters.push(filter.gatewayKeyId);
      conditions.push(`gateway_key_id = $${parameters.length}`);
    }
    if (filter.teamId !== undefined) {
      parameters.push(filter.teamId);
      conditions.push(`team_id = $${parameters.length}`);
    }
    const rows = await this.rows(
      `SELECT provider, model, team_id, COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
       SUM(cost_usd) AS cost_usd, SUM(unpriced) AS unpriced_requests
       FROM usage_records WHERE ${conditions.join(' AND ')} GROUP BY provider, model, team_id ORDER BY provider, model, team_id`,
      parameters,
    );
    return rows.map((row) => ({
      provider: textOrNull(row.provider),
      model: textOrNull(row.model),
      teamId: textOrNull(row.team_id),
      requests: Number(row.requests),
      inputTokens: Number(row.input_tokens ?? 0),
      outputTokens: Number(row.output_tokens ?? 0),
      costUsd: Number(row.cost_usd ?? 0),
      unpricedRequests: Number(row.unpriced_requests ?? 0),
    }));
  }

  /** Through the (account_id, created_at) index: a few hundred keys per statement, each one account's short time window. */
  async findUsageKeys(wanted: readonly UsageKey[]): Promise<UsageKey[]> {
    const keys: UsageKey[] = [];
    for (const chunk of usageKeyWindows(wanted)) {
      const rows = await this.rows(
        'SELECT request_id, account_id, created_at FROM usage_records WHERE account_id = $1 AND created_at >= $2 AND created_at <= $3 AND request_id = ANY($4::text[])',
        [chunk.accountId, chunk.from, chunk.to, chunk.requestIds],
      );
      for (const row of rows) keys.push({ requestId: String(row.request_id), accountId: String(row.account_id), createdAt: String(row.created_at) });
    }
    return keys;
  }

  async appendRows(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Promise<void> {
    if (rows.length === 0) return;
    if (!IDENTIFIER.test(table) || columns.some((column) => !IDENTIFIER.test(column))) {
      throw new Error(`appendRows: '${table}' and its columns must be plain SQL identifiers`);
    }
    await this.sql.begin(async (transaction) => {
      for (const chunk of chunks(rows, Math.max(1, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length))))) {
        const [statement, parameters] = multiRowInsert(table, columns, chunk);
        await transaction.unsafe(statement, parameters);
      }
    });
  }

  async query(sql: string, parameters: readonly unknown[] = []): Promise<Row[]> {
    return this.rows(toPostgresPlaceholders(sql), parameters);
  }

  async execute(sql: string, parameters: readonly unknown[] = []): Promise<void> {
    await this.sql.unsafe(toPostgresPlaceholders(sql), [...parameters]);
  }
}
