import { and, eq, isNull } from 'drizzle-orm';
import type { KeyOwner, PrincipalRole, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { KeywayDatabase, Storage } from './database.ts';
import { accounts, gatewayKeys, platformSettings, providerKeys, usageRecords } from './schema.ts';

export type AccountRow = typeof accounts.$inferSelect;
export type GatewayKeyRow = typeof gatewayKeys.$inferSelect;
export type ProviderKeyRow = typeof providerKeys.$inferSelect;
export type UsageRow = typeof usageRecords.$inferInsert;

export interface NewGatewayKey {
  id: string;
  accountId: string;
  role: PrincipalRole;
  name: string;
  keyHash: string;
  maskedKey: string;
  teamId?: string | null;
  byokAccess?: boolean;
}

export interface NewProviderKey {
  id: string;
  owner: KeyOwner;
  accountId: string | null;
  provider: string;
  ciphertext: string;
  keyVersion: number;
  cryptoBackend: string;
  maskedKey: string;
  fingerprint: string;
  organizationId: string | null;
  settings: ProviderKeySettings;
  status: string;
  weight: number;
}

const now = (): string => new Date().toISOString();

/** All SQL the core runs. Management calls use it; the request path never does. */
/** Column order of the usage fast path (core/storage/database.ts insertMany). */
const USAGE_COLUMNS: ReadonlyArray<readonly [string, keyof UsageRow]> = [
  ['request_id', 'requestId'],
  ['account_id', 'accountId'],
  ['gateway_key_id', 'gatewayKeyId'],
  ['team_id', 'teamId'],
  ['project_tag', 'projectTag'],
  ['endpoint', 'endpoint'],
  ['provider', 'provider'],
  ['model', 'model'],
  ['requested_model', 'requestedModel'],
  ['provider_key_id', 'providerKeyId'],
  ['byok', 'byok'],
  ['status', 'status'],
  ['error_code', 'errorCode'],
  ['input_tokens', 'inputTokens'],
  ['output_tokens', 'outputTokens'],
  ['cached_input_tokens', 'cachedInputTokens'],
  ['cache_write_tokens', 'cacheWriteTokens'],
  ['reasoning_tokens', 'reasoningTokens'],
  ['cost_usd', 'costUsd'],
  ['latency_ms', 'latencyMs'],
  ['streamed', 'streamed'],
  ['fallback_attempts', 'fallbackAttempts'],
  ['created_at', 'createdAt'],
];
const USAGE_COLUMN_NAMES = USAGE_COLUMNS.map(([column]) => column);

export class Repository {
  constructor(
    private readonly db: KeywayDatabase,
    private readonly storage?: Pick<Storage, 'insertMany'>,
  ) {}

  async listAccounts(): Promise<AccountRow[]> {
    return this.db.select().from(accounts).all();
  }

  async getAccount(id: string): Promise<AccountRow | undefined> {
    return (await this.db.select().from(accounts).where(eq(accounts.id, id)).all())[0];
  }

  async insertAccount(id: string, name: string): Promise<AccountRow> {
    const row: AccountRow = { id, name, createdAt: now(), settings: '{}' };
    await this.db.insert(accounts).values(row).run();
    return row;
  }

  async updateAccountSettings(id: string, settings: Record<string, unknown>): Promise<void> {
    await this.db.update(accounts).set({ settings: JSON.stringify(settings) }).where(eq(accounts.id, id)).run();
  }

  async listActiveGatewayKeys(): Promise<GatewayKeyRow[]> {
    return this.db.select().from(gatewayKeys).where(isNull(gatewayKeys.revokedAt)).all();
  }

  async countGatewayKeys(role: PrincipalRole): Promise<number> {
    return (await this.db.select({ id: gatewayKeys.id }).from(gatewayKeys).where(and(eq(gatewayKeys.role, role), isNull(gatewayKeys.revokedAt))).all()).length;
  }

  async insertGatewayKey(key: NewGatewayKey): Promise<GatewayKeyRow> {
    const row: GatewayKeyRow = {
      id: key.id,
      accountId: key.accountId,
      role: key.role,
      name: key.name,
      keyHash: key.keyHash,
      maskedKey: key.maskedKey,
      teamId: key.teamId ?? null,
      byokAccess: key.byokAccess === false ? 0 : 1,
      createdAt: now(),
      revokedAt: null,
    };
    await this.db.insert(gatewayKeys).values(row).run();
    return row;
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

  async listActiveProviderKeys(): Promise<ProviderKeyRow[]> {
    return this.db.select().from(providerKeys).where(isNull(providerKeys.deletedAt)).all();
  }

  async insertProviderKeys(keys: NewProviderKey[]): Promise<ProviderKeyRow[]> {
    const createdAt = now();
    const rows: ProviderKeyRow[] = keys.map((key) => ({
      ...key,
      settings: JSON.stringify(key.settings),
      createdAt,
      deletedAt: null,
    }));
    if (rows.length > 0) await this.db.insert(providerKeys).values(rows).run();
    return rows;
  }

  async updateProviderKeyStatus(id: string, status: string): Promise<void> {
    await this.db.update(providerKeys).set({ status }).where(eq(providerKeys.id, id)).run();
  }

  /** Soft delete: usage rows keep pointing at a key id that still explains itself. */
  async deleteProviderKey(id: string, owner: KeyOwner, accountId: string | null): Promise<boolean> {
    const ownerCondition = accountId === null ? isNull(providerKeys.accountId) : eq(providerKeys.accountId, accountId);
    const rows = await this.db
      .update(providerKeys)
      .set({ deletedAt: now(), status: 'deleted' })
      .where(and(eq(providerKeys.id, id), eq(providerKeys.owner, owner), ownerCondition, isNull(providerKeys.deletedAt)))
      .returning({ id: providerKeys.id })
      .all();
    return rows.length > 0;
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

  async setPlatformSetting(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    const updatedAt = now();
    await this.db.insert(platformSettings).values({ key, value: text, updatedAt }).onConflictDoUpdate({ target: platformSettings.key, set: { value: text, updatedAt } }).run();
  }

  async insertUsage(rows: UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    // One transaction per flush: a failed write leaves nothing behind, so its retry cannot double count.
    if (this.storage !== undefined) {
      await this.storage.insertMany('usage_records', USAGE_COLUMN_NAMES, rows.map((row) => USAGE_COLUMNS.map(([, field]) => row[field] ?? null)));
      return;
    }
    await this.db.insert(usageRecords).values(rows).run();
  }

  async listUsage(accountId: string): Promise<Array<typeof usageRecords.$inferSelect>> {
    return this.db.select().from(usageRecords).where(eq(usageRecords.accountId, accountId)).all();
  }
}
