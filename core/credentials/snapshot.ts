// The in-memory snapshot of configuration the request path reads: gateway keys by hash, provider
// keys by account and provider. Management writes go to the database first, then `refresh()`
// swaps in a new snapshot; a request never waits on the database.

import type { Logger } from '../logger.ts';
import type { Contributed } from '../registry.ts';
import { CLUSTER_TOPICS, type ClusterBus } from '../spec/cluster.ts';
import type { KeyOwner, Principal, ProviderKeyRecord, ResolvedKeys, SnapshotSection } from '../spec/plugin.ts';
import type { SnapshotView } from '../spec/services.ts';
import type { AccountRecord, GatewayKeyRecord, Store, StoredProviderKey } from '../spec/store.ts';
import { KEY_REFERENCE_BACKEND, type KeyReference } from '../spec/key-source.ts';
import { parseStoredReference } from './reference-format.ts';
import { DEFAULT_ACCOUNT_ID } from '../spec/principal.ts';

export interface AccountSnapshot {
  id: string;
  name: string;
  settings: Record<string, unknown>;
}

export interface SealedSecret {
  ciphertext: string;
  binding: string;
  backend: string;
}

export interface KeyListing extends ProviderKeyRecord {
  /** Set when the key is held as a reference resolved by a key source (never-store mode), not as a ciphertext. */
  keyReference?: KeyReference;
  maskedKey: string;
  fingerprint: string;
  createdAt: string;
}

export interface ConfigSnapshot extends SnapshotView {
  version: number;
  principalsByHash: ReadonlyMap<string, Principal>;
  accounts: ReadonlyMap<string, AccountSnapshot>;
  /** accountId → provider → keys. */
  accountKeys: ReadonlyMap<string, ReadonlyMap<string, readonly KeyListing[]>>;
  /** provider → the operator's platform keys. */
  platformKeys: ReadonlyMap<string, readonly KeyListing[]>;
  keysById: ReadonlyMap<string, KeyListing>;
  secrets: ReadonlyMap<string, SealedSecret>;
  /** Operator-wide settings (model-class overrides, platform fees). */
  platformSettings: Readonly<Record<string, unknown>>;
  /** Plugin snapshot sections, by name. */
  sections: ReadonlyMap<string, unknown>;
}

/** The account every install starts with; defined in the spec, where the key sources read it too. */
export { DEFAULT_ACCOUNT_ID };
const EMPTY_KEYS: ReadonlyMap<string, readonly ProviderKeyRecord[]> = new Map();

/** Binds a ciphertext to its row: copied into another row, it no longer decrypts. */
export function providerKeyBinding(id: string, owner: KeyOwner, accountId: string | null, provider: string): string {
  return `provider_key:${id}:${owner}:${accountId ?? 'platform'}:${provider}`;
}

function toListing(row: StoredProviderKey): KeyListing {
  return {
    id: row.id,
    provider: row.provider,
    owner: row.owner,
    accountId: row.accountId,
    organizationId: row.organizationId ?? undefined,
    settings: row.settings,
    status: row.status,
    weight: row.weight,
    maskedKey: row.maskedKey,
    fingerprint: row.fingerprint,
    createdAt: row.createdAt,
    ...(row.cryptoBackend === KEY_REFERENCE_BACKEND ? { keyReference: parseStoredReference(row.ciphertext) } : {}),
  };
}

/** What one snapshot load read, inside one read transaction where the store offers it. */
interface TablesRead {
  changeVersion: number | undefined;
  accountRows: AccountRecord[];
  gatewayKeyRows: GatewayKeyRecord[];
  providerKeyRows: StoredProviderKey[];
  platformSettings: Record<string, unknown>;
  sections: Map<string, unknown>;
}

function pushTo<Key, Value>(map: Map<Key, Value[]>, key: Key, value: Value): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Holds the current configuration snapshot and rebuilds it from the store after every management
 * write. Readers take `current` and never wait.
 */
export class ConfigSnapshots {
  private snapshot: ConfigSnapshot;
  /** The last load asked for; the next starts after it. */
  private latest: Promise<void> | undefined;
  /** A load chained after the running one that has not started yet. */
  private queued: Promise<void> | undefined;
  private cluster: { bus: ClusterBus; logger: Logger } | undefined;
  /** Every change the store recorded up to this one (Store.configChangeVersion) is in the snapshot. */
  private changeVersion = 0;
  /** The change version the running load read before its tables, while one runs. */
  private loadingVersion: number | undefined;
  private polling = false;
  private readonly listeners: Array<(snapshot: ConfigSnapshot) => void> = [];

  constructor(
    private readonly store: Store,
    /** The operator key from KEYWAY_ADMIN_KEY, hashed; it lives only in memory. */
    private readonly operatorKeyHash: string | undefined,
    private readonly sectionLoaders: ReadonlyArray<Contributed<SnapshotSection>> = [],
  ) {
    this.snapshot = {
      version: 0,
      principalsByHash: new Map(),
      accounts: new Map(),
      accountKeys: new Map(),
      platformKeys: new Map(),
      keysById: new Map(),
      secrets: new Map(),
      platformSettings: {},
      sections: new Map(),
    };
  }

  section<Value>(name: string): Value | undefined {
    return this.snapshot.sections.get(name) as Value | undefined;
  }

  get current(): ConfigSnapshot {
    return this.snapshot;
  }

  onChange(listener: (snapshot: ConfigSnapshot) => void): void {
    this.listeners.push(listener);
  }

  /**
   * After this, every local refresh (a management write here) tells the other members of the cluster,
   * and their writes reload this snapshot. Reloads are idempotent, so a message heard twice costs one
   * extra load and a missed one is caught by the next (or by `catchUp` after an outage, and by the
   * runtime's backstop timer).
   */
  shareThrough(cluster: ClusterBus, logger: Logger): void {
    this.cluster = { bus: cluster, logger };
    cluster.subscribe(CLUSTER_TOPICS.config, () => void this.catchUp('a configuration change on another instance'));
    cluster.onResume?.(() => void this.catchUp('the cluster bus reconnected'));
  }

  /** The first load, at start: nothing changed, so nothing is recorded or told; rejects when the store cannot be read. */
  load(): Promise<void> {
    return this.reload();
  }

  /** Reloads without telling anyone (what another member changed, or a backstop); never throws. */
  async catchUp(why: string): Promise<void> {
    try {
      await this.reload();
    } catch (error) {
      this.cluster?.logger.error({ error: error instanceof Error ? error.message : String(error), why }, 'configuration reload failed');
    }
  }

  /**
   * Reloads everything after a write here, then tells the rest of the cluster. The change is recorded
   * in the store first, so an instance that misses the message finds it there (`pollChanges`).
   */
  async refresh(): Promise<void> {
    await this.recordChange();
    await this.reload();
    if (this.cluster === undefined) return;
    try {
      await this.cluster.bus.publish(CLUSTER_TOPICS.config, String(this.snapshot.version));
    } catch (error) {
      // The write is stored and in force here; the others catch up at their next reload.
      this.cluster.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not tell the cluster about a configuration change');
    }
  }

  /**
   * Reloads when the store recorded a change this snapshot lacks: a management write on another
   * instance whose message did not arrive (Redis unreachable, a publish that failed). One point read,
   * run once a second off the request path (core/credentials/config-watch.ts); never throws.
   */
  async pollChanges(): Promise<void> {
    const read = this.store.configChangeVersion;
    if (read === undefined || this.polling) return;
    this.polling = true;
    let version: number;
    try {
      version = await read.call(this.store);
    } catch {
      // The store is unreachable: /ready says so, and the next tick asks again.
      return;
    } finally {
      this.polling = false;
    }
    // Loaded already, or being loaded: a load that is queued reads the version when it starts.
    if (version <= this.changeVersion || (this.loadingVersion ?? -1) >= version) return;
    this.cluster?.logger.debug({ changeVersion: version }, 'configuration change found in the store; reloading');
    await this.catchUp('a configuration change recorded in the store');
  }

  /** Never throws: the write is stored and in force here; a missed record delays the others to the backstop reload. */
  private async recordChange(): Promise<void> {
    try {
      await this.store.recordConfigChange?.();
    } catch (error) {
      this.cluster?.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not record a configuration change in the store');
    }
  }

  /**
   * Reloads everything. A load starts after the latest write; callers arriving while one waits to
   * start share it (a burst of changes heard from the cluster costs two loads, not one each).
   */
  private reload(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    // After the running load, whether it failed or not: one failed load (a database outage) must not fail every later one.
    const previous = (this.latest ?? Promise.resolve()).catch(() => undefined);
    const next: Promise<void> = previous.then(() => {
      if (this.queued === next) this.queued = undefined;
      return this.loadVersioned();
    });
    this.queued = next;
    this.latest = next;
    return next;
  }

  private async loadVersioned(): Promise<void> {
    const store = this.store;
    let read: TablesRead;
    try {
      // One view of the database for every table and section: see `readTables`.
      read = store.readConsistent === undefined ? await this.readTables(store) : await store.readConsistent((view) => this.readTables(view));
    } finally {
      this.loadingVersion = undefined;
    }
    this.install(read);
    const changeVersion = read.changeVersion;
    if (changeVersion !== undefined && changeVersion > this.changeVersion) this.changeVersion = changeVersion;
  }

  /**
   * The change version first, then every table and plugin section, all through `store`: inside
   * `Store.readConsistent`, one read transaction, so the snapshot is one state the database was in.
   * Read independently (a store without it), a management write landing between two reads gave a
   * snapshot that never existed (a member key whose team was deleted, a revoked key still active)
   * until the next reload. The version is read first: every change recorded up to it is in what follows.
   */
  private async readTables(store: Store): Promise<TablesRead> {
    const changeVersion = await store.configChangeVersion?.();
    this.loadingVersion = changeVersion;
    const [accountRows, gatewayKeyRows, providerKeyRows, platformSettings, sections] = await Promise.all([
      store.listAccounts(),
      store.listActiveGatewayKeys(),
      store.listActiveProviderKeys(),
      store.listPlatformSettings(),
      this.loadSections(store),
    ]);
    return { changeVersion, accountRows, gatewayKeyRows, providerKeyRows, platformSettings, sections };
  }

  /** Builds the maps outside the read, so the transaction lasts only as long as the reads. */
  private install({ accountRows, gatewayKeyRows, providerKeyRows, platformSettings, sections }: TablesRead): void {
    const principalsByHash = new Map<string, Principal>();
    for (const row of gatewayKeyRows) {
      principalsByHash.set(row.keyHash, {
        keyId: row.id,
        role: row.role,
        accountId: row.accountId,
        teamId: row.teamId ?? undefined,
        byokAccess: row.byokAccess,
        environment: typeof row.settings.environment === 'string' ? row.settings.environment : undefined,
        settings: row.settings,
      });
    }
    if (this.operatorKeyHash !== undefined) {
      principalsByHash.set(this.operatorKeyHash, {
        keyId: 'key_operator',
        role: 'operator',
        accountId: DEFAULT_ACCOUNT_ID,
        teamId: undefined,
        byokAccess: true,
        environment: undefined,
        settings: {},
      });
    }
    const accountKeys = new Map<string, Map<string, KeyListing[]>>();
    const platformKeys = new Map<string, KeyListing[]>();
    const keysById = new Map<string, KeyListing>();
    const secrets = new Map<string, SealedSecret>();
    for (const row of providerKeyRows) {
      const listing = toListing(row);
      keysById.set(row.id, listing);
      secrets.set(row.id, {
        ciphertext: row.ciphertext,
        binding: providerKeyBinding(row.id, listing.owner, row.accountId, row.provider),
        backend: row.cryptoBackend,
      });
      if (listing.owner === 'platform') pushTo(platformKeys, row.provider, listing);
      else if (row.accountId !== null) {
        let byProvider = accountKeys.get(row.accountId);
        if (!byProvider) accountKeys.set(row.accountId, (byProvider = new Map()));
        pushTo(byProvider, row.provider, listing);
      }
    }
    this.snapshot = {
      version: this.snapshot.version + 1,
      principalsByHash,
      accounts: new Map(accountRows.map((row) => [row.id, { id: row.id, name: row.name, settings: row.settings }])),
      accountKeys,
      platformKeys,
      keysById,
      secrets,
      platformSettings,
      sections,
    };
    for (const listener of this.listeners) listener(this.snapshot);
  }

  private async loadSections(store: Store): Promise<Map<string, unknown>> {
    const loaded = await Promise.all(this.sectionLoaders.map(async ({ value }) => [value.name, await value.load(store)] as const));
    return new Map(loaded);
  }

  /**
   * A secret re-sealed in the store by a master-key rotation: the same key under a newer version, so
   * it is patched in place rather than reloading every table (readers holding this snapshot decrypt
   * the same key either way).
   */
  resealed(id: string, ciphertext: string, backend: string): void {
    const secrets = this.snapshot.secrets as Map<string, SealedSecret>;
    const sealed = secrets.get(id);
    if (sealed !== undefined) secrets.set(id, { ...sealed, ciphertext, backend });
  }

  /** The provider keys a request of this account may consider: no copying, no database. */
  keysFor(accountId: string): ResolvedKeys {
    const snapshot = this.snapshot;
    return { account: snapshot.accountKeys.get(accountId) ?? EMPTY_KEYS, platform: snapshot.platformKeys };
  }
}
