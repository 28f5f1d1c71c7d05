import { describe, expect, test } from 'bun:test';
import { DECRYPTION_FAILED_MESSAGE, decryptEnvelope, encryptEnvelope, envelopeKeyVersion } from '../../plugins/crypto-local/envelope.ts';
import { encodingsOf, generateMasterKey, keyringFrom } from './helpers.ts';

const BINDING = 'provider_key:pk_123:account:acc_1';
const SECRET = 'sk-proj-canary0123456789abcdefghijklmnopqrstuvwxyzCANARY';

function flipCharacter(text: string, index: number): string {
  const original = text[index];
  return `${text.slice(0, index)}${original === 'A' ? 'B' : 'A'}${text.slice(index + 1)}`;
}

function decryptionMessage(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a decryption failure');
}

describe('envelope round trip', () => {
  const keyring = keyringFrom({ masterKey: generateMasterKey() });

  test('decrypts what it encrypted, including unicode and empty secrets', () => {
    for (const plaintext of [SECRET, '', 'ключ-🔑-鍵', 'x'.repeat(10_000)]) {
      const ciphertext = encryptEnvelope(plaintext, BINDING, keyring);
      expect(decryptEnvelope(ciphertext, BINDING, keyring)).toBe(plaintext);
    }
  });

  test('names the format and the key version', () => {
    const ciphertext = encryptEnvelope(SECRET, BINDING, keyring);
    expect(ciphertext).toMatch(/^kw1\.local\.v1\.[A-Za-z0-9_-]{80}\.[A-Za-z0-9_-]+$/);
    expect(envelopeKeyVersion(ciphertext)).toBe(1);
  });

  test('uses a fresh data key and IV every time', () => {
    const first = encryptEnvelope(SECRET, BINDING, keyring);
    const second = encryptEnvelope(SECRET, BINDING, keyring);
    expect(first).not.toBe(second);
    expect(first.split('.')[3]).not.toBe(second.split('.')[3]);
  });

  test('refuses an empty binding', () => {
    expect(() => encryptEnvelope(SECRET, '', keyring)).toThrow('binding');
    expect(() => decryptEnvelope(encryptEnvelope(SECRET, BINDING, keyring), '', keyring)).toThrow('binding');
  });
});

describe('envelope refusals', () => {
  const masterKey = generateMasterKey();
  const keyring = keyringFrom({ masterKey });
  const ciphertext = encryptEnvelope(SECRET, BINDING, keyring);

  test('a ciphertext copied into another row does not decrypt', () => {
    for (const binding of ['provider_key:pk_124:account:acc_1', 'provider_key:pk_123:account:acc_2', `${BINDING} `]) {
      expect(() => decryptEnvelope(ciphertext, binding, keyring)).toThrow(DECRYPTION_FAILED_MESSAGE);
    }
  });

  test('any tampered character fails authentication', () => {
    const [, , , wrapped = '', sealed = ''] = ciphertext.split('.');
    const wrappedStart = ciphertext.indexOf(wrapped);
    const sealedStart = ciphertext.lastIndexOf(sealed);
    const positions = [wrappedStart, wrappedStart + 20, wrappedStart + 70, sealedStart, sealedStart + 20, ciphertext.length - 2];
    for (const position of positions) {
      expect(() => decryptEnvelope(flipCharacter(ciphertext, position), BINDING, keyring)).toThrow(DECRYPTION_FAILED_MESSAGE);
    }
  });

  test('mixing the parts of two ciphertexts fails', () => {
    const other = encryptEnvelope(SECRET, BINDING, keyring).split('.');
    const mixed = [...ciphertext.split('.').slice(0, 4), other[4]].join('.');
    expect(() => decryptEnvelope(mixed, BINDING, keyring)).toThrow(DECRYPTION_FAILED_MESSAGE);
  });

  test('truncated or malformed ciphertexts are refused without echoing them', () => {
    for (const broken of [ciphertext.slice(0, -10), ciphertext.slice(0, 40), 'plain-text', `${ciphertext}.extra`, ciphertext.replace('kw1', 'kw2')]) {
      const message = decryptionMessage(() => decryptEnvelope(broken, BINDING, keyring));
      expect(message).not.toContain(broken);
    }
  });

  test('a different master key under the same version fails', () => {
    const otherKeyring = keyringFrom({ masterKey: generateMasterKey() });
    expect(() => decryptEnvelope(ciphertext, BINDING, otherKeyring)).toThrow(DECRYPTION_FAILED_MESSAGE);
  });

  test('relabelling the version fails even when that version exists', () => {
    const twoVersions = keyringFrom({ masterKey: `v1:${masterKey},v2:${generateMasterKey()}` });
    expect(() => decryptEnvelope(ciphertext.replace('.v1.', '.v2.'), BINDING, twoVersions)).toThrow(DECRYPTION_FAILED_MESSAGE);
  });

  test('an unknown version says which one is missing', () => {
    expect(() => decryptEnvelope(ciphertext.replace('.v1.', '.v7.'), BINDING, keyring)).toThrow('master key v7, which is not configured');
  });

  test('failure messages hold neither the key nor the plaintext', () => {
    const message = decryptionMessage(() => decryptEnvelope(ciphertext, 'provider_key:other', keyring));
    const secrets = [SECRET, masterKey, ...encodingsOf(Buffer.from(masterKey, 'base64')), ...encodingsOf(Buffer.from(SECRET))];
    for (const secret of secrets) expect(message).not.toContain(secret);
  });
});

describe('master key rotation', () => {
  test('new ciphertexts use the newest version and old ones keep decrypting', () => {
    const first = generateMasterKey();
    const before = keyringFrom({ masterKey: first });
    const old = encryptEnvelope(SECRET, BINDING, before);
    expect(envelopeKeyVersion(old)).toBe(1);

    const after = keyringFrom({ masterKey: `v1:${first},v2:${generateMasterKey()}` });
    const fresh = encryptEnvelope(SECRET, BINDING, after);
    expect(after.current).toBe(2);
    expect(envelopeKeyVersion(fresh)).toBe(2);
    expect(decryptEnvelope(old, BINDING, after)).toBe(SECRET);
    expect(decryptEnvelope(fresh, BINDING, after)).toBe(SECRET);
    // Until v1 is back in the keyring, the old process could not read v2 rows: no silent downgrade.
    expect(() => decryptEnvelope(fresh, BINDING, before)).toThrow('master key v2, which is not configured');
  });

  test('dropping a retired key makes its rows unreadable', () => {
    const first = generateMasterKey();
    const second = generateMasterKey();
    const old = encryptEnvelope(SECRET, BINDING, keyringFrom({ masterKey: first }));
    const retired = keyringFrom({ masterKey: `v2:${second}` });
    expect(() => decryptEnvelope(old, BINDING, retired)).toThrow('master key v1, which is not configured');
  });
});

describe('canary', () => {
  test('the serialized ciphertext holds neither the plaintext nor the master key in any encoding', () => {
    const masterKey = generateMasterKey();
    const keyring = keyringFrom({ masterKey });
    const masterBytes = Buffer.from(masterKey, 'base64');
    const secretBytes = Buffer.from(SECRET, 'utf8');
    const forbidden = [SECRET, ...encodingsOf(secretBytes), ...encodingsOf(masterBytes)];
    for (let round = 0; round < 50; round += 1) {
      const ciphertext = encryptEnvelope(SECRET, BINDING, keyring);
      const decodedParts = ciphertext
        .split('.')
        .slice(3)
        .map((part) => Buffer.from(part, 'base64url'));
      for (const text of forbidden) expect(ciphertext).not.toContain(text);
      for (const bytes of decodedParts) {
        expect(bytes.includes(secretBytes)).toBe(false);
        expect(bytes.includes(masterBytes)).toBe(false);
      }
    }
  });
});
