// With no master key configured, crypto-local generates <data dir>/master.key. A start refused because
// the database was set up with another key (wrong or missing version) says nothing was changed: the key
// file generated for it is taken back, so the next start does not present it as this database's key.

import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateMasterKey } from '../crypto/helpers.ts';
import { makeDataDirectory, refusedStart, startAt } from './helpers.ts';

const directories: Array<{ path: string; remove(): void }> = [];

afterAll(() => {
  for (const directory of directories) directory.remove();
});

/** A data directory whose database was set up with `keyring`, and no key file in it. */
async function setUpWith(keyring: string): Promise<string> {
  const directory = makeDataDirectory();
  directories.push(directory);
  const gateway = await startAt(directory.path, { KEYWAY_MASTER_KEYS: keyring });
  await gateway.stop();
  expect(existsSync(join(directory.path, 'master.key'))).toBe(false);
  return directory.path;
}

describe('the generated master key and a refused start', () => {
  test('a wrong key: the refusal leaves no generated key file, and the next start generates afresh', async () => {
    const path = await setUpWith(`1:${generateMasterKey()}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      const output: string[] = [];
      const message = await refusedStart(path, {}, output);
      expect(message).toContain('Wrong master key');
      expect(message).toContain('nothing was changed');
      expect(existsSync(join(path, 'master.key'))).toBe(false);
      const logs = output.join('\n');
      expect(logs).toContain('Generated a new master key');
      expect(logs).toContain('Removed the master key generated for this start');
      expect(logs).not.toContain('Using the generated master key');
    }
  });

  test('a missing version: the refusal leaves no generated key file', async () => {
    const path = await setUpWith(`2:${generateMasterKey()}`);
    const message = await refusedStart(path, {});
    expect(message).toContain('Missing master key');
    expect(existsSync(join(path, 'master.key'))).toBe(false);
  });

  test('a start that succeeds keeps the generated key, and the next start uses it', async () => {
    const directory = makeDataDirectory();
    directories.push(directory);
    const first = await startAt(directory.path, {});
    await first.stop();
    expect(existsSync(join(directory.path, 'master.key'))).toBe(true);
    const output: string[] = [];
    const second = await startAt(directory.path, {}, { output });
    await second.stop();
    expect(output.join('\n')).toContain('Using the generated master key');
  });
});
