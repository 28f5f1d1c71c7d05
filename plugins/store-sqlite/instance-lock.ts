// One Keyway instance per embedded SQLite database. Two instances on one file each keep their own
// configuration snapshot and their own budget and rate-limit counters, so they drift apart: a member
// key created on one was refused by the other, a deleted member's key kept working there, and a team
// budget was spent 1.8 times over (QA17 SRE review). Several instances need PostgreSQL and Redis
// (docs/deployment.md); the workers of one instance (KEYWAY_WORKERS) share its primary's counters.
//
// The process that serves alone, or the primary of the workers, holds a lock on `<database>.lock`
// for its whole life: a write lock SQLite takes with `BEGIN IMMEDIATE` and never commits. It is an
// fcntl lock, so the kernel drops it when the process ends, however it ends (a SIGKILL or an OOM kill
// leaves nothing that blocks the next start, unlike a pid file), and it holds across containers that
// share the file on one host, where a pid cannot be checked. The workers never take it.

import { Database } from 'bun:sqlite';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createPrivately } from './file-modes.ts';
import { StorageError } from './storage-error.ts';

export interface DatabaseLock {
  /** The lock file, beside the database. */
  path: string;
  /** Gives the lock back (the process exiting does too). */
  release(): void;
}

/** Locks held by this process: a connection the garbage collector closed would drop its lock. */
const held = new Set<Database>();

/**
 * The embedded database file a KEYWAY_DATABASE_URL names, resolved as the store resolves it; undefined
 * for a database no other process can share (in memory), one opened read-only (`?mode=ro`), and any
 * URL that is not a `file:` one (a libSQL server, PostgreSQL: there the instance holds a lease row
 * instead unless the counters are shared, plugins/instance-lease.ts).
 */
export function embeddedDatabaseFile(url: string): string | undefined {
  if (!url.startsWith('file:')) return undefined;
  const [location = '', query = ''] = url.slice('file:'.length).split('?');
  if (location === '' || location === ':memory:') return undefined;
  if (new URLSearchParams(query).get('mode') === 'ro') return undefined;
  return resolve(location);
}

/**
 * Takes the database's lock for this process, or throws a StorageError naming the process that holds
 * it. Undefined when the URL names no shared file, or when the database's folder cannot be made: the
 * store's own checks then refuse the start in their words.
 */
export function lockEmbeddedDatabase(url: string): DatabaseLock | undefined {
  const file = embeddedDatabaseFile(url);
  if (file === undefined) return undefined;
  const path = `${file}.lock`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // 0600, as the database; created before SQLite opens it. Never opened again by this process while
    // it holds the lock: closing any descriptor of the file would drop the process's fcntl locks.
    createPrivately(path);
  } catch {
    return undefined;
  }
  let lock: Database | undefined;
  try {
    lock = new Database(path, { create: true });
    // No journal file beside it: the lock writes nothing.
    lock.query('PRAGMA journal_mode = MEMORY').all();
    lock.query('PRAGMA busy_timeout = 0').all();
    lock.exec('BEGIN IMMEDIATE');
  } catch (error) {
    lock?.close();
    const code = String((error as { code?: unknown }).code ?? 'unknown error');
    if (code === 'SQLITE_BUSY') throw new StorageError(inUse(file, path, holderOf(path)));
    throw new StorageError(`The lock file ${path} beside the database could not be taken (${code}: ${(error as Error).message}).`);
  }
  const connection = lock;
  held.add(connection);
  return {
    path,
    release: () => {
      if (!held.delete(connection)) return;
      connection.close();
    },
  };
}

function inUse(file: string, lockPath: string, holder: number | undefined): string {
  const who =
    holder === undefined
      ? 'another Keyway process, one this process cannot see (another container or pid namespace, or another machine sharing the folder)'
      : `another Keyway process (pid ${holder})`;
  return (
    `the embedded database ${file} is in use by ${who}, which holds ${lockPath}. One Keyway instance serves an ` +
    'SQLite database (its KEYWAY_WORKERS share it); a second would keep its own configuration and budget counters and ' +
    'drift apart from the first. Stop that process first, or run several instances on PostgreSQL and Redis ' +
    '(docs/deployment.md, "Several instances behind a load balancer").'
  );
}

/**
 * The pid holding the write lock on `path`, from the kernel's table of file locks (/proc/locks, Linux):
 * `1: POSIX  ADVISORY  WRITE 1234 fe:00:2147595 1073741825 1073741825`. Undefined without /proc, or when
 * the holder lives in a pid namespace this process cannot see (the kernel leaves its locks out).
 */
export function holderOf(path: string): number | undefined {
  let inode: string;
  let table: string;
  try {
    // As a bigint: an inode number may pass 2^53.
    inode = statSync(path, { bigint: true }).ino.toString();
    table = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // Lines of a lock that blocks another ("-> …") carry one more field first.
    const offset = fields[1] === '->' ? 1 : 0;
    const mode = fields[3 + offset];
    const pid = Number(fields[4 + offset]);
    const file = fields[5 + offset];
    if (mode !== 'WRITE' || file === undefined || !file.endsWith(`:${inode}`)) continue;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) return pid;
  }
  return undefined;
}
