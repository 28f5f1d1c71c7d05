// Secrets: provider and cloud API keys, tokens, private keys and JWTs. The scanner (scan.ts) hands
// `secretInToken` every token run ([A-Za-z0-9_-]) of 20 characters or more, so a prefix test is all
// it takes to dismiss ordinary words; the two patterns that are not token runs (PEM private keys and
// AWS secret keys, which hold `/` and `+`) are found with one indexOf each before any regex.

import { type DetectorId, isTokenChar } from './detectors.ts';

/** Random-looking: an upper-case letter, a lower-case letter and a digit, as keys made of base62 have. */
function looksRandom(text: string, start: number, end: number): boolean {
  let upper = false;
  let lower = false;
  let digit = false;
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code >= 65 && code <= 90) upper = true;
    else if (code >= 97 && code <= 122) lower = true;
    else if (code >= 48 && code <= 57) digit = true;
    if (upper && lower && digit) return true;
  }
  return false;
}

function allUpperOrDigit(text: string, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (!((code >= 65 && code <= 90) || (code >= 48 && code <= 57))) return false;
  }
  return true;
}

const OPENAI_SCOPES = ['proj-', 'svcacct-', 'admin-'];
const GITHUB_PREFIXES = ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'];
const SLACK_PREFIXES = ['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-', 'xoxe-'];

/** The secret a token run [start, end) of at least 20 characters is, if any. */
export function secretInToken(text: string, start: number, end: number): DetectorId | undefined {
  const length = end - start;
  switch (text.charCodeAt(start)) {
    case 115: // s
      if (text.startsWith('sk-ant-', start)) {
        // sk-ant-api03-…, sk-ant-admin01-…: the random part follows the second dash.
        const body = text.indexOf('-', start + 7);
        return body !== -1 && body < end && end - body > 24 && looksRandom(text, body + 1, end) ? 'anthropic_api_key' : undefined;
      }
      if (text.startsWith('sk-', start)) {
        let body = start + 3;
        for (const scope of OPENAI_SCOPES)
          if (text.startsWith(scope, body)) {
            body += scope.length;
            break;
          }
        return end - body >= 20 && looksRandom(text, body, end) ? 'openai_api_key' : undefined;
      }
      if (text.startsWith('sk_live_', start)) return length >= 24 && looksRandom(text, start + 8, end) ? 'stripe_secret_key' : undefined;
      return undefined;
    case 114: // r
      return text.startsWith('rk_live_', start) && length >= 24 && looksRandom(text, start + 8, end) ? 'stripe_secret_key' : undefined;
    case 65: // A
      if (length === 39 && text.startsWith('AIza', start)) return 'google_api_key';
      if (length === 20 && (text.startsWith('AKIA', start) || text.startsWith('ASIA', start)) && allUpperOrDigit(text, start + 4, end)) return 'aws_access_key';
      return undefined;
    case 103: // g
      if (text.startsWith('github_pat_', start)) return length >= 50 && looksRandom(text, start + 11, end) ? 'github_token' : undefined;
      if (length === 40 && text.charCodeAt(start + 1) === 104) {
        for (const prefix of GITHUB_PREFIXES) if (text.startsWith(prefix, start)) return looksRandom(text, start + 4, end) ? 'github_token' : undefined;
      }
      return undefined;
    case 120: // x
      if (text.startsWith('xox', start)) {
        for (const prefix of SLACK_PREFIXES) if (text.startsWith(prefix, start)) return hasDigits(text, start + 5, end, 8) ? 'slack_token' : undefined;
      }
      return undefined;
    default:
      return undefined;
  }
}

function hasDigits(text: string, start: number, end: number, wanted: number): boolean {
  let count = 0;
  for (let index = start; index < end && count < wanted; index++) {
    const code = text.charCodeAt(index);
    if (code >= 48 && code <= 57) count++;
  }
  return count >= wanted;
}

/** Base64url: the token characters without `-`/`_`'s special meaning; a segment is one token run. */
function segmentEnd(text: string, start: number): number {
  let index = start;
  while (index < text.length && isTokenChar(text.charCodeAt(index))) index++;
  return index;
}

function decodeBase64Url(segment: string): string | undefined {
  try {
    const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
    return atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  } catch {
    return undefined;
  }
}

/**
 * A JWT whose header run [start, headerEnd) starts with `eyJ` and is followed by `.`: two more
 * segments (the payload non-empty, the signature possibly empty for `alg: none`), and a header that
 * decodes to a JSON object naming its `alg`.
 */
export function isJwt(text: string, start: number, headerEnd: number): boolean {
  if (headerEnd - start < 10 || text.charCodeAt(headerEnd) !== 46) return false;
  const payloadEnd = segmentEnd(text, headerEnd + 1);
  if (payloadEnd - headerEnd - 1 < 4 || text.charCodeAt(payloadEnd) !== 46) return false;
  const signatureEnd = segmentEnd(text, payloadEnd + 1);
  if (signatureEnd < text.length && text.charCodeAt(signatureEnd) === 46) return false; // four segments: not a JWS
  const header = decodeBase64Url(text.slice(start, headerEnd));
  if (header === undefined) return false;
  try {
    const parsed: unknown = JSON.parse(header);
    return typeof parsed === 'object' && parsed !== null && typeof (parsed as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/** `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |DSA |PGP ]PRIVATE KEY[ BLOCK]-----`. */
export function hasPrivateKey(text: string): boolean {
  let at = text.indexOf('PRIVATE KEY');
  while (at !== -1) {
    const begin = text.lastIndexOf('-----BEGIN ', at);
    if (begin !== -1 && at - begin <= 30 && !text.slice(begin, at).includes('\n')) {
      const close = text.indexOf('-----', at + 11);
      if (close !== -1 && close - at <= 17) return true;
    }
    at = text.indexOf('PRIVATE KEY', at + 11);
  }
  return false;
}

/**
 * An AWS secret access key is 40 characters of base64 with nothing to recognise it by, so only one
 * named as such counts: `aws_secret_access_key = …`, `"SecretAccessKey": "…"`, `AWS_SECRET=…`.
 */
const AWS_SECRET = /(?:aws[\w .-]{0,20}secret|secret[_ .-]?access[_ .-]?key)[\w .-]{0,20}["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi;

export function hasAwsSecret(text: string): boolean {
  // 'cret', not 'secret': indexOf skips ahead on the first character, and 'e' is everywhere.
  if (text.indexOf('cret') === -1 && text.indexOf('CRET') === -1) return false;
  for (const match of text.matchAll(AWS_SECRET)) {
    const value = match[1] ?? '';
    if (/[A-Z]/.test(value) && /[a-z]/.test(value) && /[0-9/+]/.test(value)) return true;
  }
  return false;
}
