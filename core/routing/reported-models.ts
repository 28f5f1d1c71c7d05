import { snapshotBase } from '../catalog/snapshots.ts';
import type { ConfigSnapshots } from '../credentials/snapshot.ts';
import { KeywayError } from '../errors.ts';
import type { KeyVault } from '../credentials/key-vault.ts';
import type { Logger } from '../logger.ts';
import type { ListedModel, ProviderAdapter, ProviderKeyRecord } from '../spec/plugin.ts';
import { trustForKey, withUpstreamScope, type UpstreamPolicy } from '../wire/upstream-policy.ts';

export type KeyHealth = 'active' | 'invalid' | 'unreachable' | 'unknown';

export interface ModelListing {
  models: readonly string[];
  modelSet: ReadonlySet<string>;
  /** When each model was published (Unix seconds), for the models whose provider's list says. */
  created: ReadonlyMap<string, number>;
  status: KeyHealth;
  checkedAt: number;
  error: string | undefined;
}

/**
 * The models each provider key reports (its provider's models endpoint), cached per key. Reads
 * are synchronous; refreshes run in the background or on `GET /v1/providers`.
 */
export class ReportedModels {
  private readonly listings = new Map<string, ModelListing>();
  private readonly inFlight = new Map<string, Promise<ModelListing>>();
  /** The undated names of each listing's dated snapshots, built on first need. */
  private readonly aliases = new WeakMap<ModelListing, ReadonlySet<string>>();

  constructor(
    private readonly providers: ReadonlyMap<string, ProviderAdapter>,
    private readonly vault: KeyVault,
    private readonly store: ConfigSnapshots,
    private readonly logger: Logger,
    private readonly ttlMs: number,
    /** The upstream address policy model listings run under (none: addresses are not checked). */
    private readonly upstream?: UpstreamPolicy,
  ) {}

  get(keyId: string): ModelListing | undefined {
    return this.listings.get(keyId);
  }

  /** Providers among the account's keys whose reported models include `model`. */
  providersReporting(accountId: string, model: string): string[] {
    const byProvider = this.store.current.accountKeys.get(accountId);
    if (byProvider === undefined) return [];
    const found: string[] = [];
    for (const [provider, keys] of byProvider) {
      if (keys.some((key) => this.listings.get(key.id)?.modelSet.has(model))) found.push(provider);
    }
    return found;
  }

  /**
   * Whether the key's own listing says it does not serve `model`: false when nothing is known (no
   * listing yet, a failed one, an empty one). A dated name in the listing serves its alias too
   * (Anthropic lists `claude-opus-4-5-20251101` and answers `claude-opus-4-5`).
   */
  knownNotToServe(key: ProviderKeyRecord, model: string): boolean {
    const listing = this.listings.get(key.id);
    if (listing === undefined || listing.status !== 'active' || listing.models.length === 0 || listing.modelSet.has(model)) return false;
    let aliases = this.aliases.get(listing);
    if (aliases === undefined) {
      aliases = new Set(listing.models.map(snapshotBase).filter((base): base is string => base !== undefined));
      this.aliases.set(listing, aliases);
    }
    return !aliases.has(model);
  }

  modelsOf(accountId: string): Map<string, Set<string>> {
    const result = new Map<string, Set<string>>();
    const byProvider = this.store.current.accountKeys.get(accountId);
    for (const [provider, keys] of byProvider ?? []) {
      const models = new Set<string>();
      for (const key of keys) for (const model of this.listings.get(key.id)?.models ?? []) models.add(model);
      result.set(provider, models);
    }
    return result;
  }

  /** When the provider says `model` was published (Unix seconds), from the first of the account's keys for it that knows. */
  createdOf(accountId: string, provider: string, model: string): number | undefined {
    for (const key of this.store.current.accountKeys.get(accountId)?.get(provider) ?? []) {
      const created = this.listings.get(key.id)?.created.get(model);
      if (created !== undefined) return created;
    }
    return undefined;
  }

  /** Refreshes one key's listing when stale; concurrent callers share one upstream call. */
  refresh(key: ProviderKeyRecord, force = false, timeoutMs = 10_000): Promise<ModelListing> {
    const current = this.listings.get(key.id);
    if (!force && current !== undefined && Date.now() - current.checkedAt < this.ttlMs) return Promise.resolve(current);
    const running = this.inFlight.get(key.id);
    if (running !== undefined) return running;
    const promise = this.fetchListing(key, timeoutMs).finally(() => this.inFlight.delete(key.id));
    this.inFlight.set(key.id, promise);
    return promise;
  }

  private async fetchListing(key: ProviderKeyRecord, timeoutMs: number): Promise<ModelListing> {
    const adapter = this.providers.get(key.provider);
    const previous = this.listings.get(key.id);
    let listing: ModelListing;
    try {
      if (adapter === undefined) throw new Error(`provider ${key.provider} is not loaded`);
      const credential = await this.vault.credential(key);
      const scope = this.upstream === undefined ? undefined : { policy: this.upstream, trust: trustForKey(credential.settings) };
      const listed = await withUpstreamScope(scope, () => adapter.listModels(credential, AbortSignal.timeout(timeoutMs)));
      const { models, created } = namesAndStamps(listed);
      listing = { models, modelSet: new Set(models), created, status: 'active', checkedAt: Date.now(), error: undefined };
    } catch (error) {
      const reason = error instanceof KeywayError ? error.reason : undefined;
      const status: KeyHealth = reason === 'auth_error' ? 'invalid' : 'unreachable';
      const message = error instanceof Error ? error.message : 'unknown error';
      this.logger.warn({ keyId: key.id, provider: key.provider, status, error: message }, 'could not list models for provider key');
      // Keep the last known models when the provider is only unreachable for a moment.
      const kept = status === 'unreachable' ? previous : undefined;
      const models = kept?.models ?? [];
      listing = { models, modelSet: new Set(models), created: kept?.created ?? new Map(), status, checkedAt: Date.now(), error: message };
    }
    this.listings.set(key.id, listing);
    return listing;
  }

  /**
   * Starts fetching the listing of every account key this process has none of (nor one on its way).
   * Listings live in each process's memory: the worker that stored a key fetched its list, and no
   * other did, so another worker (every worker, after a restart) listed the whole catalog in `GET
   * /v1/models` and answered 404 for a model only the key reports, until `GET /v1/providers` reached
   * that very worker (QA20). Called at start and after each configuration load.
   */
  learnUnlisted(): void {
    for (const byProvider of this.store.current.accountKeys.values())
      for (const keys of byProvider.values()) for (const key of keys) if (this.unlisted(key)) void this.refresh(key);
  }

  /**
   * The account's listings this process lacks, fetched (or already on their way), waited for at most
   * `timeoutMs`; undefined when it has them all, so a caller that has nothing to learn waits for nothing.
   */
  learnAccount(accountId: string, timeoutMs: number): Promise<void> | undefined {
    const pending: Promise<unknown>[] = [];
    for (const keys of this.store.current.accountKeys.get(accountId)?.values() ?? [])
      for (const key of keys) {
        if (key.status === 'deleted' || this.listings.has(key.id)) continue;
        pending.push(this.inFlight.get(key.id) ?? this.refresh(key));
      }
    if (pending.length === 0) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    return Promise.race([Promise.all(pending).then(() => undefined), deadline]).finally(() => clearTimeout(timer));
  }

  private unlisted(key: ProviderKeyRecord): boolean {
    return key.status !== 'deleted' && !this.listings.has(key.id) && !this.inFlight.has(key.id);
  }

  forget(keyId: string): void {
    this.listings.delete(keyId);
  }
}

/** A provider's list as names, and the publication times it gives. */
function namesAndStamps(listed: ReadonlyArray<string | ListedModel>): { models: string[]; created: Map<string, number> } {
  const models: string[] = [];
  const created = new Map<string, number>();
  for (const entry of listed) {
    if (typeof entry === 'string') models.push(entry);
    else {
      models.push(entry.id);
      if (entry.created !== undefined) created.set(entry.id, entry.created);
    }
  }
  return { models, created };
}

/**
 * Keeps this process's listings complete: every key's list is fetched once the server listens, and
 * a key another worker or instance stored is fetched once the configuration load brings it here.
 */
export function learnListings(snapshots: ConfigSnapshots, models: ReportedModels): () => void {
  let active = true;
  snapshots.onChange(() => {
    if (active) models.learnUnlisted();
  });
  models.learnUnlisted();
  return () => {
    active = false;
  };
}
