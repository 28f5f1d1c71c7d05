// Start-up as an operator meets it: refusals are one clear line on stderr and exit code 1 (never a
// stack trace, never the offending secret); the first start prints its keys once and stores only
// their hashes.

import { afterAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashGatewayKey } from '../../core/credentials/secrets.ts';
import { generateMasterKey } from '../../plugins/crypto-local/master-key.ts';
import { countOccurrences, FROM_SOURCE, printedKeys, runUntilExit, startGatewayProcess } from './process-helpers.ts';

const scratchDirectories: string[] = [];

function scratchDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-startup-'));
  scratchDirectories.push(directory);
  return directory;
}

afterAll(() => {
  for (const directory of scratchDirectories) rmSync(directory, { recursive: true, force: true });
});

/** A KEYWAY_CONFIG file holding `content`, in a scratch directory of its own. */
function configFile(content: unknown): string {
  const path = join(scratchDirectory(), 'keyway.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

interface Refusal {
  name: string;
  env: Record<string, string>;
  message: RegExp;
  /** Text that must appear in no output: the bad key, a password in a URL. */
  secret?: string;
}

const BAD_API_VERSION_PLUGIN = resolve(import.meta.dir, 'fixtures/bad-api-version-plugin.ts');
const MISSING_PLUGIN = resolve(import.meta.dir, 'fixtures/no-such-plugin.ts');
const MALFORMED_KEY = 'this-is:not*base64!at#all';
const WEAK_KEY = Buffer.alloc(32, 0).toString('base64');
const SHORT_KEY = randomBytes(16).toString('base64');

const refusals: Refusal[] = [
  { name: 'a weak master key (32 zero bytes)', env: { KEYWAY_MASTER_KEY: WEAK_KEY }, message: /KEYWAY_MASTER_KEY is too weak/, secret: WEAK_KEY },
  {
    name: 'a master key that is not base64',
    env: { KEYWAY_MASTER_KEY: MALFORMED_KEY },
    message: /KEYWAY_MASTER_KEY is not valid base64/,
    secret: MALFORMED_KEY,
  },
  {
    name: 'a master key of the wrong length',
    env: { KEYWAY_MASTER_KEY: SHORT_KEY },
    message: /KEYWAY_MASTER_KEY decodes to 16 bytes; it must be exactly 32 bytes/,
    secret: SHORT_KEY,
  },
  { name: 'a port that is not a number', env: { KEYWAY_PORT: 'abc' }, message: /KEYWAY_PORT must be an integer between 0 and 65535; got "abc"/ },
  { name: 'a port with a fraction, even .0', env: { KEYWAY_PORT: '42630.0' }, message: /KEYWAY_PORT must be an integer between 0 and 65535; got "42630\.0"/ },
  {
    name: 'a number in exponent form',
    env: { KEYWAY_DRAIN_TIMEOUT_MS: '1e3' },
    message: /KEYWAY_DRAIN_TIMEOUT_MS must be an integer between 0 and 3600000; got "1e3"/,
  },
  {
    name: 'a plugin path that does not exist',
    env: { KEYWAY_PLUGINS: MISSING_PLUGIN },
    message: new RegExp(`KEYWAY_PLUGINS: ${MISSING_PLUGIN.replaceAll('.', '\\.')} does not exist`),
  },
  {
    name: 'a plugin built for another plugin API version',
    env: { KEYWAY_PLUGINS: BAD_API_VERSION_PLUGIN },
    message: /plugin 'future-policy' \(.*bad-api-version-plugin\.ts\): targets plugin API version 99, but this Keyway supports version 1/,
  },
  {
    name: 'a database URL with an unsupported scheme',
    // A valid key, so start-up gets past the crypto backend to storage.
    env: { KEYWAY_DATABASE_URL: 'mysql://keyway:Sup3rSecretDbPassword@db.internal/keyway', KEYWAY_MASTER_KEY: generateMasterKey() },
    message: /KEYWAY_DATABASE_URL must start with file:, libsql:\/\/, http\(s\):\/\/ or postgres:\/\//,
    secret: 'Sup3rSecretDbPassword',
  },
  {
    name: 'a Redis URL whose scheme no loaded counters plugin accepts (it used to fall back to counters in memory)',
    env: { KEYWAY_REDIS_URL: 'valkey://default:Sup3rSecretRedisPassword@cache.internal:6379', KEYWAY_MASTER_KEY: generateMasterKey() },
    message: /KEYWAY_REDIS_URL must start with redis:\/\/ or rediss:\/\/ \(counters plugins: counters-redis\); got the scheme valkey:\./,
    secret: 'Sup3rSecretRedisPassword',
  },
  {
    name: 'an http:// Redis URL',
    env: { KEYWAY_REDIS_URL: 'http://x', KEYWAY_MASTER_KEY: generateMasterKey() },
    message: /KEYWAY_REDIS_URL must start with redis:\/\/ or rediss:\/\/ .*; got the scheme http:\./,
  },
  {
    name: 'a misspelt setting in the KEYWAY_CONFIG file (it used to be ignored, and the default port used)',
    env: { KEYWAY_CONFIG: configFile({ porrt: 9000 }) },
    message: /KEYWAY_CONFIG file .*: unknown setting 'porrt'\. Did you mean 'port'\?/,
  },
  {
    name: 'a misspelt variable name in the KEYWAY_CONFIG file, which no plugin declares (it used to be taken and ignored)',
    env: { KEYWAY_CONFIG: configFile({ KEYWAY_PORTT: 9000 }) },
    message: /KEYWAY_CONFIG file .*: unknown setting 'KEYWAY_PORTT'\. Did you mean 'KEYWAY_PORT'\?/,
  },
];

describe('start-up refusals', () => {
  for (const refusal of refusals) {
    test(`${refusal.name}: exit code 1 and one clear line`, async () => {
      const directory = scratchDirectory();
      const result = await runUntilExit({
        command: FROM_SOURCE,
        cwd: directory,
        env: { KEYWAY_DATA_DIR: join(directory, 'data'), KEYWAY_DATABASE_URL: `file:${join(directory, 'data', 'keyway.db')}`, ...refusal.env },
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/^keyway: cannot start: /);
      expect(result.stderr).toMatch(refusal.message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      if (refusal.secret !== undefined) expect(`${result.stdout}${result.stderr}`).not.toContain(refusal.secret);
    });
  }
});

async function refusedStart(env: Record<string, string>) {
  const directory = scratchDirectory();
  return runUntilExit({ command: FROM_SOURCE, cwd: directory, env: { KEYWAY_DATA_DIR: join(directory, 'data'), ...env } });
}

describe('start-up refusals of database URLs', () => {
  test('an unsupported database URL is echoed by scheme only, never by its first characters (credentials)', async () => {
    const result = await refusedStart({ KEYWAY_DATABASE_URL: 'mysql://u:Sup3rSecret@db.internal/keyway', KEYWAY_MASTER_KEY: generateMasterKey() });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/KEYWAY_DATABASE_URL must start with file:/);
    expect(result.stderr).not.toMatch(/mysql:\/\/\S/);
  });

  test('a database URL without a scheme is reported as such, not as a missing master key', async () => {
    const result = await refusedStart({ KEYWAY_DATABASE_URL: './keyway.db' });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/KEYWAY_DATABASE_URL must start with file:/);
  });
});

async function listProviders(url: string, key: string): Promise<number> {
  const response = await fetch(`${url}/v1/providers`, { headers: { authorization: `Bearer ${key}` } });
  await response.arrayBuffer();
  return response.status;
}

describe('first start', () => {
  const directory = scratchDirectory();
  const dataDirectory = join(directory, 'data');
  let operatorKey = '';
  let defaultAdminKey = '';

  test('prints the operator key and the default admin key exactly once, and both work', async () => {
    const gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: {} });
    try {
      const printed = printedKeys(gateway.stdout());
      operatorKey = printed.operatorKey ?? '';
      defaultAdminKey = printed.defaultAdminKey ?? '';
      expect(operatorKey).toMatch(/^kw_op_[A-Za-z0-9]{40}$/);
      expect(defaultAdminKey).toMatch(/^kw_ak_[A-Za-z0-9]{40}$/);
      expect(await listProviders(gateway.url, operatorKey)).toBe(200);
      expect(await listProviders(gateway.url, defaultAdminKey)).toBe(200);
      expect(await listProviders(gateway.url, `${operatorKey}x`)).toBe(401);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
    const output = `${gateway.stdout()}${gateway.stderr()}`;
    expect(countOccurrences(output, operatorKey)).toBe(1);
    expect(countOccurrences(output, defaultAdminKey)).toBe(1);
  });

  test('a second start on the same data directory prints no key, and the first keys still work', async () => {
    expect(operatorKey).not.toBe('');
    const gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: {} });
    try {
      expect(printedKeys(gateway.stdout())).toEqual({ operatorKey: undefined, defaultAdminKey: undefined });
      expect(gateway.stdout()).not.toContain('first start');
      expect(gateway.stdout()).not.toMatch(/kw_(op|ak)_[A-Za-z0-9]{40}/);
      expect(await listProviders(gateway.url, operatorKey)).toBe(200);
      expect(await listProviders(gateway.url, defaultAdminKey)).toBe(200);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  });

  test('the data directory holds the keys only as hashes', () => {
    expect(operatorKey).not.toBe('');
    const files = readdirSync(dataDirectory);
    expect(files).toContain('keyway.db');
    // Every byte of every file (the database, any WAL or shared-memory file beside it, the usage journal).
    for (const file of readdirSync(dataDirectory, { recursive: true }) as string[]) {
      if (statSync(join(dataDirectory, file)).isDirectory()) continue;
      const bytes = readFileSync(join(dataDirectory, file));
      expect({ file, operatorKeyAt: bytes.indexOf(operatorKey), adminKeyAt: bytes.indexOf(defaultAdminKey) }).toEqual({
        file,
        operatorKeyAt: -1,
        adminKeyAt: -1,
      });
    }
    const database = new Database(join(dataDirectory, 'keyway.db'), { readonly: true });
    try {
      const rows = database.query('SELECT role, key_hash FROM gateway_keys ORDER BY role').all() as Array<{ role: string; key_hash: string }>;
      expect(rows).toEqual([
        { role: 'admin', key_hash: hashGatewayKey(defaultAdminKey) },
        { role: 'operator', key_hash: hashGatewayKey(operatorKey) },
      ]);
    } finally {
      database.close();
    }
  });
});
