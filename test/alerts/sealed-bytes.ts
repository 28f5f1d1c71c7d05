// What an attacker with a copy of the database reads, for the sealed-at-rest tests.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every byte of the database files (main, WAL, shared memory). */
export function sqliteBytes(dataDirectory: string): string {
  return readdirSync(dataDirectory)
    .filter((name) => name.startsWith('keyway.db'))
    .map((name) => {
      try {
        return readFileSync(join(dataDirectory, name)).toString('latin1');
      } catch {
        return '';
      }
    })
    .join('\n');
}
