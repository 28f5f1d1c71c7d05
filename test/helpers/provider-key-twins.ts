// Provider keys stored twice, as a database written before migration 0013_provider_keys_stored_once
// could hold them (two workers adding the same key at once each stored it): the rows, in plain SQL
// both dialects take, and what the migration must make of them.

const row = (id: string, owner: 'account' | 'platform', accountId: string | null, provider: string, createdAt: string, deletedAt: string | null = null) =>
  `INSERT INTO provider_keys (id, owner, account_id, provider, ciphertext, key_version, crypto_backend, masked_key, fingerprint, settings, status, weight, created_at, deleted_at)
   VALUES ('${id}', '${owner}', ${accountId === null ? 'NULL' : `'${accountId}'`}, '${provider}', 'kw1.local.v1.${id}', 1, 'local', 'sk-…twin', 'fp_twin', '{}',
     '${deletedAt === null ? 'active' : 'deleted'}', 1, '${createdAt}', ${deletedAt === null ? 'NULL' : `'${deletedAt}'`})`;

/** The accounts the rows belong to. */
export const TWIN_ACCOUNTS = [
  `INSERT INTO accounts (id, name, created_at) VALUES ('acc_a', 'A', '2026-01-01T00:00:00.000Z')`,
  `INSERT INTO accounts (id, name, created_at) VALUES ('acc_b', 'B', '2026-01-01T00:00:00.000Z')`,
];

/**
 * One fingerprint everywhere: three live copies in account A (the earliest by time has the largest
 * id, so the order is by time, not id) and a deleted one before them, one copy in account B, one under
 * another provider in A, two platform copies.
 */
export const TWIN_ROWS = [
  row('pk_a_deleted', 'account', 'acc_a', 'openai', '2026-01-01T09:00:00.000Z', '2026-01-01T09:30:00.000Z'),
  row('pk_a_z_first', 'account', 'acc_a', 'openai', '2026-01-02T10:00:00.000Z'),
  row('pk_a_m_second', 'account', 'acc_a', 'openai', '2026-01-02T10:00:00.001Z'),
  row('pk_a_a_third', 'account', 'acc_a', 'openai', '2026-01-03T10:00:00.000Z'),
  row('pk_a_groq', 'account', 'acc_a', 'groq', '2026-01-02T10:00:00.000Z'),
  row('pk_b_only', 'account', 'acc_b', 'openai', '2026-01-02T10:00:00.000Z'),
  row('pk_p_first', 'platform', null, 'openai', '2026-01-02T10:00:00.000Z'),
  row('pk_p_second', 'platform', null, 'openai', '2026-01-02T10:00:00.000Z'),
];

/** Each row's `duplicate_of` once migrated: every live copy but the earliest names the earliest (ties by id). */
export const TWINS_MIGRATED: Record<string, string | null> = {
  pk_a_deleted: null,
  pk_a_z_first: null,
  pk_a_m_second: 'pk_a_z_first',
  pk_a_a_third: 'pk_a_z_first',
  pk_a_groq: null,
  pk_b_only: null,
  pk_p_first: null,
  pk_p_second: 'pk_p_first',
};

/** A live copy of one the rows hold, for owner A's openai keys or the platform's: the unique indexes refuse it. */
export const ANOTHER_TWIN = {
  account: row('pk_a_again', 'account', 'acc_a', 'openai', '2026-02-01T00:00:00.000Z'),
  platform: row('pk_p_again', 'platform', null, 'openai', '2026-02-01T00:00:00.000Z'),
  /** A key of account B's own, not a twin of A's: stored. */
  elsewhere: row('pk_b_groq', 'account', 'acc_b', 'groq', '2026-02-01T00:00:00.000Z'),
};

export const UPGRADE = '0013_provider_keys_stored_once';
