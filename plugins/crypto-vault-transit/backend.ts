// The vault-transit crypto backend. Two modes:
//
// - envelope (default): a fresh 256-bit data key per record seals the secret locally with AES-256-GCM
//   (the binding as associated data); Vault Transit wraps the data key. Re-wrap is Vault's `rewrap`:
//   the data key never leaves Vault during a rotation, and the sealed secret is kept byte for byte.
//     kw1.vault.v<N>.<vault:vN:…>.<base64url(iv | ciphertext | tag)>
// - direct (KEYWAY_VAULT_FIPS): Vault Transit encrypts the secret itself, so every cryptographic
//   operation on it runs inside Vault's validated module; the key must be derived, and the binding is
//   the derivation context.
//     kw1.vault.v<N>.<vault:vN:…>
//
// Versions are the Transit key's versions. Unwrapped data keys are kept in memory for a short time
// (and decrypted provider keys by the core's key vault), so requests do not call Vault.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { CryptoBackend, RewrapResult, SealedItem, ValidatedCryptoModule } from '../../core/spec/crypto-backend.ts';
import type { TransitClient, TransitKeyInfo } from './client.ts';

export const VAULT_BACKEND_NAME = 'vault-transit';
const PREFIX = 'kw1.vault';
const PATTERN = /^kw1\.vault\.v([1-9]\d{0,8})\.(vault:v([1-9]\d{0,8}):[A-Za-z0-9+/]+={0,2})(?:\.([A-Za-z0-9_-]+))?$/;
const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BATCH_LIMIT = 250;
export const DECRYPTION_FAILED = 'Decryption failed: the ciphertext does not belong to this record or the Transit key cannot open it.';

export interface VaultBackendOptions {
  client: TransitClient;
  key: TransitKeyInfo;
  mode: 'envelope' | 'direct';
  dataKeyTtlMs: number;
  validatedModule: ValidatedCryptoModule;
  source: string;
  now?: () => number;
}

interface Parsed {
  version: number;
  wrapped: string;
  sealed: string | undefined;
}

function parse(ciphertext: string): Parsed {
  const match = PATTERN.exec(ciphertext);
  if (match === null || match[1] !== match[3]) throw new Error(`The ciphertext is not in the ${PREFIX} format.`);
  return { version: Number(match[1]), wrapped: match[2] as string, sealed: match[4] };
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function dataAssociatedData(binding: string): Buffer {
  return Buffer.from(`${PREFIX}.data\0${binding}`, 'utf8');
}

function requireBinding(binding: string): void {
  if (binding.length === 0) throw new Error('A binding (the record the secret belongs to) is required.');
}

function sealLocally(dataKey: Buffer, plaintext: string, binding: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(dataAssociatedData(binding));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

function openLocally(dataKey: Buffer, sealedText: string, binding: string): string {
  const sealed = Buffer.from(sealedText, 'base64url');
  if (sealed.toString('base64url') !== sealedText || sealed.length < IV_BYTES + TAG_BYTES) throw new Error(DECRYPTION_FAILED);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(dataAssociatedData(binding));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(DECRYPTION_FAILED);
  }
}

/** A short-lived, bounded memory of unwrapped data keys, by wrapped key and binding. */
class DataKeyCache {
  private readonly entries = new Map<string, { key: Buffer; expires: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly limit = 10_000,
  ) {}

  private static name(wrapped: string, binding: string): string {
    return createHash('sha256').update(wrapped).update('\0').update(binding).digest('base64');
  }

  get(wrapped: string, binding: string): Buffer | undefined {
    const name = DataKeyCache.name(wrapped, binding);
    const entry = this.entries.get(name);
    if (entry === undefined) return undefined;
    if (entry.expires > this.now()) return entry.key;
    entry.key.fill(0);
    this.entries.delete(name);
    return undefined;
  }

  set(wrapped: string, binding: string, key: Buffer): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= this.limit) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) {
        this.entries.get(oldest)?.key.fill(0);
        this.entries.delete(oldest);
      }
    }
    this.entries.set(DataKeyCache.name(wrapped, binding), { key: Buffer.from(key), expires: this.now() + this.ttlMs });
  }
}

export function createVaultTransitBackend(options: VaultBackendOptions): CryptoBackend & { readonly mode: string } {
  let key = options.key;
  const { client, mode } = options;
  const cache = new DataKeyCache(options.dataKeyTtlMs, options.now ?? Date.now);
  const context = (binding: string): { context?: string } => (key.derived ? { context: base64(binding) } : {});

  const encryptWith = async (plaintext: string, binding: string, keyVersion: number | undefined): Promise<string> => {
    requireBinding(binding);
    const version = keyVersion === undefined ? {} : { key_version: keyVersion };
    if (mode === 'direct') {
      const result = await client.one('encrypt', { plaintext: base64(plaintext), ...context(binding), ...version });
      return `${PREFIX}.v${versionOf(result.ciphertext)}.${result.ciphertext}`;
    }
    const dataKey = randomBytes(DATA_KEY_BYTES);
    try {
      const result = await client.one('encrypt', { plaintext: dataKey.toString('base64'), ...context(binding), ...version });
      const wrapped = String(result.ciphertext);
      cache.set(wrapped, binding, dataKey);
      return `${PREFIX}.v${versionOf(wrapped)}.${wrapped}.${sealLocally(dataKey, plaintext, binding)}`;
    } finally {
      dataKey.fill(0);
    }
  };

  const decrypt = async (ciphertext: string, binding: string): Promise<string> => {
    requireBinding(binding);
    const parsed = parse(ciphertext);
    if ((mode === 'direct') !== (parsed.sealed === undefined)) throw new Error(`The ciphertext was sealed in the other mode of ${VAULT_BACKEND_NAME}.`);
    if (mode === 'direct') {
      const result = await client.one('decrypt', { ciphertext: parsed.wrapped, ...context(binding) }).catch(() => {
        throw new Error(DECRYPTION_FAILED);
      });
      return Buffer.from(String(result.plaintext), 'base64').toString('utf8');
    }
    let dataKey = cache.get(parsed.wrapped, binding);
    if (dataKey === undefined) {
      const result = await client.one('decrypt', { ciphertext: parsed.wrapped, ...context(binding) }).catch((error: unknown) => {
        // Unreachable Vault is worth saying; anything Vault refused is the one uniform message.
        throw new Error(error instanceof Error && (error as { status?: number }).status === undefined ? error.message : DECRYPTION_FAILED);
      });
      dataKey = Buffer.from(String(result.plaintext), 'base64');
      if (dataKey.length !== DATA_KEY_BYTES) throw new Error(DECRYPTION_FAILED);
    }
    const plaintext = openLocally(dataKey, parsed.sealed as string, binding);
    cache.set(parsed.wrapped, binding, dataKey);
    return plaintext;
  };

  const rewrapMany = async (items: readonly SealedItem[]): Promise<RewrapResult[]> => {
    const results: RewrapResult[] = [];
    for (let start = 0; start < items.length; start += BATCH_LIMIT) {
      const chunk = items.slice(start, start + BATCH_LIMIT);
      const parsed = chunk.map((item) => {
        try {
          requireBinding(item.binding);
          return parse(item.ciphertext);
        } catch (error) {
          return error as Error;
        }
      });
      const valid = chunk.flatMap((item, index) => {
        const entry = parsed[index];
        return entry instanceof Error || entry === undefined ? [] : [{ index, item, entry }];
      });
      const answers = await client.batch(
        'rewrap',
        valid.map(({ item, entry }) => ({ ciphertext: entry.wrapped, ...context(item.binding) })),
      );
      const byIndex = new Map(valid.map((entry, position) => [entry.index, { ...entry, answer: answers[position] }]));
      for (const [index, entry] of parsed.entries()) {
        if (entry instanceof Error || entry === undefined) {
          results.push({ error: entry?.message ?? 'not parsed' });
          continue;
        }
        const answer = byIndex.get(index)?.answer;
        if (answer?.ciphertext === undefined) {
          results.push({ error: `Vault Transit rewrap refused it: ${String(answer?.error ?? 'no answer').slice(0, 200)}` });
          continue;
        }
        const sealed = entry.sealed === undefined ? '' : `.${entry.sealed}`;
        results.push({ ciphertext: `${PREFIX}.v${versionOf(answer.ciphertext)}.${answer.ciphertext}${sealed}` });
      }
    }
    return results;
  };

  return {
    name: VAULT_BACKEND_NAME,
    mode,
    encrypt: (plaintext, binding) => encryptWith(plaintext, binding, undefined),
    decrypt: async (ciphertext, binding) => decrypt(ciphertext, binding),
    currentKeyVersion: () => key.latestVersion,
    keyVersions: () => Array.from({ length: key.latestVersion - key.minDecryptionVersion + 1 }, (_, index) => key.minDecryptionVersion + index),
    encryptWithKeyVersion: async (plaintext, binding, keyVersion) => {
      if (keyVersion < key.minDecryptionVersion || keyVersion > key.latestVersion || keyVersion < key.minEncryptionVersion) {
        throw new Error(
          `Transit key version v${keyVersion} cannot encrypt (versions v${Math.max(key.minDecryptionVersion, key.minEncryptionVersion)}–v${key.latestVersion}).`,
        );
      }
      return encryptWith(plaintext, binding, keyVersion);
    },
    keySource: (keyVersion) => `Vault Transit key '${client.keyName}' v${keyVersion} (${options.source})`,
    validatedModule: options.validatedModule,
    rewrap: async (ciphertext, binding) => {
      const [result] = await rewrapMany([{ ciphertext, binding }]);
      if (result === undefined || 'error' in result) throw new Error(result === undefined ? 'no answer' : result.error);
      return result.ciphertext;
    },
    rewrapMany,
    keyVersionOf: (ciphertext) => {
      try {
        return parse(ciphertext).version;
      } catch {
        return undefined;
      }
    },
    refreshKeyVersions: async () => {
      key = await client.readKey();
    },
  };
}

/** `vault:v3:…` → 3. */
function versionOf(vaultCiphertext: string | undefined): number {
  const match = /^vault:v([1-9]\d{0,8}):/.exec(vaultCiphertext ?? '');
  if (match === null) throw new Error('Vault Transit answered without a versioned ciphertext.');
  return Number(match[1]);
}
