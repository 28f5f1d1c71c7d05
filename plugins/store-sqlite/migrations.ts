// Forward-only migrations, embedded as code so they ship inside the single binary (a drizzle
// migrationsFolder does not exist there). Append new entries; never edit an applied one.

import type { Migration } from '../../core/spec/store.ts';

/**
 * Core migrations that are plain DDL, from 0008 on: written once, here, and translated for PostgreSQL
 * (plugins/store-postgres/migrations.ts applies `postgresMigrationsFromSqlite` to this list). A core
 * migration that needs different SQL per dialect goes in each dialect's own list instead.
 */
export const PLAIN_MIGRATIONS: Migration[] = [
  {
    // A request's audit event is read from its usage row (plugins/audit): the row says it was audited
    // and keeps what the event has beyond the booking. Partial indexes: only audited rows pay for them,
    // and the audit log reads them newest first, per account or across accounts.
    id: '0008_usage_audit',
    statements: [
      `ALTER TABLE usage_records ADD COLUMN audited INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE usage_records ADD COLUMN client_ip TEXT`,
      `ALTER TABLE usage_records ADD COLUMN actor_role TEXT`,
      `ALTER TABLE usage_records ADD COLUMN request_sha256 TEXT`,
      `CREATE INDEX usage_audited_account_time ON usage_records(account_id, created_at, id) WHERE audited = 1`,
      `CREATE INDEX usage_audited_time ON usage_records(created_at, id) WHERE audited = 1`,
    ],
  },
  {
    // The replay's lookup index, led by the creation time: rows arrive in time order, so each insert
    // lands at the index's end. Led by the request id, a client's random X-Request-Id put every row on
    // another page (writer thread: 15 µs a row against 2 µs, bench/usage-writer-batch.ts RANDOM_IDS=1).
    id: '0009_usage_request_by_time',
    statements: [`DROP INDEX usage_request`, `CREATE INDEX usage_request_time ON usage_records(created_at, request_id)`],
  },
  {
    // The replay looks keys up per account through usage_account_time instead (core/spec/usage-keys.ts):
    // an index only a replay after a crash reads cost every usage row ~0.5 µs on the writer thread.
    id: '0010_usage_replay_by_account',
    statements: [`DROP INDEX usage_request_time`],
  },
  {
    // Request audit events are read through usage_account_time, which now ends with `audited`: the
    // filter is read from the index, not the row. The two partial indexes of 0008 cost each audited
    // row two more B-tree inserts on the writer thread (about 4 µs a member request of the seed's team
    // under load, bench/RESULTS.md "session 8"); the operator's view across accounts reads each
    // account's newest and merges them (plugins/audit/usage-events.ts).
    id: '0011_usage_audit_through_account_time',
    statements: [
      `DROP INDEX usage_audited_account_time`,
      `DROP INDEX usage_audited_time`,
      `DROP INDEX usage_account_time`,
      `CREATE INDEX usage_account_time ON usage_records(account_id, created_at, audited)`,
    ],
  },
  {
    // One number every management write raises after it is stored (Store.recordConfigChange): an
    // instance that missed the cluster bus's message (Redis down) notices the change with one point
    // read a second instead of waiting for the 30 s backstop reload (QA15 cluster #6). No row until
    // the first change: the read answers 0.
    id: '0012_config_changes',
    statements: [
      `CREATE TABLE config_changes (
        id INTEGER PRIMARY KEY,
        version INTEGER NOT NULL
      )`,
    ],
  },
  {
    // A provider key is stored once per owner (an account, or the platform) and provider: the live
    // keys' fingerprints are unique there, so two workers or instances adding the same key at once
    // store it once, whichever of them checks (QA17: each checked its own snapshot, and both stored
    // it). A database written before may hold such twins already: every live copy but the earliest is
    // marked `duplicate_of` the earliest and left out of the index, so the migration cannot fail on
    // them and nothing is deleted behind the operator's back (both copies list the same fingerprint).
    // Platform keys have no account_id, and NULLs are distinct in a unique index: their own index.
    id: '0013_provider_keys_stored_once',
    statements: [
      `ALTER TABLE provider_keys ADD COLUMN duplicate_of TEXT`,
      `UPDATE provider_keys SET duplicate_of = (
        SELECT earliest.id FROM provider_keys AS earliest
        WHERE earliest.deleted_at IS NULL AND earliest.owner = provider_keys.owner
          AND (earliest.account_id = provider_keys.account_id OR (earliest.account_id IS NULL AND provider_keys.account_id IS NULL))
          AND earliest.provider = provider_keys.provider AND earliest.fingerprint = provider_keys.fingerprint
        ORDER BY earliest.created_at, earliest.id LIMIT 1
      ) WHERE deleted_at IS NULL`,
      `UPDATE provider_keys SET duplicate_of = NULL WHERE duplicate_of = id`,
      `CREATE UNIQUE INDEX provider_keys_account_stored_once ON provider_keys(account_id, provider, fingerprint)
        WHERE owner = 'account' AND deleted_at IS NULL AND duplicate_of IS NULL`,
      `CREATE UNIQUE INDEX provider_keys_platform_stored_once ON provider_keys(provider, fingerprint)
        WHERE owner = 'platform' AND deleted_at IS NULL AND duplicate_of IS NULL`,
    ],
  },
];

export const MIGRATIONS: Migration[] = [
  {
    id: '0001_core',
    statements: [
      `CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
      )`,
      `CREATE TABLE gateway_keys (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        masked_key TEXT NOT NULL,
        team_id TEXT,
        byok_access INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      )`,
      `CREATE UNIQUE INDEX gateway_keys_hash ON gateway_keys(key_hash)`,
      `CREATE INDEX gateway_keys_account ON gateway_keys(account_id)`,
      `CREATE TABLE provider_keys (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL CHECK (owner IN ('account', 'platform')),
        account_id TEXT REFERENCES accounts(id),
        provider TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        key_version INTEGER NOT NULL,
        crypto_backend TEXT NOT NULL,
        masked_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        organization_id TEXT,
        settings TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        weight REAL NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        deleted_at TEXT
      )`,
      `CREATE INDEX provider_keys_account ON provider_keys(account_id, provider)`,
      `CREATE TABLE usage_records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        gateway_key_id TEXT NOT NULL,
        team_id TEXT,
        project_tag TEXT,
        endpoint TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        requested_model TEXT NOT NULL,
        provider_key_id TEXT,
        byok INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_code TEXT,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        latency_ms REAL NOT NULL,
        streamed INTEGER NOT NULL,
        fallback_attempts INTEGER NOT NULL,
        created_at TEXT NOT NULL
      )`,
      `CREATE INDEX usage_account_time ON usage_records(account_id, created_at)`,
      `CREATE UNIQUE INDEX usage_request ON usage_records(request_id)`,
    ],
  },
  {
    id: '0002_platform_settings',
    statements: [
      `CREATE TABLE platform_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
    ],
  },
  {
    // Clients may send their own X-Request-Id, and may repeat it: a unique index would silently drop
    // the second request's usage. A flush is one transaction, so a retried batch cannot double count.
    id: '0003_usage_request_not_unique',
    statements: [`DROP INDEX usage_request`, `CREATE INDEX usage_request ON usage_records(request_id)`],
  },
  {
    // Rows whose token counts are Keyway's estimate (a stream cut before the provider's usage) or
    // were capped (absurd counts from a provider). Existing rows are the provider's own figures.
    id: '0004_usage_estimated',
    statements: [`ALTER TABLE usage_records ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0`],
  },
  {
    // Per-key governance (environment, allowed_ips, rate limits) as JSON: policies read it from the snapshot.
    id: '0005_gateway_key_settings',
    statements: [`ALTER TABLE gateway_keys ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'`],
  },
  {
    // Cost truth: an unpriced call is booked as unpriced (cost_usd 0 with unpriced = 1), never as a
    // free one; Anthropic's 1-hour cache writes are priced apart from the 5-minute ones.
    id: '0006_usage_cost_truth',
    statements: [
      `ALTER TABLE usage_records ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE usage_records ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0`,
    ],
  },
  {
    // A deleted provider key is never decrypted again: its ciphertext is wiped (deletes do so since).
    id: '0007_wipe_deleted_key_ciphertext',
    statements: [`UPDATE provider_keys SET ciphertext = '', crypto_backend = 'wiped' WHERE deleted_at IS NOT NULL`],
  },
  // From here on, plain DDL written once for both dialects (below).
  ...PLAIN_MIGRATIONS,
];
