import { createHash } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;

const MINIMUM_DISTINCT_BYTES = 16;
const LONGEST_ALLOWED_RUN = 7;

// Keys people derive from a passphrase instead of generating: sha256 of a word, or placeholder
// bytes. Each check below would let a random key through with a probability far below 2^-40.
const WEAK_PASSPHRASES = ['', 'password', 'changeme', 'change-me', 'secret', 'keyway', 'admin', 'masterkey', 'master-key', 'test', '123456'];
const WEAK_KEYS: readonly Buffer[] = [
  Buffer.alloc(MASTER_KEY_BYTES, 0x00),
  Buffer.alloc(MASTER_KEY_BYTES, 0xff),
  ...WEAK_PASSPHRASES.map((passphrase) => createHash('sha256').update(passphrase, 'utf8').digest()),
  // The example in docs/security.md, which someone will paste.
  Buffer.from('q3BvdhzqNOAT6MqudHtUaN4bvvbpo0h3FBvFNPyzaGM=', 'base64'),
];

function longestStepRun(bytes: Buffer, step: 1 | -1): number {
  let longest = 1;
  let current = 1;
  for (let index = 1; index < bytes.length; index += 1) {
    const previous = bytes[index - 1] ?? 0;
    const value = bytes[index] ?? 0;
    current = value === (previous + step + 256) % 256 ? current + 1 : 1;
    longest = Math.max(longest, current);
  }
  return longest;
}

function repeatsWithPeriod(bytes: Buffer, period: number): boolean {
  for (let index = period; index < bytes.length; index += 1) {
    if (bytes[index] !== bytes[index - period]) return false;
  }
  return true;
}

/** Why a 32-byte key is too weak to protect secrets, or undefined when it looks random. */
export function weakKeyReason(bytes: Buffer): string | undefined {
  const distinct = new Set(bytes).size;
  if (distinct === 1) return `all ${bytes.length} bytes are the same`;
  if (WEAK_KEYS.some((weak) => weak.equals(bytes))) return 'it is a well-known weak key (a placeholder, a documentation example or the hash of a common word)';
  if (distinct < MINIMUM_DISTINCT_BYTES) return `it has only ${distinct} distinct byte values where a random key has about 30`;
  const ascending = longestStepRun(bytes, 1);
  const descending = longestStepRun(bytes, -1);
  if (ascending > LONGEST_ALLOWED_RUN) return `it contains a run of ${ascending} ascending byte values`;
  if (descending > LONGEST_ALLOWED_RUN) return `it contains a run of ${descending} descending byte values`;
  for (let period = 1; period <= bytes.length / 2; period += 1) {
    if (repeatsWithPeriod(bytes, period)) return `it repeats a ${period}-byte pattern`;
  }
  if (bytes.every((value) => value >= 0x20 && value <= 0x7e)) return 'every byte is printable text, so it is a password rather than random bytes';
  return undefined;
}
