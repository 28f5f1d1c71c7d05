// The data directory (KEYWAY_DATA_DIR, `./data` by default) holds the embedded database, its WAL, the
// usage journal and, when Keyway generates it, the master key: member e-mails, client addresses, usage
// rows. Keyway makes it private (0700) when it creates it, whatever the master key's source: it was
// private only when crypto-local made it for a generated key, and the store made it 0755 otherwise.
// One that already exists is the operator's: Keyway only warns when its group or others can reach it.
// See docs/security.md, "Files Keyway writes".

import { mkdirSync, statSync } from 'node:fs';
import type { Logger } from '../logger.ts';
import { SettingError } from '../spec/settings.ts';

/** Owner only: group and others can neither list it nor reach a file in it by name. */
export const PRIVATE_DIRECTORY_MODE = 0o700;

/**
 * Creates the directory 0700 if it is missing; warns (`warn`: this process speaks for the gateway, not
 * one worker of many) when an existing one grants its group or others any access. A directory that
 * cannot be made is left to the parts that write there: each names the path in its own refusal. A
 * file in its place is refused here, naming the variable: the master key's refusal named only
 * `<path>/master.key` and ENOTDIR (QA20 ops F6).
 */
export function prepareDataDirectory(path: string, logger: Logger, warn = true): void {
  let mode: number;
  try {
    const stats = statSync(path);
    if (!stats.isDirectory())
      throw new SettingError(`KEYWAY_DATA_DIR is ${path}, which is a file, not a folder: point it at a folder (it is created if missing).`);
    mode = stats.mode;
  } catch (error) {
    if (error instanceof SettingError) throw error;
    try {
      mkdirSync(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
    } catch {
      // The store or the usage journal says what is wrong with the path, in its own words.
    }
    return;
  }
  if (!warn || process.platform === 'win32' || (mode & 0o077) === 0) return;
  const shown = (mode & 0o777).toString(8).padStart(4, '0');
  logger.warn(
    { path, mode: shown },
    `SECURITY WARNING: the data directory ${path} can be reached by its group or other users (mode ${shown}); it holds the database (member e-mails, client addresses, usage) and the usage journal. Unless that is meant, run: chmod 700 ${path}`,
  );
}
