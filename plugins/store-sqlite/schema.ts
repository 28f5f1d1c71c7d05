// The core's tables as drizzle sees them, for the SQLite store's queries. The migrations create them
// (migrations.ts here, plugins/store-postgres/migrations.ts), so a change goes in all three: a new
// migration in both lists and the definition here. test/store-sqlite/drizzle-schema.test.ts and
// test/store-postgres/schema-parity.test.ts fail when these definitions and a migrated database differ.

import { sql } from 'drizzle-orm';
import { index, integer, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const accounts = sqliteTable('accounts', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: text('created_at').notNull(),
  /** JSON: routing and compliance settings. */
  settings: text('settings').notNull().default('{}'),
});

/** Gateway bearer keys. Only the SHA-256 hash is stored; the key is shown once at creation. */
export const gatewayKeys = sqliteTable(
  'gateway_keys',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    role: text('role').notNull(),
    name: text('name').notNull(),
    keyHash: text('key_hash').notNull(),
    maskedKey: text('masked_key').notNull(),
    teamId: text('team_id'),
    byokAccess: integer('byok_access').notNull().default(1),
    /** JSON: environment, allowed_ips, rate limits. */
    settings: text('settings').notNull().default('{}'),
    createdAt: text('created_at').notNull(),
    revokedAt: text('revoked_at'),
  },
  (table) => [uniqueIndex('gateway_keys_hash').on(table.keyHash), index('gateway_keys_account').on(table.accountId)],
);

/** Provider keys: the secret only as an envelope ciphertext bound to this row. */
export const providerKeys = sqliteTable(
  'provider_keys',
  {
    id: text('id').primaryKey(),
    owner: text('owner').notNull(),
    accountId: text('account_id').references(() => accounts.id),
    provider: text('provider').notNull(),
    ciphertext: text('ciphertext').notNull(),
    keyVersion: integer('key_version').notNull(),
    cryptoBackend: text('crypto_backend').notNull(),
    maskedKey: text('masked_key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    organizationId: text('organization_id'),
    settings: text('settings').notNull().default('{}'),
    status: text('status').notNull(),
    weight: real('weight').notNull().default(1),
    createdAt: text('created_at').notNull(),
    deletedAt: text('deleted_at'),
    /** Set by migration 0013 only: a live twin stored before keys were unique, left out of the indexes below. */
    duplicateOf: text('duplicate_of'),
  },
  (table) => [
    index('provider_keys_account').on(table.accountId, table.provider),
    // A live key is stored once per owner and provider (migration 0013).
    uniqueIndex('provider_keys_account_stored_once')
      .on(table.accountId, table.provider, table.fingerprint)
      .where(sql`owner = 'account' AND deleted_at IS NULL AND duplicate_of IS NULL`),
    uniqueIndex('provider_keys_platform_stored_once')
      .on(table.provider, table.fingerprint)
      .where(sql`owner = 'platform' AND deleted_at IS NULL AND duplicate_of IS NULL`),
  ],
);

export const usageRecords = sqliteTable(
  'usage_records',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    requestId: text('request_id').notNull(),
    accountId: text('account_id').notNull(),
    gatewayKeyId: text('gateway_key_id').notNull(),
    teamId: text('team_id'),
    projectTag: text('project_tag'),
    endpoint: text('endpoint').notNull(),
    provider: text('provider'),
    model: text('model'),
    requestedModel: text('requested_model').notNull(),
    providerKeyId: text('provider_key_id'),
    byok: integer('byok').notNull(),
    status: integer('status').notNull(),
    errorCode: text('error_code'),
    inputTokens: integer('input_tokens').notNull(),
    outputTokens: integer('output_tokens').notNull(),
    cachedInputTokens: integer('cached_input_tokens').notNull(),
    cacheWriteTokens: integer('cache_write_tokens').notNull(),
    reasoningTokens: integer('reasoning_tokens').notNull(),
    costUsd: real('cost_usd').notNull(),
    latencyMs: real('latency_ms').notNull(),
    streamed: integer('streamed').notNull(),
    fallbackAttempts: integer('fallback_attempts').notNull(),
    createdAt: text('created_at').notNull(),
    usageEstimated: integer('usage_estimated').notNull().default(0),
    unpriced: integer('unpriced').notNull().default(0),
    cacheWrite1hTokens: integer('cache_write_1h_tokens').notNull().default(0),
    audited: integer('audited').notNull().default(0),
    clientIp: text('client_ip'),
    actorRole: text('actor_role'),
    requestSha256: text('request_sha256'),
  },
  (table) => [
    // `audited` last: request audit events filter on it from the index (plugins/audit/usage-events.ts).
    index('usage_account_time').on(table.accountId, table.createdAt, table.audited),
  ],
);

/** Operator-wide settings (model-class overrides, platform fees), one JSON value per key. */
export const platformSettings = sqliteTable('platform_settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  updatedAt: text('updated_at').notNull(),
});

export const schema = { accounts, gatewayKeys, providerKeys, usageRecords, platformSettings };
