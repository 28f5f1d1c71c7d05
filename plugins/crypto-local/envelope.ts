import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * Envelope encryption of one secret per record. A fresh data key encrypts the plaintext; the master
 * key of the current version wraps the data key. The serialized form names the version, so rotating
 * the master key never strands old rows:
 *
 *   kw1.local.v<version>.<base64url(wrap iv | wrapped data key | wrap tag)>.<base64url(iv | ciphertext | tag)>
 */

/** The master keys this process knows, by version. `current` writes; every entry reads. */
export interface MasterKeyring {
  current: number;
  keys: ReadonlyMap<number, KeyObject>;
  /** Where each version came from ("KEYWAY_MASTER_KEY", a file path…), for messages; never key material. */
  sources?: ReadonlyMap<number, string>;
}

const FORMAT_PREFIX = 'kw1.local';
const CIPHER = 'aes-256-gcm';
const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_BYTES = IV_BYTES + DATA_KEY_BYTES + TAG_BYTES;
/** The envelope spells the version with at most nine digits. */
export const MAX_KEY_VERSION = 999_999_999;
const ENVELOPE_PATTERN = /^kw1\.local\.v([1-9]\d{0,8})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

// One message for every authentication failure: telling a wrong binding from a wrong key or a
// tampered byte would only help someone probing the store.
export const DECRYPTION_FAILED_MESSAGE = 'Decryption failed: the ciphertext does not belong to this record or the master key is wrong.';

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

// The NUL separators keep "version then binding" unambiguous whatever characters the binding holds.
function wrapAssociatedData(binding: string, version: number): Buffer {
  return Buffer.from(`${FORMAT_PREFIX}.wrap\0v${version}\0${binding}`, 'utf8');
}

function dataAssociatedData(binding: string): Buffer {
  return Buffer.from(`${FORMAT_PREFIX}.data\0${binding}`, 'utf8');
}

function seal(key: KeyObject | Buffer, plaintext: Buffer, associatedData: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** Returns undefined instead of throwing so callers raise the one uniform message. */
function open(key: KeyObject | Buffer, sealed: Buffer, associatedData: Buffer): Buffer | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}

function requireBinding(binding: string): void {
  // An empty binding would let a ciphertext move between rows, which is what the binding prevents.
  if (binding.length === 0) throw new EnvelopeError('A binding (the record the secret belongs to) is required.');
}

function decodeBase64Url(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64url');
  // Only the canonical spelling is accepted, so one stored value has exactly one serialization.
  return bytes.toString('base64url') === text ? bytes : undefined;
}

export function encryptEnvelope(plaintext: string, binding: string, keyring: MasterKeyring): string {
  requireBinding(binding);
  const version = keyring.current;
  const masterKey = keyring.keys.get(version);
  if (masterKey === undefined) throw new EnvelopeError(`The keyring has no master key for its current version v${version}.`);
  const dataKey = randomBytes(DATA_KEY_BYTES);
  const plaintextBytes = Buffer.from(plaintext, 'utf8');
  try {
    const wrapped = seal(masterKey, dataKey, wrapAssociatedData(binding, version));
    const sealed = seal(dataKey, plaintextBytes, dataAssociatedData(binding));
    return `${FORMAT_PREFIX}.v${version}.${wrapped.toString('base64url')}.${sealed.toString('base64url')}`;
  } finally {
    // Best effort: shortens how long key and secret bytes sit in memory we own.
    dataKey.fill(0);
    plaintextBytes.fill(0);
  }
}

/** The master key version a ciphertext was written under; lets a re-encryption job find stale rows. */
export function envelopeKeyVersion(ciphertext: string): number {
  const match = ENVELOPE_PATTERN.exec(ciphertext);
  const version = match?.[1];
  if (version === undefined) throw new EnvelopeError(`The ciphertext is not in the ${FORMAT_PREFIX} format.`);
  return Number(version);
}

export function decryptEnvelope(ciphertext: string, binding: string, keyring: MasterKeyring): string {
  requireBinding(binding);
  const match = ENVELOPE_PATTERN.exec(ciphertext);
  const [, versionText, wrappedText, sealedText] = match ?? [];
  if (versionText === undefined || wrappedText === undefined || sealedText === undefined) {
    throw new EnvelopeError(`The ciphertext is not in the ${FORMAT_PREFIX} format.`);
  }
  const version = Number(versionText);
  const masterKey = keyring.keys.get(version);
  if (masterKey === undefined) {
    const known = [...keyring.keys.keys()].map((known) => `v${known}`).join(', ');
    throw new EnvelopeError(`The ciphertext was written under master key v${version}, which is not configured (known: ${known}). Add it to the keyring.`);
  }
  const wrapped = decodeBase64Url(wrappedText);
  const sealed = decodeBase64Url(sealedText);
  if (wrapped === undefined || sealed === undefined || wrapped.length !== WRAPPED_BYTES) throw new EnvelopeError(DECRYPTION_FAILED_MESSAGE);
  const dataKey = open(masterKey, wrapped, wrapAssociatedData(binding, version));
  if (dataKey === undefined) throw new EnvelopeError(DECRYPTION_FAILED_MESSAGE);
  try {
    const plaintext = open(dataKey, sealed, dataAssociatedData(binding));
    if (plaintext === undefined) throw new EnvelopeError(DECRYPTION_FAILED_MESSAGE);
    const text = plaintext.toString('utf8');
    plaintext.fill(0);
    return text;
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Re-wraps the data key under the keyring's current version; the sealed secret is kept byte for
 * byte, so the secret itself is never decrypted. Two AES-GCM operations on 32 bytes.
 */
export function rewrapEnvelope(ciphertext: string, binding: string, keyring: MasterKeyring): string {
  requireBinding(binding);
  const [, versionText, wrappedText, sealedText] = ENVELOPE_PATTERN.exec(ciphertext) ?? [];
  if (versionText === undefined || wrappedText === undefined || sealedText === undefined) {
    throw new EnvelopeError(`The ciphertext is not in the ${FORMAT_PREFIX} format.`);
  }
  const version = Number(versionText);
  if (version === keyring.current) return ciphertext;
  const oldKey = keyring.keys.get(version);
  const newKey = keyring.keys.get(keyring.current);
  if (oldKey === undefined) throw new EnvelopeError(`The ciphertext was written under master key v${version}, which is not configured.`);
  if (newKey === undefined) throw new EnvelopeError(`The keyring has no master key for its current version v${keyring.current}.`);
  const wrapped = decodeBase64Url(wrappedText);
  if (wrapped === undefined || wrapped.length !== WRAPPED_BYTES || decodeBase64Url(sealedText) === undefined)
    throw new EnvelopeError(DECRYPTION_FAILED_MESSAGE);
  const dataKey = open(oldKey, wrapped, wrapAssociatedData(binding, version));
  if (dataKey === undefined) throw new EnvelopeError(DECRYPTION_FAILED_MESSAGE);
  try {
    const rewrapped = seal(newKey, dataKey, wrapAssociatedData(binding, keyring.current));
    return `${FORMAT_PREFIX}.v${keyring.current}.${rewrapped.toString('base64url')}.${sealedText}`;
  } finally {
    dataKey.fill(0);
  }
}
