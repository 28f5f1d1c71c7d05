// The crypto-backend conformance suite: what every CryptoBackend (core/spec/crypto-backend.ts) must
// do to seal provider keys at rest, whether the key lives in a local file or a KMS. Call it from
// your own test file with a factory that returns a ready backend:
//
//   describeCryptoBackendConformance('vault-transit', async () => createTransitBackend(testConfig));
//
// The suite only uses the contract: it never parses a ciphertext, so any serialization passes as
// long as it is a string that round-trips and rejects what it must.

import { beforeAll, describe, expect, test } from 'bun:test';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';

export type CreateCryptoBackend = () => Promise<CryptoBackend>;

/** What the versioning part of the suite needs beyond a backend; each part is skipped when absent. */
export interface CryptoConformanceOptions {
  /**
   * Makes a new key version current (a new master key version, a Transit key rotation) and answers
   * the backend to use from then on: it must still decrypt what the old version sealed.
   */
  rotate?: (backend: CryptoBackend) => Promise<CryptoBackend>;
  /** Key material that must never appear in an error message or a ciphertext (master keys, tokens). */
  keyMaterial?: () => string[];
}

const BINDING = 'provider_key:pk_conformance_1:account:acc_conformance';
const OTHER_BINDINGS = ['provider_key:pk_conformance_2:account:acc_conformance', 'provider_key:pk_conformance_1:account:acc_other', `${BINDING} `];
/** Distinctive enough that finding it anywhere can only mean it leaked. */
const SECRET = 'sk-proj-ConformanceCanary0123456789abcdefghijklmnopqrstuvwxyz';

export function describeCryptoBackendConformance(name: string, create: CreateCryptoBackend, options: CryptoConformanceOptions = {}): void {
  describe(`crypto-backend conformance: ${name}`, () => {
    let backend: CryptoBackend;
    beforeAll(async () => {
      backend = await create();
    });
    const current = (): CryptoBackend => backend;
    describeRoundTrips(current);
    describeConfidentiality(current);
    describeRefusals(current);
    describeKeyVersion(current);
    describeOptionalKeyVersions(current);
    describeNoKeyMaterialInErrors(current, options);
    describeRotation(current, options, (next) => {
      backend = next;
    });
  });
}

/** Every message a failing call rejects with. */
async function failureMessages(backend: CryptoBackend): Promise<string[]> {
  const ciphertext = await backend.encrypt(SECRET, BINDING);
  const attempts: Array<() => Promise<unknown>> = [
    () => backend.decrypt(ciphertext, OTHER_BINDINGS[0] as string),
    () => backend.decrypt(tamper(ciphertext), BINDING),
    () => backend.decrypt(SECRET, BINDING),
    () => backend.encrypt(SECRET, ''),
  ];
  const { rewrap, encryptWithKeyVersion } = backend;
  if (rewrap !== undefined)
    attempts.push(
      () => rewrap(ciphertext, OTHER_BINDINGS[0] as string),
      () => rewrap(SECRET, BINDING),
    );
  if (encryptWithKeyVersion !== undefined) attempts.push(() => encryptWithKeyVersion(SECRET, BINDING, 999_999));
  const messages: string[] = [];
  for (const attempt of attempts) {
    try {
      await attempt();
    } catch (error) {
      messages.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    }
  }
  return messages;
}

function describeNoKeyMaterialInErrors(backend: () => CryptoBackend, options: CryptoConformanceOptions): void {
  test('errors carry no key material: neither the plaintext nor any key or token, in any encoding', async () => {
    const messages = await failureMessages(backend());
    expect(messages.length).toBeGreaterThanOrEqual(4);
    const secrets = [...encodingsOf(SECRET), ...(options.keyMaterial?.() ?? []).flatMap((material) => [material, ...encodingsOf(material)])];
    for (const message of messages) for (const secret of secrets) expect(message).not.toContain(secret);
  });

  test('a ciphertext holds no key material', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    for (const material of options.keyMaterial?.() ?? []) expect(ciphertext).not.toContain(material);
  });
}

/** Versioning and re-wrap: a rotation keeps old ciphertexts readable and re-wrap moves them to the new version. */
function describeRotation(backend: () => CryptoBackend, options: CryptoConformanceOptions, replace: (next: CryptoBackend) => void): void {
  test('after a rotation: old ciphertexts still decrypt, new ones name the new version, re-wrap moves old ones over', async () => {
    if (options.rotate === undefined) return;
    const before = backend();
    const oldVersion = before.currentKeyVersion();
    const old = await before.encrypt(SECRET, BINDING);
    const others = await Promise.all(['x', 'clé-🔑'].map((plaintext) => before.encrypt(plaintext, BINDING)));
    const after = await options.rotate(before);
    replace(after);
    expect(after.currentKeyVersion()).toBeGreaterThan(oldVersion);
    expect(await after.decrypt(old, BINDING)).toBe(SECRET);
    const fresh = await after.encrypt(SECRET, BINDING);
    if (after.keyVersionOf !== undefined) {
      expect(after.keyVersionOf(old)).toBe(oldVersion);
      expect(after.keyVersionOf(fresh)).toBe(after.currentKeyVersion());
      expect(after.keyVersionOf('not a ciphertext')).toBeUndefined();
    }
    if (after.keyVersions !== undefined) expect(after.keyVersions()).toEqual(expect.arrayContaining([oldVersion, after.currentKeyVersion()]));
    if (after.rewrap !== undefined) {
      const rewrapped = await after.rewrap(old, BINDING);
      expect(rewrapped).not.toBe(old);
      expect(await after.decrypt(rewrapped, BINDING)).toBe(SECRET);
      if (after.keyVersionOf !== undefined) expect(after.keyVersionOf(rewrapped)).toBe(after.currentKeyVersion());
      for (const leak of encodingsOf(SECRET)) expect(rewrapped).not.toContain(leak);
      // Binding and integrity hold through a re-wrap.
      // A cheap re-wrap may leave the sealed secret unopened: a wrong binding or a tampered byte is then
      // caught at decrypt, never later.
      const moved = await after.rewrap(old, OTHER_BINDINGS[0] as string).catch(() => undefined);
      if (moved !== undefined) await expect(after.decrypt(moved, OTHER_BINDINGS[0] as string)).rejects.toThrow();
      const tampered = await after.rewrap(tamper(old), BINDING).catch(() => undefined);
      if (tampered !== undefined) await expect(after.decrypt(tampered, BINDING)).rejects.toThrow();
      await expect(after.decrypt(rewrapped, OTHER_BINDINGS[0] as string)).rejects.toThrow();
      // Re-wrapping what is already current still opens to the same plaintext.
      expect(await after.decrypt(await after.rewrap(fresh, BINDING), BINDING)).toBe(SECRET);
    }
    if (after.rewrapMany !== undefined) {
      const results = await after.rewrapMany([
        { ciphertext: others[0] as string, binding: BINDING },
        { ciphertext: tamper(others[1] as string), binding: BINDING },
        { ciphertext: others[1] as string, binding: BINDING },
        { ciphertext: 'garbage', binding: BINDING },
      ]);
      expect(results).toHaveLength(4);
      const [first, second, third, fourth] = results;
      expect(first !== undefined && 'ciphertext' in first ? await after.decrypt(first.ciphertext, BINDING) : 'failed').toBe('x');
      if (second !== undefined && 'ciphertext' in second) await expect(after.decrypt(second.ciphertext, BINDING)).rejects.toThrow();
      expect(third !== undefined && 'ciphertext' in third ? await after.decrypt(third.ciphertext, BINDING) : 'failed').toBe('clé-🔑');
      expect(fourth !== undefined && 'error' in fourth).toBe(true);
    }
  });
}

function describeRoundTrips(backend: () => CryptoBackend): void {
  const cases: Array<[string, string]> = [
    ['a realistic key', SECRET],
    ['one character', 'x'],
    ['whitespace only', ' \t'],
    ['10 KB', 'k'.repeat(10 * 1024)],
    ['unicode (accents, CJK, emoji, RTL)', 'clé-ключ-鍵-🔑-مفتاح'],
    ['quotes, backslashes and separators', `a'b"c\\d.e:f,g\nh`],
  ];
  for (const [label, plaintext] of cases) {
    test(`round trip: ${label}`, async () => {
      const ciphertext = await backend().encrypt(plaintext, BINDING);
      expect(typeof ciphertext).toBe('string');
      expect(await backend().decrypt(ciphertext, BINDING)).toBe(plaintext);
    });
  }
}

/** Every spelling under which a plaintext could sit inside a ciphertext unprotected. */
function encodingsOf(plaintext: string): string[] {
  const bytes = Buffer.from(plaintext, 'utf8');
  return [plaintext, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('base64').replace(/=+$/, '')];
}

function describeConfidentiality(backend: () => CryptoBackend): void {
  test('two encryptions of the same plaintext and binding differ (a fresh nonce each time)', async () => {
    const first = await backend().encrypt(SECRET, BINDING);
    const second = await backend().encrypt(SECRET, BINDING);
    expect(first).not.toBe(second);
    expect(await backend().decrypt(second, BINDING)).toBe(SECRET);
  });

  test('the ciphertext contains neither the plaintext nor its base64, base64url or hex', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    for (const leak of encodingsOf(SECRET)) expect(ciphertext).not.toContain(leak);
  });
}

/** The message a rejected decryption carries; fails the test if it resolved instead. */
async function rejectionMessage(pending: Promise<string>): Promise<string> {
  try {
    await pending;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error('expected decrypt to reject, but it resolved');
}

/** Flips one character near the middle, skipping separators, so the damage lands in sealed bytes. */
function tamper(ciphertext: string): string {
  let index = Math.floor(ciphertext.length / 2);
  while (index < ciphertext.length - 1 && !/[A-Za-z0-9]/.test(ciphertext[index] ?? '')) index++;
  const replacement = ciphertext[index] === 'A' ? 'B' : 'A';
  return `${ciphertext.slice(0, index)}${replacement}${ciphertext.slice(index + 1)}`;
}

function describeRefusals(backend: () => CryptoBackend): void {
  test('decrypt with another binding rejects (a ciphertext cannot move to another row)', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    for (const binding of OTHER_BINDINGS) await expect(backend().decrypt(ciphertext, binding)).rejects.toThrow();
  });

  test('a tampered ciphertext (one character flipped in the middle) rejects', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    const tampered = tamper(ciphertext);
    expect(tampered).not.toBe(ciphertext);
    await expect(backend().decrypt(tampered, BINDING)).rejects.toThrow();
  });

  test('a truncated ciphertext and a non-ciphertext reject', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    await expect(backend().decrypt(ciphertext.slice(0, -4), BINDING)).rejects.toThrow();
    await expect(backend().decrypt(SECRET, BINDING)).rejects.toThrow();
  });

  test('decrypt failures reject the promise instead of throwing synchronously', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    let pending: Promise<string> | undefined;
    expect(() => {
      pending = backend().decrypt(ciphertext, OTHER_BINDINGS[0] as string);
    }).not.toThrow();
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toThrow();
  });

  test('rejection messages never contain the plaintext', async () => {
    const ciphertext = await backend().encrypt(SECRET, BINDING);
    const messages = [
      await rejectionMessage(backend().decrypt(ciphertext, OTHER_BINDINGS[0] as string)),
      await rejectionMessage(backend().decrypt(tamper(ciphertext), BINDING)),
      // A plaintext handed over as a ciphertext (an unmigrated row) must not be echoed back either.
      await rejectionMessage(backend().decrypt(SECRET, BINDING)),
    ];
    for (const message of messages) {
      expect(message.length).toBeGreaterThan(0);
      for (const leak of encodingsOf(SECRET)) expect(message).not.toContain(leak);
    }
  });
}

function describeKeyVersion(backend: () => CryptoBackend): void {
  test('currentKeyVersion is a positive integer', () => {
    const version = backend().currentKeyVersion();
    expect(Number.isInteger(version)).toBe(true);
    expect(version).toBeGreaterThan(0);
  });

  test('currentKeyVersion is stable across calls and encryptions', async () => {
    const before = backend().currentKeyVersion();
    await backend().encrypt(SECRET, BINDING);
    expect(backend().currentKeyVersion()).toBe(before);
    expect(backend().currentKeyVersion()).toBe(before);
  });

  test('the backend names itself', () => {
    expect(typeof backend().name).toBe('string');
    expect(backend().name.length).toBeGreaterThan(0);
  });
}

/** The optional methods the master key check uses (core/credentials/key-check.ts); skipped when absent. */
function describeOptionalKeyVersions(backend: () => CryptoBackend): void {
  test('keyVersions, when offered, lists positive integers including the current version', () => {
    const versions = backend().keyVersions?.();
    if (versions === undefined) return;
    expect(versions.every((version) => Number.isInteger(version) && version > 0)).toBe(true);
    expect(versions).toContain(backend().currentKeyVersion());
  });

  test('encryptWithKeyVersion, when offered, seals under every listed version and refuses an unknown one', async () => {
    const sealWith = backend().encryptWithKeyVersion;
    if (sealWith === undefined) return;
    const versions = backend().keyVersions?.() ?? [backend().currentKeyVersion()];
    for (const version of versions) expect(await backend().decrypt(await sealWith(SECRET, BINDING, version), BINDING)).toBe(SECRET);
    const unknown = Math.max(...versions) + 1;
    await expect(sealWith(SECRET, BINDING, unknown)).rejects.toThrow();
  });

  test('keySource, when offered, answers a short text or undefined', () => {
    const source = backend().keySource?.(backend().currentKeyVersion());
    if (source === undefined) return;
    expect(typeof source).toBe('string');
    expect(source).not.toContain('\n');
  });

  test('validatedModule, when declared, says whether it is validated, and a validated one names its standard', () => {
    const declared = backend().validatedModule;
    if (declared === undefined) return;
    expect(typeof declared.validated).toBe('boolean');
    expect(declared.description.length).toBeGreaterThan(0);
    if (declared.validated) expect(declared.standard).toMatch(/^FIPS 140-[23]$/);
  });
}
