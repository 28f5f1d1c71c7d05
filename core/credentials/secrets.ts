import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Unbiased random base62 text from the system CSPRNG. */
export function randomToken(length: number): string {
  let result = '';
  while (result.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 62 * 4: rejecting larger bytes keeps every character equally likely.
      if (byte < 248 && result.length < length) result += ALPHABET[byte % 62];
    }
  }
  return result;
}

export function randomId(prefix: string): string {
  return `${prefix}_${randomToken(20)}`;
}

export type GatewayKeyKind = 'op' | 'ak' | 'mk';

/** Gateway keys carry their kind in the prefix (operator, account, member) and 40 random characters. */
export function generateGatewayKey(kind: GatewayKeyKind): string {
  return `kw_${kind}_${randomToken(40)}`;
}

/**
 * Gateway keys are 238-bit random strings, so a fast hash is enough: there is nothing to brute-force,
 * and the lookup runs on every request.
 */
export function hashGatewayKey(key: string): string {
  return Bun.SHA256.hash(key, 'hex');
}

/** `sk-proj-…abcd`: the key's family prefix and last four characters, never more. */
export function maskKey(key: string): string {
  const family = keyFamily(key);
  if (key.length < 12) return `${family}…`;
  return `${family}…${key.slice(-4)}`;
}

/** A key's family prefix (`sk-proj-`, `sk-ant-`, `pplx-`), shown by `maskKey`; empty when none or the key is short. */
export function keyFamily(key: string): string {
  const family = familyShape(key);
  return family.length <= key.length - 12 ? family : '';
}

/** What a family prefix looks like at the start of `text` (2 to 5 letters, a dash or `_`, maybe a second part), however short the rest. */
export function familyShape(text: string): string {
  return /^([a-zA-Z]{2,5}[-_](?:[a-z]{2,5}[-_])?)/.exec(text)?.[1] ?? '';
}

/** A stable public identifier of a secret: enough to tell keys apart, useless to recover one. */
export function fingerprint(key: string): string {
  return `sha256:${createHash('sha256').update(`keyway-fingerprint:${key}`).digest('hex').slice(0, 16)}`;
}
