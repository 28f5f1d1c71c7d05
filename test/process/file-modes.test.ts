// The files Keyway writes are private whatever the master key's source (QA15 F5): with
// KEYWAY_MASTER_KEY supplied and no data directory yet, Keyway made the directory 0755 and the database
// and its WAL 0644 (member e-mails, client addresses, usage rows), while the generated-key path made
// them private. An existing directory or database others can read is the operator's: a warning, never
// a refusal, and its mode is left alone.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, startTestGateway } from '../helpers/gateway.ts';

const MASTER_KEY = randomBytes(32).toString('base64');
const modeOf = (path: string): string => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

let root: string;
let umask: number;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'keyway-modes-'));
  // The usual umask, under which files opened without a mode come out world-readable.
  umask = process.umask(0o022);
});

afterAll(() => {
  process.umask(umask);
  rmSync(root, { recursive: true, force: true });
});

function environment(data: string): Record<string, string> {
  return { KEYWAY_DATA_DIR: data, KEYWAY_DATABASE_URL: `file:${join(data, 'keyway.db')}`, KEYWAY_MASTER_KEY: MASTER_KEY };
}

describe.skipIf(process.platform === 'win32')('file modes', () => {
  test('with the master key supplied, a data directory Keyway creates is 0700, the database, -wal and -shm 0600', async () => {
    const data = join(root, 'fresh', 'data');
    const gateway = await startTestGateway({ env: environment(data), probes: false });
    try {
      // A write that lands in the WAL: a member's e-mail.
      const team = await call(gateway, 'POST', '/v1/teams', { name: 'Modes', members: [{ email: 'secret.person@corp.example', role: 'developer' }] });
      expect(team.status).toBe(201);
      expect(modeOf(data)).toBe('0700');
      expect(modeOf(join(root, 'fresh'))).toBe('0700');
      for (const file of ['keyway.db', 'keyway.db-wal', 'keyway.db-shm']) expect({ file, mode: modeOf(join(data, file)) }).toEqual({ file, mode: '0600' });
      expect(modeOf(join(data, 'usage-journal'))).toBe('0700');
      // The key came from the environment: nothing was generated beside the database.
      expect(existsSync(join(data, 'master.key'))).toBe(false);
      expect(gateway.output.join('\n')).not.toContain('SECURITY WARNING');
    } finally {
      await gateway.stop();
    }
  });

  test('an existing data directory and database others can read start with a warning, their modes unchanged', async () => {
    const data = join(root, 'shared');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    const database = join(data, 'keyway.db');
    closeSync(openSync(database, 'w', 0o644));
    chmodSync(database, 0o644);
    const gateway = await startTestGateway({ env: environment(data), probes: false });
    try {
      const output = gateway.output.join('\n');
      expect(output).toContain(`the data directory ${data} can be reached by its group or other users (mode 0755)`);
      expect(output).toContain(`chmod 700 ${data}`);
      expect(output).toContain(`the database ${database} can be read by its group or other users`);
      expect(output).toContain(`chmod 600 ${database}`);
      expect(modeOf(data)).toBe('0755');
      expect(modeOf(database)).toBe('0644');
      expect((await call(gateway, 'GET', '/v1/accounts')).status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  test('a private existing data directory starts without a warning', async () => {
    const data = join(root, 'private');
    mkdirSync(data, { mode: 0o700 });
    const gateway = await startTestGateway({ env: environment(data), probes: false });
    try {
      expect(gateway.output.join('\n')).not.toContain('SECURITY WARNING');
    } finally {
      await gateway.stop();
    }
  });
});
