// The forms of a failed attempt's key that its error is scrubbed of (core/credentials/echoed-key-forms.ts,
// applied by withoutSecret): a short start cut with a mask, and base64 of the key or of the credential
// that carried it at any alignment, whole or cut; the rest of the provider's message is kept, and a
// message without any of them is the same string.

import { describe, expect, test } from 'bun:test';
import { redactEchoedKeyForms } from '../../core/credentials/echoed-key-forms.ts';
import { withoutSecret } from '../../core/lifecycle/attempt-failures.ts';
import { upstreamFailure } from '../../core/wire/provider-kit.ts';

const KEY = 'pplx-GaBGlubw2ZcqTk6g1Kyo9aOxikuGzNYMIIofGjtdA';

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

const redact = (text: string): string => redactEchoedKeyForms(text, KEY);

describe('a start of the key cut with a mask', () => {
  test.each([`${KEY.slice(0, 4)}…`, `${KEY.slice(0, 7)}…`, `${KEY.slice(0, 6)}...`, `${KEY.slice(0, 5)}*`, `${KEY.slice(0, 4)}****${KEY.slice(-4)}`])(
    '%s',
    (form) => {
      expect(redact(`Invalid API key provided: ${form}. Check it.`)).toBe('Invalid API key provided: [REDACTED]. Check it.');
    },
  );

  test('a start without a mask, or three characters with one, stays: neither is an echo', () => {
    for (const text of [`the ${KEY.slice(0, 7)} family`, `prefix ${KEY.slice(0, 3)}… of keys`, 'pplx-sonar… is a model']) expect(redact(text)).toBe(text);
  });
});

describe('base64 of the key or of its credential', () => {
  const credentials = [KEY, `Bearer ${KEY}`, `:${KEY}`, `${KEY}:`, `user:${KEY}`, `ab:${KEY}`, `a:${KEY}`];
  for (const credential of credentials) {
    test(`of "${credential.replace(KEY, '<key>')}", standard and URL-safe, padded or not`, () => {
      for (const encoded of [base64(credential), base64(credential).replace(/=+$/, ''), base64url(credential), `${base64url(credential)}=`]) {
        expect(redact(`Invalid credentials ${encoded} (401)`)).toBe('Invalid credentials [REDACTED] (401)');
        expect(redact(`header=${encoded}`)).toBe('header=[REDACTED]');
      }
    });
  }

  test('cut short, as long as it still spells six of the key’s characters', () => {
    const encoded = base64(`Bearer ${KEY}`);
    // "Bearer " and six characters of the key: 13 bytes, 18 base64 characters.
    expect(redact(`token ${encoded.slice(0, 18)}…`)).toBe('token [REDACTED]…');
    expect(redact(`token ${encoded.slice(0, 12)}…`)).toBe(`token ${encoded.slice(0, 12)}…`);
  });

  test('ordinary base64 and words stay as they are', () => {
    const text = `request ${base64('some other credential entirely')} failed: see https://docs.example.com/errors/unauthorized_request`;
    expect(redact(text)).toBe(text);
  });
});

test('a key shorter than 8 characters is not looked for', () => {
  expect(redactEchoedKeyForms('key abcd… and YWJjZGVmZw==', 'abcdefg')).toBe('key abcd… and YWJjZGVmZw==');
});

describe('withoutSecret, on an upstream failure', () => {
  test("the provider's message, cut at its limit in the middle of an encoded echo, keeps none of it", () => {
    const message = `${'The request was refused because the credential sent is not valid. '.repeat(2)}Received: ${base64(`Bearer ${KEY}`)}`;
    const failure = upstreamFailure({ provider: 'perplexity', status: 401, reason: 'auth_error', message });
    expect(failure.message).toContain(base64(`Bearer ${KEY}`).slice(0, 20));
    const scrubbed = withoutSecret(failure, KEY);
    expect(scrubbed.message).toEndWith('Received: [REDACTED]…');
    expect(scrubbed.code).toBe('provider_key_rejected');
  });

  test('the param and the extra strings are scrubbed too; a failure without any form is the same object', () => {
    const failure = upstreamFailure({
      provider: 'openai',
      status: 401,
      reason: 'auth_error',
      message: 'bad key',
      nativeCode: base64url(KEY),
      param: `${KEY.slice(0, 6)}...`,
    });
    const scrubbed = withoutSecret(failure, KEY);
    expect(scrubbed.extra?.upstream_code).toBe('[REDACTED]');
    expect(scrubbed.param).toBe('[REDACTED]');
    const plain = upstreamFailure({ provider: 'openai', status: 401, reason: 'auth_error', message: 'Incorrect API key provided.' });
    expect(withoutSecret(plain, KEY)).toBe(plain);
  });
});
