// Master-key rotation: re-wraps every stored ciphertext under the active crypto backend's newest key
// version, online. Work goes in batches read by id (a cursor), each batch written in one short
// transaction that replaces a ciphertext only where the row still holds the one that was read, so
// traffic and management writes go on meanwhile. Progress is kept in a platform setting after every
// batch: a crashed run resumes from its cursor when rotation is asked for again. The request path
// never waits on it: the snapshot's sealed secrets are patched in place (the same key under a newer
// version) and decrypted keys stay cached by the key vault. The run ends by having the store reclaim
// the old ciphertexts' copies from its files (the embedded store's VACUUM: a pause, seconds a gigabyte).

import { redactedExcerpt, type Logger } from '../logger.ts';
import type { ClusterBus, WorkerSiblings } from '../spec/cluster.ts';
import type { CiphertextHolder, CiphertextReplacement, CryptoBackend, HeldCiphertext } from '../spec/crypto-backend.ts';
import type { Store } from '../spec/store.ts';
import { backendKeyVersions } from './key-check.ts';
import { randomId } from './secrets.ts';

/** The platform setting holding the last (or running) rotation. */
export const ROTATION_SETTING = 'master_key_rotation';
/** A run whose progress is older than this is taken as crashed and may be resumed elsewhere. */
export const ROTATION_LEASE_MS = 30_000;
/** Longest stretch of synchronous crypto before yielding to requests. */
const SLICE_MS = 0.3;
const FAILURES_KEPT = 100;

export interface RotationCounts {
  rewrapped: number;
  already_current: number;
  failed: number;
  /** Rows known to be unreadable (their master key version was lost), waiting for their secret again. */
  skipped_needs_reentry: number;
  /** Rows changed by someone else between read and write (deleted, re-entered): left as they are. */
  changed_meanwhile: number;
  /** Deleted keys sealed under a key version no longer configured: nothing can open them, nothing needs to. */
  skipped_deleted_unreadable: number;
}

export interface RotationFailure {
  holder: string;
  id: string;
  reason: string;
}

export interface RotationState {
  id: string;
  status: 'running' | 'completed' | 'completed_with_failures';
  backend: string;
  key_version: number;
  started_at: string;
  updated_at: string;
  finished_at: string | null;
  /** The holder being worked on and the last cursor done in it: where a resumed run goes on. */
  cursor: { holder: string; after_id: string } | null;
  counts: RotationCounts;
  failures: RotationFailure[];
  /** Which process runs it (random per process): another one may resume it only after the lease. */
  instance: string;
}

export interface RotationOptions {
  store: Store;
  backends: ReadonlyMap<string, CryptoBackend>;
  activeBackend: string;
  holders: readonly CiphertextHolder[];
  logger: Logger;
  batchSize: number;
  /** Pause between batches, so a large store never holds the database for long. */
  pauseMs: number;
  now?: () => number;
  /** Its lease keeps two workers of one instance asked at once from both starting a run. */
  cluster?: ClusterBus;
  /** The other workers of this instance (KEYWAY_WORKERS): a call on one joins the run another holds. */
  siblings?: WorkerSiblings;
}

/** A call's part in a rotation: the run it started or resumed, or the one it joined. */
export interface RotationRun {
  /** True when a run was already going in this process or on another worker of this instance. */
  joined: boolean;
  finished: Promise<RotationState>;
  /** Resolves once the run's state is stored (it may be read), or never when the run fails first: race it with `finished`. */
  stored: Promise<void>;
}

export class RotationConflictError extends Error {
  override name = 'RotationConflictError';
}

/** How often a running rotation stores its progress. */
const SAVE_EVERY_MS = 250;
/** The cluster lease a run holds while it goes on (renewed at every save, released at its end). */
const ROTATION_CLUSTER_LEASE = 'master-key-rotation';
/** The workers of one instance ask each other on it which run they hold: its `instance`, or ''. */
export const ROTATION_TOPIC = 'master-key:rotation';
/** How many times a call that found the lease held, and no sibling running, asks again before the stored row decides. */
const CLAIM_RETRIES = 10;

/** How often a call that joined another worker's run reads the stored row, and asks whether that run still goes on. */
const FOLLOW_READ_MS = 100;
const FOLLOW_ASK_MS = 1_000;

const snapshotOf = (state: RotationState): RotationState => ({ ...state, counts: { ...state.counts }, failures: [...state.failures] });
const zeroCounts = (): RotationCounts => ({
  rewrapped: 0,
  already_current: 0,
  failed: 0,
  skipped_needs_reentry: 0,
  changed_meanwhile: 0,
  skipped_deleted_unreadable: 0,
});
const yieldToRequests = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** The stored state, or undefined when there is none or it is malformed. */
export function parseRotationState(value: unknown): RotationState | undefined {
  const state = value as Partial<RotationState> | null | undefined;
  if (state === null || typeof state !== 'object' || typeof state.id !== 'string' || typeof state.status !== 'string') return undefined;
  if (typeof state.backend !== 'string' || !Number.isSafeInteger(state.key_version) || state.counts === undefined) return undefined;
  return {
    ...zeroCounts(),
    ...state,
    counts: { ...zeroCounts(), ...state.counts },
    failures: Array.isArray(state.failures) ? state.failures : [],
  } as RotationState;
}

/** One line, bounded, scrubbed: backend errors are not supposed to carry secrets, and this makes sure. */
function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactedExcerpt(text.replace(/\s+/g, ' ').trim(), 300);
}

/** Runs one rotation at a time per process; callers who ask while one runs join it. */
export class MasterKeyRotator {
  private running: Promise<RotationState> | undefined;
  /** Resolved by the running run's first save. */
  private runStored = Promise.resolve();
  private markStored: (() => void) | undefined;
  private latest: RotationState | undefined;
  private readonly instance = randomId('inst');
  private readonly now: () => number;

  private claiming: Promise<RotationRun> | undefined;

  constructor(private readonly options: RotationOptions) {
    this.now = options.now ?? Date.now;
    options.siblings?.respond(ROTATION_TOPIC, () => (this.running === undefined ? '' : this.instance));
  }

  /** The run in progress here, if any. */
  get inProgress(): boolean {
    return this.running !== undefined;
  }

  async stored(): Promise<RotationState | undefined> {
    return parseRotationState((await this.options.store.listPlatformSettings())[ROTATION_SETTING]);
  }

  /** The latest state: this process's live one, else the stored one. */
  async status(): Promise<RotationState | undefined> {
    return this.running !== undefined ? this.latest : await this.stored();
  }

  /**
   * Starts or resumes a rotation, or joins the one going on: in this process, or on another worker of
   * this instance (one gateway on one port to its callers, so not "another instance"). A run on another
   * instance is the stored row's to refuse (RotationConflictError), as before.
   */
  begin(): Promise<RotationRun> {
    if (this.running !== undefined) return Promise.resolve({ joined: true, finished: this.running, stored: this.runStored });
    if (this.claiming !== undefined) return this.claiming.then((run) => ({ ...run, joined: true }));
    const claiming = this.claim().finally(() => {
      if (this.claiming === claiming) this.claiming = undefined;
    });
    this.claiming = claiming;
    return claiming;
  }

  private async claim(): Promise<RotationRun> {
    const since = this.now();
    for (let attempt = 0; ; attempt += 1) {
      if (await this.lease(ROTATION_LEASE_MS)) return this.startHere();
      const { running, unanswered } = await this.askSiblings();
      const sibling = running[0];
      if (sibling !== undefined) return { joined: true, finished: this.follow(sibling, since), stored: this.storedBy(sibling, since) };
      // A sibling too busy to answer in time, or the holder between its lease and its run: asked again
      // shortly (a loaded machine answered 409 "another instance" to calls sent with the first one).
      if (attempt < CLAIM_RETRIES && (unanswered || attempt < 2)) {
        await sleep(FOLLOW_READ_MS / 5);
        continue;
      }
      // The holder runs nothing in this instance: another instance holds it (a shared bus), or a run has
      // just ended. The stored row decides, as without a lease.
      return this.startHere();
    }
  }

  private startHere(): RotationRun {
    const finished = this.start();
    return { joined: false, finished, stored: this.runStored };
  }

  /** Resolves once the stored row is `instance`'s run (going on, or finished after `since`), or after the lease at most. */
  private async storedBy(instance: string, since: number): Promise<void> {
    const deadline = performance.now() + ROTATION_LEASE_MS;
    while (performance.now() < deadline) {
      const stored = await this.stored();
      if (stored?.instance === instance && (stored.status === 'running' || (await this.finishedBy(instance, since)) !== undefined)) return;
      await sleep(FOLLOW_READ_MS / 5);
    }
  }

  /** Takes or renews the cluster lease; a short ttl releases it. True without a cluster (nothing to share). */
  private async lease(ttlMs: number): Promise<boolean> {
    const cluster = this.options.cluster;
    if (cluster === undefined) return true;
    return await Promise.resolve(cluster.acquireLease(ROTATION_CLUSTER_LEASE, ttlMs)).catch(() => false);
  }

  /** The `instance` of each sibling worker's run going on, and whether some worker did not answer. */
  private async askSiblings(): Promise<{ running: string[]; unanswered: boolean }> {
    const siblings = this.options.siblings;
    if (siblings === undefined) return { running: [], unanswered: false };
    // The primary gone: no sibling can be asked, and none will be followed.
    const gathered = await siblings.ask(ROTATION_TOPIC).catch(() => ({ answers: [], unanswered: [] }));
    return { running: gathered.answers.map(({ text }) => text).filter((text) => text !== ''), unanswered: gathered.unanswered.length > 0 };
  }

  /**
   * Waits for the run a sibling worker holds (its `instance`) by reading the stored row, which that run
   * writes last: its final state. A run that ends without finishing (it failed; its worker logged why)
   * is an error here too.
   */
  private async follow(instance: string, since: number): Promise<RotationState> {
    let askedAt = performance.now();
    for (;;) {
      await sleep(FOLLOW_READ_MS);
      const finished = await this.finishedBy(instance, since);
      if (finished !== undefined) return finished;
      if (performance.now() - askedAt < FOLLOW_ASK_MS) continue;
      askedAt = performance.now();
      const siblings = await this.askSiblings();
      if (siblings.running.includes(instance) || siblings.unanswered) continue;
      // Its run ends after writing the row: read once more, as it may have finished since the last read.
      const last = await this.finishedBy(instance, since);
      if (last !== undefined) return last;
      throw new Error("the master key rotation running on another worker of this instance stopped without finishing; see that worker's log");
    }
  }

  /** The stored row, when `instance` finished a run there after `since`. */
  private async finishedBy(instance: string, since: number): Promise<RotationState | undefined> {
    const stored = await this.stored();
    if (stored === undefined || stored.instance !== instance || stored.status === 'running' || stored.finished_at === null) return undefined;
    return Date.parse(stored.finished_at) >= since ? stored : undefined;
  }

  /** True when `state` is a run that made progress within the lease: going on here or elsewhere. */
  isLive(state: RotationState | undefined): boolean {
    return state?.status === 'running' && this.now() - Date.parse(state.updated_at) < ROTATION_LEASE_MS;
  }

  /** Starts a rotation, resumes an interrupted one, or joins the one running here. */
  start(): Promise<RotationState> {
    if (this.running !== undefined) return this.running;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.runStored = promise;
    this.markStored = resolve;
    // The previous run's state is no answer for this one.
    this.latest = undefined;
    const run = this.runLeased().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** The lease is released before the run counts as over, so a sibling asked meanwhile follows it rather than racing it. */
  private async runLeased(): Promise<RotationState> {
    try {
      return await this.run();
    } finally {
      if (this.options.cluster !== undefined) await this.lease(1);
    }
  }

  private async run(): Promise<RotationState> {
    const { backends, activeBackend, logger } = this.options;
    const target = backends.get(activeBackend);
    if (target === undefined) throw new Error(`the active crypto backend '${activeBackend}' is not loaded`);
    await target.refreshKeyVersions?.();
    const state = await this.initialState(target);
    this.latest = state;
    await this.save(state);
    logger.info({ rotation: state.id, backend: state.backend, keyVersion: state.key_version, resumedAt: state.cursor }, 'master key rotation started');
    const holders = this.options.holders;
    let savedAt = this.now();
    let index =
      state.cursor === null
        ? 0
        : Math.max(
            0,
            holders.findIndex((holder) => holder.name === state.cursor?.holder),
          );
    for (; index < holders.length; index++) {
      const holder = holders[index] as CiphertextHolder;
      let afterId = state.cursor?.holder === holder.name ? state.cursor.after_id : '';
      for (;;) {
        const items = await holder.list(afterId, this.options.batchSize);
        if (items.length === 0) break;
        await this.rotateBatch(holder, items, target, state);
        const lastItem = items.at(-1) as HeldCiphertext;
        afterId = lastItem.cursor ?? lastItem.id;
        state.cursor = { holder: holder.name, after_id: afterId };
        state.updated_at = new Date(this.now()).toISOString();
        this.latest = snapshotOf(state);
        // Stored at most every SAVE_EVERY_MS: one more write per small batch would cost more than
        // it saves; a crash redoes at most that much, which compare-and-swap makes harmless.
        if (this.now() - savedAt >= SAVE_EVERY_MS) {
          await this.save(state);
          savedAt = this.now();
        }
        if (this.options.pauseMs > 0) await sleep(this.options.pauseMs);
        else await yieldToRequests();
      }
    }
    await this.reclaimReplacedCopies(state);
    state.status = state.counts.failed > 0 ? 'completed_with_failures' : 'completed';
    state.finished_at = new Date(this.now()).toISOString();
    state.updated_at = state.finished_at;
    state.cursor = null;
    await this.save(state);
    logger.info({ rotation: state.id, ...state.counts }, `master key rotation ${state.status.replaceAll('_', ' ')}`);
    return state;
  }

  /**
   * The rows hold the new wrappings; the database files may still hold the old ones (a WAL's earlier
   * page images, pages not yet checkpointed over, free space an older version did not zero), which open
   * under the retired version for whoever holds it and a copy of the files: the reason to re-wrap at
   * all. Run at the end of every run, one that re-wrapped nothing too (it clears what a run before
   * this step existed left). Before the run counts as finished, so a run stopped here is resumed by the
   * next call and reclaims then.
   */
  private async reclaimReplacedCopies(state: RotationState): Promise<void> {
    const reclaim = this.options.store.reclaimReplacedRows?.bind(this.options.store);
    if (reclaim === undefined) return;
    const tables = [...new Set(this.options.holders.flatMap((holder) => holder.tables ?? []))];
    const started = performance.now();
    await reclaim(tables, { rebuild: true });
    this.options.logger.info(
      { rotation: state.id, tables, durationMs: Math.round(performance.now() - started) },
      'master key rotation: copies of the replaced ciphertexts reclaimed from the database files',
    );
  }

  /** A new run, or the interrupted one for the same target (its cursor and counts kept). */
  private async initialState(target: CryptoBackend): Promise<RotationState> {
    const stored = await this.stored();
    const nowText = new Date(this.now()).toISOString();
    const keyVersion = target.currentKeyVersion();
    if (stored?.status === 'running') {
      const age = this.now() - Date.parse(stored.updated_at);
      if (stored.instance !== this.instance && age < ROTATION_LEASE_MS) {
        throw new RotationConflictError(
          `A master key rotation (${stored.id}) is running on another instance; its last progress was ${Math.round(age / 1000)} s ago. Ask again once it is done, or after ${ROTATION_LEASE_MS / 1000} s without progress to resume it here.`,
        );
      }
      if (stored.backend === target.name && stored.key_version === keyVersion) {
        return { ...stored, instance: this.instance, updated_at: nowText };
      }
    }
    return {
      id: randomId('mkr'),
      status: 'running',
      backend: target.name,
      key_version: keyVersion,
      started_at: nowText,
      updated_at: nowText,
      finished_at: null,
      cursor: null,
      counts: zeroCounts(),
      failures: [],
      instance: this.instance,
    };
  }

  private async save(state: RotationState): Promise<void> {
    this.latest = snapshotOf(state);
    await this.options.store.setPlatformSetting(ROTATION_SETTING, this.latest);
    this.markStored?.();
    // Not waited for: a slow bus must not hold the run up (the lease only keeps two workers from starting at once).
    if (state.status === 'running' && this.options.cluster !== undefined) void this.lease(ROTATION_LEASE_MS);
  }

  private fail(state: RotationState, holder: string, id: string, reason: string): void {
    state.counts.failed++;
    if (state.failures.length < FAILURES_KEPT) state.failures.push({ holder, id, reason });
  }

  private isCurrent(item: HeldCiphertext, target: CryptoBackend, keyVersion: number): boolean {
    if (item.backend !== target.name) return false;
    const version = target.keyVersionOf?.(item.ciphertext) ?? item.keyVersion;
    return version === keyVersion;
  }

  private async rotateBatch(holder: CiphertextHolder, items: readonly HeldCiphertext[], target: CryptoBackend, state: RotationState): Promise<void> {
    const keyVersion = state.key_version;
    const pending = items.filter((item) => {
      if (item.noCiphertext === true) return false;
      if (item.needsReentry === true) {
        state.counts.skipped_needs_reentry++;
        return false;
      }
      if (this.isCurrent(item, target, keyVersion)) {
        state.counts.already_current++;
        return false;
      }
      return true;
    });
    const replacements: CiphertextReplacement[] = [];
    const sameBackend = pending.filter((item) => item.backend === target.name);
    if (target.rewrapMany !== undefined && sameBackend.length > 0) {
      const results = await target.rewrapMany(sameBackend.map(({ ciphertext, binding }) => ({ ciphertext, binding })));
      for (const [position, item] of sameBackend.entries()) {
        const result = results[position];
        if (result !== undefined && 'ciphertext' in result) this.collect(replacements, item, result.ciphertext, target, state);
        else if (this.unreadableRetired(item)) state.counts.skipped_deleted_unreadable++;
        else this.fail(state, holder.name, item.id, result === undefined ? 'no answer' : reasonOf(result.error));
      }
    }
    const oneByOne = target.rewrapMany !== undefined ? pending.filter((item) => item.backend !== target.name) : pending;
    let sliceStart = performance.now();
    for (const item of oneByOne) {
      try {
        this.collect(replacements, item, await this.reseal(item, target), target, state);
      } catch (error) {
        if (this.unreadableRetired(item)) state.counts.skipped_deleted_unreadable++;
        else this.fail(state, holder.name, item.id, reasonOf(error));
      }
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToRequests();
        sliceStart = performance.now();
      }
    }
    if (replacements.length === 0) return;
    const stored = new Set(await holder.replace(replacements));
    state.counts.rewrapped += stored.size;
    state.counts.changed_meanwhile += replacements.length - stored.size;
  }

  /** A deleted key whose backend or key version is no longer configured. */
  private unreadableRetired(item: HeldCiphertext): boolean {
    if (item.retired !== true) return false;
    const backend = this.options.backends.get(item.backend);
    const version = backend?.keyVersionOf?.(item.ciphertext) ?? item.keyVersion;
    return backend === undefined || version === undefined || !backendKeyVersions(backend).includes(version);
  }

  private collect(replacements: CiphertextReplacement[], item: HeldCiphertext, ciphertext: string, target: CryptoBackend, state: RotationState): void {
    if (ciphertext === item.ciphertext) {
      state.counts.already_current++;
      return;
    }
    const keyVersion = target.keyVersionOf?.(ciphertext) ?? target.currentKeyVersion();
    replacements.push({ id: item.id, expectedCiphertext: item.ciphertext, ciphertext, backend: target.name, keyVersion });
  }

  /** The cheap re-wrap within one backend; across backends (a move to another one), decrypt and seal again. */
  private async reseal(item: HeldCiphertext, target: CryptoBackend): Promise<string> {
    if (item.backend === target.name && target.rewrap !== undefined) return target.rewrap(item.ciphertext, item.binding);
    const source = this.options.backends.get(item.backend);
    if (source === undefined) throw new Error(`sealed by crypto backend '${item.backend}', which is not loaded`);
    return target.encrypt(await source.decrypt(item.ciphertext, item.binding), item.binding);
  }
}

export interface StoredVersionCount {
  backend: string;
  key_version: number | null;
  count: number;
}

/** How many stored ciphertexts each backend and key version seals: what must stay configured. */
export async function countStoredVersions(holders: readonly CiphertextHolder[], backends: ReadonlyMap<string, CryptoBackend>): Promise<StoredVersionCount[]> {
  const counts = new Map<string, StoredVersionCount>();
  for (const holder of holders) {
    let afterId = '';
    for (;;) {
      const items = await holder.list(afterId, 200);
      if (items.length === 0) break;
      for (const item of items) {
        if (item.noCiphertext === true) continue;
        const version = backends.get(item.backend)?.keyVersionOf?.(item.ciphertext) ?? item.keyVersion ?? null;
        const name = `${item.backend}\u0000${version}`;
        const entry = counts.get(name) ?? { backend: item.backend, key_version: version, count: 0 };
        entry.count++;
        counts.set(name, entry);
      }
      const lastItem = items.at(-1) as HeldCiphertext;
      afterId = lastItem.cursor ?? lastItem.id;
      await yieldToRequests();
    }
  }
  return [...counts.values()].sort((left, right) => left.backend.localeCompare(right.backend) || (left.key_version ?? 0) - (right.key_version ?? 0));
}
