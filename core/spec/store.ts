// The store contract: everything Keyway keeps durably, in domain types. The embedded SQLite store
// (plugins/store-sqlite) implements it; another database is a sibling plugin that passes the same
// conformance suite (test/conformance/store.ts). The request path never awaits a store: it reads the
// in-memory snapshot built from it, and usage reaches it in batches.

import type { PrincipalRole } from './principal.ts';
import type { KeyOwner, ProviderKeySettings } from './provider.ts';
import type { UsageFold } from './usage-fold.ts';

export interface AccountRecord {
  id: string;
  name: string;
  createdAt: string;
  settings: Record<string, unknown>;
}

export interface GatewayKeyRecord {
  id: string;
  accountId: string;
  role: PrincipalRole;
  name: string;
  /** SHA-256 of the key: the key itself is never stored. */
  keyHash: string;
  maskedKey: string;
  teamId: string | null;
  byokAccess: boolean;
  /** Per-key governance read by policies: `environment`, `allowed_ips`, `requests_per_minute`, `tokens_per_minute`. */
  settings: Record<string, unknown>;
  createdAt: string;
  revokedAt: string | null;
}

/** A gateway key to store: the record without what the store sets, team, access and settings optional. */
export type NewGatewayKey = Omit<GatewayKeyRecord, 'teamId' | 'byokAccess' | 'settings' | 'createdAt' | 'revokedAt'> & {
  teamId?: string | null;
  byokAccess?: boolean;
  settings?: Record<string, unknown>;
};

/** A provider key as stored: the secret only as a crypto backend's ciphertext. */
export interface StoredProviderKey {
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
  createdAt: string;
  deletedAt: string | null;
}

/** What `replaceProviderKeySecret` writes. */
export interface ProviderKeySecret {
  ciphertext: string;
  cryptoBackend: string;
  keyVersion: number;
  fingerprint: string;
}

export type NewProviderKey = Omit<StoredProviderKey, 'createdAt' | 'deletedAt'>;

/** A provider key's sealed secret, deleted rows included: what a master-key re-wrap walks. */
export type SealedProviderKey = Pick<
  StoredProviderKey,
  'id' | 'owner' | 'accountId' | 'provider' | 'ciphertext' | 'keyVersion' | 'cryptoBackend' | 'status' | 'deletedAt'
> & {
  /** Where this row sits in the store's walk order; the next page starts after it. */
  cursor: string;
};

/** A re-sealed secret to store, only if the row still holds `expectedCiphertext` (compare and swap). */
export interface ProviderKeyReseal {
  id: string;
  expectedCiphertext: string;
  ciphertext: string;
  keyVersion: number;
  cryptoBackend: string;
}

/** Which request, and whose: what a usage row and an in-flight mark (core/accounting/in-flight-marks.ts) both name. */
export interface RequestIdentity {
  requestId: string;
  accountId: string;
  gatewayKeyId: string;
  teamId: string | null;
  projectTag: string | null;
  endpoint: string;
}

/** One request as booked: tokens, cost, who and where. */
export interface UsageRecord extends RequestIdentity {
  provider: string | null;
  model: string | null;
  requestedModel: string;
  providerKeyId: string | null;
  byok: boolean;
  status: number;
  errorCode: string | null;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Every cache write, 5-minute and 1-hour alike. */
  cacheWriteTokens: number;
  /** The part of `cacheWriteTokens` written for one hour (Anthropic), priced at its own rate; stores return 0 when not set. */
  cacheWrite1hTokens?: number;
  reasoningTokens: number;
  /** What the call cost in USD (list price, or the provider's own reported cost); null when the model is unpriced, never a made-up 0. */
  costUsd: number | null;
  latencyMs: number;
  streamed: boolean;
  fallbackAttempts: number;
  createdAt: string;
  /**
   * True when the token counts are not the provider's own figures: Keyway's estimate for a stream cut
   * before the provider sent its usage (the client left, or the shutdown drain ended it), or counts
   * capped because the provider reported absurd ones. Stores return false when it was not set.
   */
  usageEstimated?: boolean;
  /**
   * True when an audit asked for this request's audit event (RequestContext.usageAudit): the event is
   * read from this row. Stores return false when it was not set. The three fields below are null unless
   * it is true: the client's IP and the role of the key are kept only for an audited request.
   */
  audited?: boolean;
  clientIp?: string | null;
  actorRole?: string | null;
  /** SHA-256 (hex) of the request body, when the audit asked for a fingerprint. */
  requestSha256?: string | null;
}

/** What identifies a booked usage row when the crash journal is replayed (core/accounting/usage-journal.ts). */
export interface UsageKey {
  requestId: string;
  accountId: string;
  createdAt: string;
}

export interface UsageSummaryFilter {
  accountId: string;
  from: string;
  to: string;
  gatewayKeyId?: string;
  teamId?: string;
}

export interface UsageSummaryRow {
  provider: string | null;
  model: string | null;
  teamId: string | null;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** The priced requests' cost; unpriced requests add nothing to it and are counted in `unpricedRequests`. */
  costUsd: number;
  /** Requests booked with no price (costUsd null): their cost is unknown, not $0. */
  unpricedRequests: number;
}

/** A forward-only schema change, in one store dialect's SQL. */
export interface Migration {
  id: string;
  statements: readonly string[];
}

/**
 * Statements that keep a plugin's usage roll-ups in step with the usage rows, by store dialect. The store
 * runs them inside each usage batch's transaction, right after the batch's rows, with `?1` and `?2`
 * bound to the first and last `usage_records.id` of the batch: one grouped statement per table and
 * batch, where a trigger would run once per row (docs/analytics.md, "Roll-ups").
 */
export type PluginUsageRollups = Readonly<Record<string, readonly string[]>>;

export interface UsageRollup {
  plugin: string;
  statements: readonly string[];
}

/** Migrations a plugin ships, by store dialect (`sqlite`, `postgres`); ids are namespaced by plugin. */
export type PluginMigrations = Readonly<Record<string, readonly Migration[]>>;

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
  latest: string | undefined;
}

export interface Store {
  /** The driver in use (`bun-sqlite`, `libsql`…), for logs and `/ready`. */
  readonly driver: string;
  /** The SQL dialect plugin migrations and queries must be written in. */
  readonly dialect: string;

  /** Applies the core's pending migrations, then each plugin's, in order; each all or none, recorded once. */
  migrate(plugins: ReadonlyArray<{ plugin: string; migrations: readonly Migration[] }>): Promise<MigrationReport>;
  /** Rejects when the store cannot answer. */
  ping(): Promise<void>;
  /**
   * Optional: whether an error this store threw means the database cannot answer now but may later
   * (connection refused or lost, a server that takes no connections, SQLite busy or locked). The core
   * answers such a failure 503 `storage_unavailable` with Retry-After instead of 500 `internal_error`
   * (core/storage-availability.ts), for its own calls and the plugins' alike.
   */
  isUnavailable?(error: unknown): boolean;
  close(): void;

  listAccounts(): Promise<AccountRecord[]>;
  getAccount(id: string): Promise<AccountRecord | undefined>;
  insertAccount(id: string, name: string): Promise<AccountRecord>;
  updateAccountSettings(id: string, settings: Record<string, unknown>): Promise<void>;

  listActiveGatewayKeys(): Promise<GatewayKeyRecord[]>;
  /** Active (not revoked) keys of a role. */
  countGatewayKeys(role: PrincipalRole): Promise<number>;
  insertGatewayKey(key: NewGatewayKey): Promise<GatewayKeyRecord>;
  /** False when no active key of that id exists in that account. */
  revokeGatewayKey(id: string, accountId: string): Promise<boolean>;

  listActiveProviderKeys(): Promise<StoredProviderKey[]>;
  /**
   * All or none. A live key is stored once: a key whose owner, account, provider and fingerprint a
   * live (not deleted) key already has is refused, the whole batch with it (a unique index, so that
   * workers and instances adding one key at once store it once; core/credentials/stored-once.ts).
   */
  insertProviderKeys(keys: readonly NewProviderKey[]): Promise<StoredProviderKey[]>;
  updateProviderKeyStatus(id: string, status: string): Promise<void>;
  /**
   * Optional (master-key rotation needs both): every provider key row, deleted ones too, `limit` at a
   * time in the store's own stable order (physical order, so a batch of updates touches few pages),
   * the first after `cursor` (empty string: from the start).
   */
  listSealedProviderKeys?(cursor: string, limit: number): Promise<SealedProviderKey[]>;
  /** Stores re-sealed secrets in one short transaction; answers the ids whose row still held the expected ciphertext. */
  resealProviderKeys?(updates: readonly ProviderKeyReseal[]): Promise<string[]>;
  /** Soft delete, scoped to the owner; false when there was nothing to delete. */
  deleteProviderKey(id: string, owner: KeyOwner, accountId: string | null): Promise<boolean>;
  /**
   * Optional: replaces a key's secret (its ciphertext, or a reference in never-store mode) and makes
   * sure the old value is in no file of the store any more (overwritten, journal checkpointed, space
   * reclaimed). False when no active key of that id exists. Stores without it cannot convert keys.
   * Refused (throws) when the new fingerprint is another live key's of the same owner and provider.
   */
  replaceProviderKeySecret?(id: string, secret: ProviderKeySecret): Promise<boolean>;
  /**
   * Optional: rows of `tables` were overwritten or deleted (a ciphertext re-wrapped under a newer master
   * key, a sealed secret replaced or removed); makes sure no earlier version of them is left in the
   * store's files, where it would still open for whoever holds the key it was sealed under and a copy
   * of the files. The embedded store checkpoints its WAL into the file and empties it; with `rebuild` it
   * also runs VACUUM (the instance waits: seconds a gigabyte), for copies in free space that databases
   * written before it zeroed freed content still hold. PostgreSQL vacuums the tables.
   */
  reclaimReplacedRows?(tables: readonly string[], options?: { rebuild?: boolean }): Promise<void>;

  listPlatformSettings(): Promise<Record<string, unknown>>;
  setPlatformSetting(key: string, value: unknown): Promise<void>;

  /**
   * Optional, and what the snapshot load uses when present: runs `read` with a view of this store
   * whose reads (the `list…` methods, `getAccount`, `configChangeVersion`, `query`) all see one
   * consistent state of the database, the state as of the view's first read, whatever is written
   * meanwhile; answers what `read` answers, and ends the view either way. The view is for reading
   * only (a store may refuse a write through it) and only until `read` settles. Writes through the
   * store itself go on and are not blocked by it (SQLite in WAL mode, PostgreSQL's MVCC): the
   * embedded store reads through a deferred read transaction on a connection of its own, PostgreSQL
   * through a `REPEATABLE READ READ ONLY` transaction. The snapshot is loaded by several independent
   * reads without it, so a management write landing between two of them could give a snapshot that
   * never was in the database (a member key whose team is missing) until the next reload
   * (docs/architecture.md, "The store and counters contracts").
   */
  readConsistent?<Result>(read: (view: Store) => Promise<Result>): Promise<Result>;

  /**
   * Optional, both or neither: a number that only grows. The core raises it after every management
   * write (`recordConfigChange`, once the write is stored) and reads it (`configChangeVersion`, 0
   * before the first change) before each snapshot load and once a second, so an instance that missed
   * the cluster bus's message (Redis unreachable) notices a change with one point read
   * (docs/deployment.md, "When the bus fails"). Without them, only the bus and the backstop reload carry changes.
   */
  configChangeVersion?(): Promise<number>;
  recordConfigChange?(): Promise<void>;

  /**
   * The plugins' roll-up statements in this store's dialect, set once after `migrate`; `insertUsage`
   * runs them in each batch's transaction. A store without it cannot keep roll-ups (the start is refused
   * when a loaded plugin ships them for its dialect).
   */
  setUsageRollups?(rollups: readonly UsageRollup[]): void;
  /**
   * Optional: the plugins' roll-up tables declared as data (core/spec/usage-fold.ts), set once after
   * `migrate`, before `setUsageRollups`. `insertUsage` sums each batch into them in the batch's
   * transaction, before the roll-up statements. A store without it is given those plugins' SQL instead.
   */
  setUsageFolds?(folds: readonly UsageFold[]): void;
  /** One batch, all or none (its roll-ups included): a failed write leaves nothing behind, so a retry cannot double count. */
  insertUsage(rows: readonly UsageRecord[]): Promise<void>;
  /**
   * Optional: `insertUsage` for a batch the usage journal already encoded. `lines` holds the same rows
   * as journal lines (core/wire/usage-journal-text.ts), each ended by a newline, in the same order. A
   * store that writes on another thread sends that text instead of encoding the rows a second time.
   * Without it, every batch goes through `insertUsage`.
   */
  insertJournaledUsage?(rows: readonly UsageRecord[], lines: string): Promise<void>;
  /**
   * Optional, preferred to `insertJournaledUsage`: the same batch given as where the usage journal
   * wrote it, bytes `[start, end)` of a sealed segment file holding exactly these rows as journal
   * lines, with the journal's in-flight marks between them (lines that are no row, which
   * `rowsFromJournalText` and `fieldsFromJournalText` in core/wire/usage-journal-text.ts skip). A store
   * that writes on another thread reads them there, so the gateway's thread neither keeps the text in
   * memory nor copies it to that thread. The file is not removed before this settles. Given how many
   * rows the range holds, not the rows: a segment past KEYWAY_USAGE_BUFFER_MAX lives in its file only,
   * and reading it back on the gateway's thread to hand over rows the store reads again was a stall
   * of its own; a store that cannot read the file on another thread reads it here.
   */
  insertJournalRange?(count: number, range: JournalRange): Promise<void>;
  listUsage(accountId: string): Promise<UsageRecord[]>;
  /** Usage of an account between two instants (ISO 8601, `from` inclusive, `to` exclusive), grouped by provider, model and team. */
  summarizeUsage(filter: UsageSummaryFilter): Promise<UsageSummaryRow[]>;
  /**
   * Optional: which of these rows' keys are booked already, so a journal replay books no row twice.
   * Given whole keys, so a store can look them up by creation time first: an index led by the request
   * id alone costs a random B-tree page per insert when clients send random `X-Request-Id`s. A store
   * without it is read with `listUsage`, account by account.
   */
  findUsageKeys?(keys: readonly UsageKey[]): Promise<UsageKey[]>;

  /**
   * Optional: appends rows to a plugin table in one transaction, all or none, with a prepared statement.
   * For plugins that write many small rows (audit events): the embedded store writes them on its writer
   * thread, beside the usage batches, instead of on the gateway's.
   */
  appendRows?(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Promise<void>;
  /** Plugin tables, in `dialect`'s SQL with `?` placeholders, one statement per call: for plugins that ship migrations. */
  query(sql: string, parameters?: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  execute(sql: string, parameters?: readonly unknown[]): Promise<void>;
}

export interface StoreOpenOptions {
  dataDirectory: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** What a store plugin contributes: the URL schemes it accepts and how to open one. */
export interface StoreDriver {
  name: string;
  accepts(url: string): boolean;
  open(url: string, options: StoreOpenOptions): Promise<Store>;
}

/** Where a batch of usage rows sits in a usage journal segment (Store.insertJournalRange). */
export interface JournalRange {
  path: string;
  /** The first byte of the batch's first line. */
  start: number;
  /** One past the last byte of its last line (a newline). */
  end: number;
}
