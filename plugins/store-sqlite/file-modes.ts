// The database file holds member e-mails, client addresses, usage rows and the sealed keys: it is
// created owner-only (0600) before SQLite opens it, whatever the master key's source, and SQLite gives
// its -wal and -shm files the database file's mode. A file that already exists is the operator's: its
// mode is never changed, only named in a warning when its group or others may read it.
// See docs/security.md, "Files Keyway writes".

import { closeSync, openSync, statSync } from 'node:fs';

export const PRIVATE_FILE_MODE = 0o600;

/** Creates the file empty and 0600 if it does not exist (SQLite takes an empty file as a new database). */
export function createPrivately(path: string): void {
  // 'a' (O_CREAT without O_EXCL): a worker that loses the race opens the file another one just made.
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}

/** The database's files (itself, -wal, -shm) that its group or others may read, with their modes. */
export function readableByOthers(path: string): Array<{ path: string; mode: string }> {
  if (process.platform === 'win32') return [];
  const found: Array<{ path: string; mode: string }> = [];
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      continue;
    }
    if ((mode & 0o044) !== 0) found.push({ path: file, mode: (mode & 0o777).toString(8).padStart(4, '0') });
  }
  return found;
}
