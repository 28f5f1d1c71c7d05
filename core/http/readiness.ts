// GET /ready: may this instance take traffic? It is not ready while it cannot serve as well as the
// others would: its configuration not loaded, stored provider keys it cannot decrypt, the disk under
// its data nearly full, or usage it can keep nowhere but in a full memory buffer. A shared service
// that is down (the database, the counters) takes every instance down alike: answering 503 for it
// would take all of them out of the balancer at once and turn a partial outage into a full one, so
// it is reported in the 200's `degraded` list instead (QA15 cluster #9). Each answer stays cheap: the
// disk is measured at most every few seconds, the master key check re-run at most once a minute, and
// the store's ping waited for at most STORE_PING_TIMEOUT_MS.

import { statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { verifyStoredKeyChecks, type KeyCheckFailure } from '../credentials/key-check.ts';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../spec/store.ts';

/** Queued usage older than this means writes are stuck. */
export const USAGE_STUCK_AFTER_MS = 30_000;
/** This many failed usage writes in a row mean writes are failing, whatever the age. */
export const USAGE_FAILED_WRITES = 3;
/** A store that has not answered by then counts as unreachable: a balancer's probe gives up after 1–2 s. */
export const STORE_PING_TIMEOUT_MS = 500;
const DISK_CACHE_MS = 5_000;
const KEY_CHECK_CACHE_MS = 60_000;
const MEBIBYTE = 1024 * 1024;

export type ReadinessCheck = 'storage' | 'configuration' | 'master_key' | 'provider_keys' | 'disk' | 'usage';

export interface ReadinessProblem {
  check: ReadinessCheck;
  /** Safe for an unauthenticated answer: no path, no key id, no key source. */
  detail: string;
  /** For the log line: the path, the key ids, where the key came from. */
  logDetail?: Record<string, unknown>;
}

/**
 * Ready, but with something down that some work needs: the shared counters (budgeted requests are
 * refused), the database (management calls fail; requests are served from memory), or usage writes
 * (the rows wait in the journal, or in memory while it has room).
 */
export interface ReadinessNote {
  check: 'counters' | 'storage' | 'usage' | 'workers';
  detail: string;
}

export type ReadinessReport = { ready: true; configVersion: number; degraded: ReadinessNote[] } | { ready: false; problems: ReadinessProblem[] };

export interface ReadinessOptions {
  /** Free bytes for unprivileged users on the file system holding `path`; undefined when unknown. Tests inject it. */
  freeBytes?: (path: string) => number | undefined;
  now?: () => number;
}

function statfsFreeBytes(path: string): number | undefined {
  try {
    const stats = statfsSync(path);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch {
    // A folder that does not exist (a remote database, nothing written yet) holds nothing to fill.
    return undefined;
  }
}

/** Where Keyway writes: the data directory, and the database file's folder when it is elsewhere. */
function watchedFolders(runtime: Runtime): string[] {
  const folders = [runtime.config.dataDirectory];
  const url = runtime.config.databaseUrl;
  if (url.startsWith('file:') && url !== 'file::memory:') folders.push(dirname(resolve(url.slice('file:'.length).split('?')[0] as string)));
  return [...new Set(folders)];
}

/** Remembers a value for `ttlMs`; concurrent callers share one computation. */
function cached<Value>(ttlMs: number, now: () => number, compute: () => Promise<Value>): () => Promise<Value> {
  let value: { at: number; result: Value } | undefined;
  let running: Promise<Value> | undefined;
  return async () => {
    if (value !== undefined && now() - value.at < ttlMs) return value.result;
    running ??= compute()
      .then((result) => {
        value = { at: now(), result };
        return result;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}

/** The shared counters, down while this instance still serves what does not need them. */
function counterNotes(runtime: Runtime): ReadinessNote[] {
  if (runtime.counters.reachable?.() !== false) return [];
  return [
    { check: 'counters', detail: `the shared counters (${runtime.counters.name}) are unreachable: requests with a budget are refused, others are served` },
  ];
}

/**
 * Under KEYWAY_WORKERS, other workers of this instance that stopped answering: the kernel still hands
 * them a share of the connections, which wait until they answer or the primary replaces them. This
 * worker serves, so it stays ready; a balancer cannot steer by worker anyway (they share one port).
 */
function workerNotes(runtime: Runtime): ReadinessNote[] {
  const silent = runtime.services.siblings?.unresponsive() ?? [];
  if (silent.length === 0) return [];
  const one = silent.length === 1;
  const named = one ? `worker ${silent[0]} of this instance does not answer` : `workers ${silent.join(', ')} of this instance do not answer`;
  const wait = one ? 'it answers again or the primary replaces it' : 'they answer again or the primary replaces them';
  return [{ check: 'workers', detail: `${named}: connections the kernel gives ${one ? 'it' : 'them'} wait until ${wait} (KEYWAY_WORKER_TIMEOUT_MS)` }];
}

const STORAGE_UNREACHABLE =
  'storage is not reachable: requests are served from the configuration held in memory and their usage waits in the usage journal; ' +
  'management calls that need the database answer 503 storage_unavailable until it is back';

/** Whether the store answers within the timeout; a store that hangs counts as unreachable. */
async function storeAnswers(store: Store, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      store.ping().then(
        () => true,
        () => false,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Usage not being written (the store is away, or refuses the batches). While the journal holds the
 * rows they are safe and the instance serves on, degraded. Rows kept only in memory (the journal off
 * or failing) are at risk: past KEYWAY_USAGE_BUFFER_MAX of them this instance should get no traffic.
 */
function usageState(runtime: Runtime, now: number): { problem?: ReadinessProblem; note?: ReadinessNote } {
  const usage = runtime.usage;
  const pendingAgeMs = usage.pendingAgeMs(now);
  if (usage.consecutiveFailures < USAGE_FAILED_WRITES && pendingAgeMs <= USAGE_STUCK_AFTER_MS) return {};
  const stuck = `usage records are not being written: ${usage.pending} pending for up to ${Math.round(pendingAgeMs / 1000)} s, ${usage.consecutiveFailures} failed write(s) in a row`;
  const inMemory = usage.unjournaledRows;
  if (inMemory === 0) return { note: { check: 'usage', detail: `${stuck}; they wait in the usage journal and are written when the store takes them` } };
  const memoryOnly = `${inMemory} of them held in memory only (the usage journal is off or cannot be written)`;
  if (inMemory < usage.bufferLimit) return { note: { check: 'usage', detail: `${stuck}; ${memoryOnly}` } };
  return {
    problem: {
      check: 'usage',
      detail: `${stuck}, ${memoryOnly}: the most KEYWAY_USAGE_BUFFER_MAX (${usage.bufferLimit}) allows`,
      logDetail: { pending: usage.pending, inMemory, lastSuccessfulFlushAt: usage.lastSuccessfulFlushAt },
    },
  };
}

export function createReadiness(runtime: Runtime, options: ReadinessOptions = {}): () => Promise<ReadinessReport> {
  const now = options.now ?? Date.now;
  const freeBytes = options.freeBytes ?? statfsFreeBytes;
  const diskProblems = cached(DISK_CACHE_MS, now, async (): Promise<ReadinessProblem[]> => {
    const minimum = runtime.config.minFreeDiskMb * MEBIBYTE;
    if (minimum === 0) return [];
    const problems: ReadinessProblem[] = [];
    for (const folder of watchedFolders(runtime)) {
      const free = freeBytes(folder);
      if (free === undefined || free >= minimum) continue;
      problems.push({
        check: 'disk',
        detail: `the disk holding the data is nearly full: ${Math.floor(free / MEBIBYTE)} MB free, below KEYWAY_MIN_FREE_DISK_MB (${runtime.config.minFreeDiskMb} MB)`,
        logDetail: { folder, freeMb: Math.floor(free / MEBIBYTE) },
      });
    }
    return problems;
  });
  // A store that cannot be read now is the storage check's to report, not a key problem.
  const keyCheckFailures = cached(
    KEY_CHECK_CACHE_MS,
    now,
    (): Promise<KeyCheckFailure[]> => verifyStoredKeyChecks(runtime.store, runtime.plugins.cryptoBackends).catch(() => []),
  );
  // Logged when the set of failing checks changes, not their figures: a poll every few seconds during
  // an outage would otherwise log a line each time the pending count moves.
  let lastReported = '';
  const report = (problems: ReadinessProblem[], notes: ReadinessNote[]): void => {
    const checks = [...problems.map((problem) => problem.check), ...notes.map((note) => `degraded:${note.check}`)].join(',');
    if (checks === lastReported) return;
    lastReported = checks;
    if (problems.length > 0) {
      const summary = problems.map((problem) => problem.detail).join('; ');
      runtime.logger.warn({ problems: problems.map(({ check, logDetail }) => ({ check, ...logDetail })) }, `not ready: ${summary}`);
    } else if (notes.length > 0) {
      runtime.logger.warn({ degraded: notes.map((note) => note.check) }, `ready, degraded: ${notes.map((note) => note.detail).join('; ')}`);
    } else runtime.logger.info('ready again');
  };

  return async () => {
    const storageAnswers = await storeAnswers(runtime.store, STORE_PING_TIMEOUT_MS);
    if (runtime.snapshots.current.version === 0) return { ready: false, problems: [{ check: 'configuration', detail: 'configuration not loaded yet' }] };
    const notes: ReadinessNote[] = storageAnswers ? [] : [{ check: 'storage', detail: STORAGE_UNREACHABLE }];
    const problems: ReadinessProblem[] = [];
    // The check reads the store: while the store does not answer, it cannot be judged and is skipped.
    const failures = storageAnswers ? await keyCheckFailures() : [];
    if (failures.length > 0) {
      problems.push({
        check: 'master_key',
        detail: `the master key check failed for ${failures.map((failure) => `v${failure.keyVersion}`).join(', ')}: stored provider keys cannot be decrypted`,
        logDetail: { failures },
      });
    }
    const undecryptable = runtime.vault.undecryptable();
    if (undecryptable.length > 0) {
      problems.push({
        check: 'provider_keys',
        detail: `${undecryptable.length} stored provider key(s) could not be decrypted; check the master key`,
        logDetail: { providerKeys: undecryptable.slice(0, 20) },
      });
    }
    problems.push(...(await diskProblems()));
    const usage = usageState(runtime, now());
    if (usage.problem !== undefined) problems.push(usage.problem);
    if (usage.note !== undefined) notes.push(usage.note);
    notes.push(...counterNotes(runtime), ...workerNotes(runtime));
    report(problems, notes);
    if (problems.length > 0) return { ready: false, problems };
    return { ready: true, configVersion: runtime.snapshots.current.version, degraded: notes };
  };
}
