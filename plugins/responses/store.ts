// Stored responses (`store`, `previous_response_id`, `GET`/`DELETE /v1/responses/{id}`). Each stored
// response keeps the whole conversation so far as Responses input items plus the answer, sealed with
// the gateway's crypto backend and bound to its account and id, so a row copied elsewhere cannot be
// opened. The row is written once the answer is made and before it is sent (the final event of a
// stream waits for it: StreamEncoder.settle), so a client holding the answer finds the response on
// every worker and instance (a write that fails is answered `store: false`, and nothing is kept: see
// save); continuations read a bounded in-memory copy first, the database only on
// a miss (after a restart, an evicted entry, or a response made on another worker or instance).
// Every worker and instance keeps its own copy: a deletion is told to all of them on the cluster bus,
// and GET and DELETE ask the database whether the row still exists (memory only supplies the content).

import { KeywayError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import type { Services } from '../../core/spec/services.ts';
import type { Migration } from '../../core/spec/store.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';

type Json = Record<string, unknown>;

export const RESPONSES_TABLE = 'responses_stored';

/** Bus topic: the message is the id of a response deleted on one member; every other drops its copy. */
export const RESPONSES_DELETED_TOPIC = 'responses:deleted';

const SQLITE_MIGRATIONS: Migration[] = [
  {
    id: '0001_responses_stored',
    statements: [
      `CREATE TABLE ${RESPONSES_TABLE} (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        team_id TEXT,
        created_at INTEGER NOT NULL,
        backend TEXT NOT NULL,
        ciphertext TEXT NOT NULL
      )`,
      `CREATE INDEX ${RESPONSES_TABLE}_created ON ${RESPONSES_TABLE} (created_at)`,
    ],
  },
  {
    // The key version each response was sealed under, indexed with its backend: the start's check for
    // a removed master key version counts them from the index instead of reading every ciphertext.
    // Rows written before it keep NULL; their version is read from the ciphertext.
    id: '0002_responses_key_version',
    statements: [
      `ALTER TABLE ${RESPONSES_TABLE} ADD COLUMN key_version INTEGER`,
      `CREATE INDEX ${RESPONSES_TABLE}_key_version ON ${RESPONSES_TABLE} (backend, key_version)`,
    ],
  },
];

/** The table definitions are plain SQL: PostgreSQL's are derived from them (core/spec/sql-dialects.ts). */
export const RESPONSES_MIGRATIONS = { sqlite: SQLITE_MIGRATIONS, postgres: postgresMigrationsFromSqlite(SQLITE_MIGRATIONS) };

export interface StoredResponse {
  accountId: string;
  teamId: string | undefined;
  createdAt: number;
  /** The conversation up to and including this response's output, as Responses input items. */
  items: Json[];
  /** The response object as it was answered. */
  response: Json;
}

export interface ResponseStoreOptions {
  retentionMs: number;
  cacheEntries: number;
}

function bindingOf(accountId: string, id: string): string {
  return `responses:${accountId}:${id}`;
}

/**
 * The stored responses for master-key rotation. Contributed even when storing is off: rows written
 * before it was turned off stay sealed until retention removes them.
 */
export function storedResponsesHolder(services: Pick<Services, 'store'>): CiphertextHolder {
  return tableCiphertextHolder(services, {
    name: `responses:${RESPONSES_TABLE}`,
    table: RESPONSES_TABLE,
    idColumn: 'id',
    ciphertextColumn: 'ciphertext',
    backendColumn: 'backend',
    keyVersionColumn: 'key_version',
    bindingColumns: ['account_id'],
    binding: (row) => bindingOf(String(row.account_id), String(row.id)),
  });
}

/**
 * A stored response is the account's; one a team member made is its team's (and the account admins').
 * A team's admin member is an admin of its own team only (docs/teams.md): like every member key it reads
 * its own team's responses, never another team's, so the account-wide pass needs an admin key of no team.
 */
export function mayRead(stored: Pick<StoredResponse, 'accountId' | 'teamId'>, principal: Principal): boolean {
  if (stored.accountId !== principal.accountId) return false;
  if (stored.teamId === undefined || principal.role === 'operator') return true;
  if (principal.role === 'admin' && principal.teamId === undefined) return true;
  return principal.teamId === stored.teamId;
}

export class ResponseStore {
  /** Insertion-ordered: the first entry is the least recently used. */
  private readonly cache = new Map<string, StoredResponse>();
  /** What the route read from the database for one request, by its headers (the lifecycle's context holds the same object). */
  private readonly preloaded = new WeakMap<Headers, Map<string, StoredResponse>>();
  /**
   * Responses the route could not read for one request, by its headers, with why (503: the database
   * away, or sealed under a master key version this instance lacks): answered instead of "not found".
   */
  private readonly unreadable = new WeakMap<Headers, Map<string, KeywayError>>();
  /** Writes under way, by id: until one lands, only this process's memory knows the response. */
  private readonly writing = new Map<string, Promise<boolean>>();
  private listening = false;

  /** Holds a response read before the lifecycle, for that request only, whatever the cache evicts meanwhile. */
  pin(headers: Headers, id: string, stored: StoredResponse): void {
    const pinned = this.preloaded.get(headers);
    if (pinned === undefined) this.preloaded.set(headers, new Map([[id, stored]]));
    else pinned.set(id, stored);
  }

  /**
   * A response the route could not read for this request, and why: a KeywayError (a 503 that says why
   * and when to retry) is answered by forRequest instead of "not found"; any other failure is left as
   * a miss, as before.
   */
  pinFailure(headers: Headers, id: string, error: unknown): void {
    if (!(error instanceof KeywayError)) return;
    const failures = this.unreadable.get(headers);
    if (failures === undefined) this.unreadable.set(headers, new Map([[id, error]]));
    else failures.set(id, error);
  }

  /**
   * A response a request continues or references: one pinned for it, else the cache. One the route
   * could not read for a reason that passes (pinFailure) throws that reason: the response exists, and
   * a 404 "not stored" made clients start the conversation over (QA18: a response sealed under a master
   * key version a not-yet-restarted instance lacks; the database unreachable from this instance).
   */
  forRequest(headers: Headers, id: string, principal: Principal): StoredResponse | undefined {
    const pinned = this.preloaded.get(headers)?.get(id);
    if (pinned !== undefined && mayRead(pinned, principal)) return pinned;
    const cached = this.cached(id, principal);
    if (cached !== undefined) return cached;
    const failure = this.unreadable.get(headers)?.get(id);
    if (failure !== undefined) throw failure;
    return undefined;
  }

  constructor(
    private readonly services: Services,
    private readonly logger: Logger,
    private readonly options: ResponseStoreOptions,
  ) {}

  /**
   * Keeps a response: in memory at once, and sealed in the database by the promise returned, which the
   * answer waits for. It never rejects: it resolves true once the row is written, false when the write
   * failed (logged; the copy in memory is dropped too, so the response is not stored anywhere, and the
   * answer says `store: false`: a client is never told a response is stored that a later
   * `previous_response_id` or GET would not find on another worker or instance, or after a restart).
   * `redactKey` (RequestContext.served) removes the provider key of the call that answered, should its
   * upstream have echoed it: the text sealed is the one it checked, serialised once, here.
   */
  save(id: string, content: Omit<StoredResponse, 'createdAt'>, redactKey?: (text: string) => string): Promise<boolean> {
    const text = JSON.stringify({ items: content.items, response: content.response });
    const kept = redactKey?.(text) ?? text;
    const stored: StoredResponse = {
      ...content,
      ...(kept === text ? {} : (JSON.parse(kept) as Pick<StoredResponse, 'items' | 'response'>)),
      createdAt: this.services.clock.now(),
    };
    this.cacheSet(id, stored);
    const written = this.persist(id, stored, kept)
      .then(() => true)
      .catch((error: unknown) => {
        this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'a stored response could not be written');
        if (this.cache.get(id) === stored) this.cache.delete(id);
        return false;
      })
      .finally(() => {
        if (this.writing.get(id) === written) this.writing.delete(id);
      });
    this.writing.set(id, written);
    return written;
  }

  /** The response if it is in memory and the caller may read it (the request path never waits). */
  cached(id: string, principal: Principal): StoredResponse | undefined {
    const stored = this.cache.get(id);
    if (stored === undefined || !mayRead(stored, principal) || this.expired(stored)) return undefined;
    this.cache.delete(id);
    this.cache.set(id, stored);
    return stored;
  }

  /** From memory, else from the database (then kept in memory): what a continuation may use before its lifecycle. */
  async load(id: string, principal: Principal): Promise<StoredResponse | undefined> {
    return this.cached(id, principal) ?? (await this.read(id, principal));
  }

  /**
   * As the database has it now, for GET and DELETE: a row deleted or expired on any worker or instance
   * is gone here too, whatever this process's memory holds (a copy found stale is dropped). Memory
   * supplies the content when it has it, so the read is one indexed row and no decryption; a response
   * whose write is still under way here is answered from memory (nobody can have deleted it yet).
   */
  async read(id: string, principal: Principal): Promise<StoredResponse | undefined> {
    const pending = this.writing.has(id) ? this.cached(id, principal) : undefined;
    if (pending !== undefined) return pending;
    const rows = await this.services.store.query(
      `SELECT account_id, team_id, created_at, backend, ciphertext FROM ${RESPONSES_TABLE} WHERE id = ? AND account_id = ? AND created_at >= ?`,
      [id, principal.accountId, this.cutoff()],
    );
    const row = rows[0];
    if (row === undefined) {
      if (this.cache.get(id)?.accountId === principal.accountId) this.cache.delete(id);
      return undefined;
    }
    const owner = { accountId: String(row.account_id), teamId: row.team_id === null || row.team_id === undefined ? undefined : String(row.team_id) };
    if (!mayRead(owner, principal)) return undefined;
    const stored = this.cached(id, principal) ?? { ...owner, createdAt: Number(row.created_at), ...(await this.open(id, principal, row)) };
    this.cacheSet(id, stored);
    return stored;
  }

  /**
   * False when there was nothing the caller may delete (or another request deleted it first). The
   * other workers and instances drop their copies when the bus tells them, before the answer leaves.
   */
  async delete(id: string, principal: Principal): Promise<boolean> {
    // A write still under way lands first: deleting before it would let it bring the response back.
    await this.writing.get(id);
    const stored = await this.read(id, principal);
    if (stored === undefined) return false;
    this.cache.delete(id);
    const deleted = await this.services.store.query(`DELETE FROM ${RESPONSES_TABLE} WHERE id = ? AND account_id = ? RETURNING id`, [id, principal.accountId]);
    await this.tellDeleted(id);
    return deleted.length > 0;
  }

  /**
   * Retention: forgets what is older than the retention period. Run on one member; the others need no
   * message, as every read (memory included) already refuses what is past the same cutoff.
   */
  async expire(): Promise<void> {
    const cutoff = this.cutoff();
    for (const [id, stored] of this.cache) if (stored.createdAt < cutoff) this.cache.delete(id);
    await this.services.store.query(`DELETE FROM ${RESPONSES_TABLE} WHERE created_at < ?`, [cutoff]);
  }

  private async open(id: string, principal: Principal, row: Record<string, unknown>): Promise<Pick<StoredResponse, 'items' | 'response'>> {
    const open = this.services.secrets.openContent ?? this.services.secrets.open;
    const plaintext = await open({ backend: String(row.backend), ciphertext: String(row.ciphertext) }, bindingOf(principal.accountId, id));
    const content = JSON.parse(plaintext) as { items: Json[]; response: Json };
    return { items: content.items, response: content.response };
  }

  private async tellDeleted(id: string): Promise<void> {
    try {
      await this.services.cluster.publish(RESPONSES_DELETED_TOPIC, id);
    } catch (error) {
      // The row is gone, so GET and DELETE say so everywhere; a continuation elsewhere may use its copy until evicted.
      this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not tell the cluster about a deleted response');
    }
  }

  /**
   * Joins the bus when the first response is kept (nothing to drop before; the bus is bound only once
   * the gateway runs). After an outage of the bus, deletions may have been missed: every copy goes.
   */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    const cluster = this.services.cluster;
    cluster.subscribe(RESPONSES_DELETED_TOPIC, (id) => this.cache.delete(id));
    cluster.onResume?.(() => this.cache.clear());
  }

  private cutoff(): number {
    return this.services.clock.now() - this.options.retentionMs;
  }

  private expired(stored: StoredResponse): boolean {
    return stored.createdAt < this.cutoff();
  }

  private cacheSet(id: string, stored: StoredResponse): void {
    this.listen();
    this.cache.delete(id);
    this.cache.set(id, stored);
    while (this.cache.size > this.options.cacheEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  private async persist(id: string, stored: StoredResponse, text: string): Promise<void> {
    const sealed = await this.services.secrets.seal(text, bindingOf(stored.accountId, id));
    await this.services.store.query(
      `INSERT INTO ${RESPONSES_TABLE} (id, account_id, team_id, created_at, backend, key_version, ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [id, stored.accountId, stored.teamId ?? null, stored.createdAt, sealed.backend, sealed.keyVersion, sealed.ciphertext],
    );
  }
}

/** The items a stored response was answered from: its conversation without its own output. */
export function inputItemsOf(stored: StoredResponse): Json[] {
  const output = Array.isArray(stored.response.output) ? stored.response.output.length : 0;
  return stored.items.slice(0, Math.max(0, stored.items.length - output));
}
