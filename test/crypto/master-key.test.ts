import { afterEach, describe, expect, test } from 'bun:test';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decryptEnvelope, encryptEnvelope } from '../../plugins/crypto-local/envelope.ts';
import { loadMasterKeyring, MasterKeyError, type MasterKeyConfig } from '../../plugins/crypto-local/master-key.ts';
import { encodingsOf, generateMasterKey, keyringFrom, recordingReporter, temporaryDirectories } from './helpers.ts';

const directories = temporaryDirectories();
afterEach(() => directories.cleanup());

/** Loads the keyring expecting a refusal; checks the message leaks no form of `keyText`, when there is one. */
function refusal(config: MasterKeyConfig, keyText: string | undefined, env: Record<string, string> = {}): string {
  let caught: unknown;
  try {
    keyringFrom(config, env, directories.make());
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(MasterKeyError);
  const message = (caught as Error).message;
  if (keyText === undefined) return message;
  const keyBytes = Buffer.from(keyText.replace(/^v\d+:/, ''), 'base64');
  for (const leak of [keyText, ...(keyBytes.length >= 8 ? encodingsOf(keyBytes) : [])]) expect(message).not.toContain(leak);
  return message;
}

function base64Of(bytes: number[] | Buffer): string {
  return Buffer.from(bytes).toString('base64');
}

describe('refused master keys', () => {
  test('text that is not base64', () => {
    const key = 'this is not base64 at all!!';
    expect(refusal({ masterKey: key }, key)).toContain('masterKey setting is not valid base64');
  });

  test('a key of the wrong length says how many bytes it found', () => {
    const short = base64Of(randomBytes(16));
    const long = base64Of(randomBytes(48));
    expect(refusal({ masterKey: short }, short)).toContain('decodes to 16 bytes; it must be exactly 32 bytes');
    expect(refusal({ masterKey: long }, long)).toContain('decodes to 48 bytes');
  });

  test('a hex key is recognised and refused', () => {
    const key = randomBytes(32).toString('hex');
    expect(refusal({}, key, { KEYWAY_MASTER_KEY: key })).toContain('KEYWAY_MASTER_KEY looks like hex');
  });

  // Sixteen distinct, non-consecutive values, so only the repetition can be blamed.
  const distinctHalf = Buffer.from(Array.from({ length: 16 }, (_, index) => (index * 37 + 11) % 256));
  const weakKeys: Array<[string, Buffer, string]> = [
    ['all bytes equal', Buffer.alloc(32, 0x5a), 'all 32 bytes are the same'],
    ['32 zero bytes', Buffer.alloc(32, 0), 'all 32 bytes are the same'],
    ['the hash of a common password', createHash('sha256').update('password').digest(), 'well-known weak key'],
    ['the documentation example', Buffer.from('q3BvdhzqNOAT6MqudHtUaN4bvvbpo0h3FBvFNPyzaGM=', 'base64'), 'well-known weak key'],
    ['few distinct bytes', Buffer.from(Array.from({ length: 32 }, (_, index) => (index * 7) % 10)), 'only 10 distinct byte values'],
    ['an ascending sequence', Buffer.from(Array.from({ length: 32 }, (_, index) => index)), 'run of 32 ascending byte values'],
    ['a descending sequence', Buffer.from(Array.from({ length: 32 }, (_, index) => 255 - index)), 'run of 32 descending byte values'],
    ['a repeated half', Buffer.concat([distinctHalf, distinctHalf]), 'repeats a 16-byte pattern'],
    ['printable text', Buffer.from('Tr0ub4dor&3-correct-horse-batter', 'utf8'), 'printable text'],
  ];
  for (const [name, bytes, reason] of weakKeys) {
    test(`a weak key: ${name}`, () => {
      const key = base64Of(bytes);
      const message = refusal({ masterKey: key }, key);
      expect(message).toContain('is too weak');
      expect(message).toContain(reason);
    });
  }

  test('an ascending run inside an otherwise random key', () => {
    const bytes = randomBytes(32);
    for (let index = 0; index < 8; index += 1) bytes[10 + index] = 100 + index;
    const key = base64Of(bytes);
    expect(refusal({ masterKey: key }, key)).toContain('run of');
  });
});

describe('keyring syntax', () => {
  test('URL-safe and unpadded keys work and match their standard spelling', () => {
    let standard = generateMasterKey();
    while (!/[+/]/.test(standard)) standard = generateMasterKey();
    const urlSafe = standard.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const ciphertext = encryptEnvelope('secret', 'binding', keyringFrom({ masterKey: standard }));
    expect(decryptEnvelope(ciphertext, 'binding', keyringFrom({ masterKey: urlSafe }))).toBe('secret');
  });

  test('the highest version encrypts and every version decrypts', () => {
    const keyring = keyringFrom({ masterKey: `v3:${generateMasterKey()}, v1:${generateMasterKey()},v2:${generateMasterKey()}` });
    expect(keyring.current).toBe(3);
    expect([...keyring.keys.keys()].sort()).toEqual([1, 2, 3]);
  });

  test('a bare key among versioned ones is refused', () => {
    const key = `${generateMasterKey()},v2:${generateMasterKey()}`;
    expect(refusal({ masterKey: key }, key)).toContain('must name its version');
  });

  test('a version defined twice is refused', () => {
    const first = generateMasterKey();
    const key = `v1:${first},v1:${generateMasterKey()}`;
    expect(refusal({ masterKey: key }, first)).toContain('defines master key v1 more than once');
  });

  test('version zero is refused', () => {
    const key = `v0:${generateMasterKey()}`;
    expect(refusal({ masterKey: key }, key)).toContain('versions run from 1');
  });

  test('the same key under two versions is refused', () => {
    const reused = generateMasterKey();
    expect(refusal({ masterKey: `v1:${reused},v2:${reused}` }, reused)).toContain('v1 and v2 are the same key');
  });

  test('previous keys add older versions', () => {
    const old = generateMasterKey();
    const ciphertext = encryptEnvelope('secret', 'binding', keyringFrom({ masterKey: old }));
    const keyring = keyringFrom({}, { KEYWAY_MASTER_KEY: `v2:${generateMasterKey()}`, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${old}` });
    expect(keyring.current).toBe(2);
    expect(decryptEnvelope(ciphertext, 'binding', keyring)).toBe('secret');
  });

  test('previous keys must be versioned and older than the current key', () => {
    const bare = generateMasterKey();
    expect(refusal({ masterKey: `v2:${generateMasterKey()}`, previousKeys: bare }, bare)).toContain('previousKeys setting must name its version');
    const newer = `v3:${generateMasterKey()}`;
    expect(refusal({ masterKey: `v2:${generateMasterKey()}`, previousKeys: newer }, newer)).toContain(
      'holds v3, but previous keys must be older than the current master key v2',
    );
  });

  test('an inline key and a key file together are refused', () => {
    const key = generateMasterKey();
    expect(refusal({}, key, { KEYWAY_MASTER_KEY: key, KEYWAY_MASTER_KEY_FILE: '/tmp/x' })).toContain(
      'Set either KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE, not both',
    );
  });

  test('the configuration replaces the environment', () => {
    const fromConfig = generateMasterKey();
    const ciphertext = encryptEnvelope('secret', 'binding', keyringFrom({ masterKey: fromConfig }));
    const keyring = keyringFrom({ masterKey: fromConfig }, { KEYWAY_MASTER_KEY_FILE: '/does/not/exist' });
    expect(decryptEnvelope(ciphertext, 'binding', keyring)).toBe('secret');
  });
});

describe('master key files', () => {
  function keyFile(contents: string, mode: number): string {
    const path = join(directories.make(), 'master.key');
    writeFileSync(path, contents);
    chmodSync(path, mode);
    return path;
  }

  test('a 0600 file with comments and one entry per line loads', () => {
    const path = keyFile(`# rotated 2025-01\nv1:${generateMasterKey()}\nv2:${generateMasterKey()}\n`, 0o600);
    expect(keyringFrom({ masterKeyFile: path }).current).toBe(2);
  });

  test('a missing file is refused', () => {
    expect(refusal({}, undefined, { KEYWAY_MASTER_KEY_FILE: '/nonexistent/keyway/master.key' })).toContain(
      'names /nonexistent/keyway/master.key, which does not exist',
    );
  });

  test('a directory is refused', () => {
    const directory = directories.make();
    expect(refusal({ masterKeyFile: directory }, undefined)).toContain('is not a regular file');
  });

  test('an empty file is refused', () => {
    expect(refusal({ masterKeyFile: keyFile('# nothing here\n', 0o600) }, undefined)).toContain('holds no master key');
  });

  test('a world-readable file is refused', () => {
    const key = generateMasterKey();
    const path = keyFile(key, 0o644);
    expect(refusal({ masterKeyFile: path }, key)).toContain(`every local user can read (mode 644). Run: chmod 600 ${path}`);
  });

  test('a file others may write is refused', () => {
    const key = generateMasterKey();
    expect(refusal({ masterKeyFile: keyFile(key, 0o620) }, key)).toContain('writable by group or others (mode 620)');
  });

  test('a group-readable file loads with a loud warning', () => {
    const key = generateMasterKey();
    const reporter = recordingReporter();
    loadMasterKeyring({ config: { masterKeyFile: keyFile(key, 0o640) }, env: {}, dataDirectory: directories.make(), reporter });
    expect(reporter.warnings.join('\n')).toContain('SECURITY WARNING');
    expect(reporter.warnings.join('\n')).not.toContain(key);
  });

  test.skipIf(process.getuid?.() === 0)('an unreadable file is refused', () => {
    expect(refusal({ masterKeyFile: keyFile(generateMasterKey(), 0o000) }, undefined)).toContain('may not read');
  });
});

describe('generated master key', () => {
  test('is written with mode 0600, announced without the key, and reused', () => {
    const dataDirectory = join(directories.make(), 'nested', 'data');
    const firstReporter = recordingReporter();
    const first = loadMasterKeyring({ config: {}, env: {}, dataDirectory, reporter: firstReporter });
    const path = join(dataDirectory, 'master.key');
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const contents = readFileSync(path, 'utf8');
    const keyLine = contents.split('\n').find((line) => line !== '' && !line.startsWith('#')) ?? '';
    expect(Buffer.from(keyLine, 'base64')).toHaveLength(32);
    const announcement = [...firstReporter.warnings, ...firstReporter.notices].join('\n');
    expect(firstReporter.warnings.join('\n')).toContain('Back this file up');
    for (const leak of encodingsOf(Buffer.from(keyLine, 'base64'))) expect(announcement).not.toContain(leak);

    const secondReporter = recordingReporter();
    const second = loadMasterKeyring({ config: {}, env: {}, dataDirectory, reporter: secondReporter });
    expect(secondReporter.warnings).toEqual([]);
    expect(readFileSync(path, 'utf8')).toBe(contents);
    const ciphertext = encryptEnvelope('secret', 'binding', first);
    expect(decryptEnvelope(ciphertext, 'binding', second)).toBe('secret');
  });

  test('an existing bad key file is refused, never overwritten', () => {
    const dataDirectory = directories.make();
    const path = join(dataDirectory, 'master.key');
    writeFileSync(path, 'not a key!\n', { mode: 0o600 });
    expect(() => loadMasterKeyring({ config: {}, env: {}, dataDirectory, reporter: recordingReporter() })).toThrow('not valid base64');
    expect(readFileSync(path, 'utf8')).toBe('not a key!\n');
  });

  test('is not generated for a shared database', () => {
    const dataDirectory = join(directories.make(), 'data');
    const load = () => loadMasterKeyring({ config: {}, env: { KEYWAY_DATABASE_URL: 'postgres://db/keyway' }, dataDirectory, reporter: recordingReporter() });
    expect(load).toThrow('names a shared database');
    mkdirSync(dataDirectory, { recursive: true });
    expect(() => statSync(join(dataDirectory, 'master.key'))).toThrow();
  });
});
