// GET /ready: may this instance take traffic? Beyond "the store answers and the configuration is
// loaded", it is not ready while stored provider keys cannot be decrypted, while the disk under the
// data is nearly full, or while usage records cannot be written. Each answer stays cheap: the disk
// is measured at most every few seconds and the master key check re-run at most once a minute.

import { statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { verifyStoredKeyChecks, type KeyCheckFailure } from '../credentials/key-check.ts';
import type { Runtime } from '../runtime.ts';

/** Queued usage older than this means writes are stuck. */
export const USAGE_STUCK_AFTER_MS = 30_000;
/** This many failed usage writes in a row mean writes are failing, whatever the age. */
export const USAGE_FAILED_WRITES = 3;
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

/** Ready, but with a shared service down that some requests need (shared counters: budgeted requests are refused). */
export interface ReadinessNote {
  check: 'counters';
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

/** Shared services that are down while this instance still serves what does not need them. */
function degradedNotes(runtime: Runtime): ReadinessNote[] {
  if (runtime.counters.reachable?.() !== false) return [];
  return [
    { check: 'counters', detail: `the shared counters (${runtime.counters.name}) are unreachable: requests with a budget are refused, others are served` },
  ];
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
  let lastReported = '';

  const report = (problems: ReadinessProblem[]): void => {
    const summary = problems.map((problem) => problem.detail).join('; ');
    if (summary === lastReported) return;
    lastReported = summary;
    if (problems.length === 0) runtime.logger.info('ready again');
    else runtime.logger.warn({ problems: problems.map(({ check, logDetail }) => ({ check, ...logDetail })) }, `not ready: ${summary}`);
  };

  return async () => {
    try {
      await runtime.store.ping();
    } catch {
      return { ready: false, problems: [{ check: 'storage', detail: 'storage is not reachable' }] };
    }
    if (runtime.snapshots.current.version === 0) return { ready: false, problems: [{ check: 'configuration', detail: 'configuration not loaded yet' }] };
    const problems: ReadinessProblem[] = [];
    const failures = await keyCheckFailures();
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
    const usage = runtime.usage;
    const pendingAgeMs = usage.pendingAgeMs(now());
    if (usage.consecutiveFailures >= USAGE_FAILED_WRITES || pendingAgeMs > USAGE_STUCK_AFTER_MS) {
      problems.push({
        check: 'usage',
        detail: `usage records are not being written: ${usage.pending} pending for up to ${Math.round(pendingAgeMs / 1000)} s, ${usage.consecutiveFailures} failed write(s) in a row`,
        logDetail: { pending: usage.pending, lastSuccessfulFlushAt: usage.lastSuccessfulFlushAt },
      });
    }
    report(problems);
    if (problems.length > 0) return { ready: false, problems };
    return { ready: true, configVersion: runtime.snapshots.current.version, degraded: degradedNotes(runtime) };
  };
}
