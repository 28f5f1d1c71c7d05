// Retry-After as Keyway reads it from upstreams (QA14, finding 8): delay-seconds or an HTTP date, held
// to a day; what is neither is ignored. And as Keyway writes it: never more than a day, whoever set it.

import { describe, expect, test } from 'bun:test';
import { errorHeaders, KeywayError } from '../../core/errors.ts';
import { upstreamFailure } from '../../core/wire/provider-kit.ts';
import { MAX_RETRY_AFTER_SECONDS, parseRetryAfter, retryAfterHeader } from '../../core/wire/retry-after.ts';

const read = (headers: Record<string, string>): number | undefined => parseRetryAfter(new Headers(headers));

describe('reading an upstream Retry-After', () => {
  test('delay-seconds and retry-after-ms, as sent', () => {
    expect(read({ 'retry-after': '7' })).toBe(7);
    expect(read({ 'retry-after': ' 30 ' })).toBe(30);
    expect(read({ 'retry-after': '0' })).toBe(0);
    expect(read({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1.5);
    expect(read({ 'retry-after-ms': '250.5' })).toBe(0.2505);
  });

  test('an HTTP date, as seconds from now', () => {
    const soon = new Date(Date.now() + 90_000).toUTCString();
    const seconds = read({ 'retry-after': soon }) as number;
    expect(seconds).toBeGreaterThan(85);
    expect(seconds).toBeLessThanOrEqual(90);
    expect(read({ 'retry-after': 'Sun, 06 Nov 1994 08:49:37 GMT' })).toBe(0);
  });

  test('a far-future date is held to a day, not 73 years', () => {
    expect(MAX_RETRY_AFTER_SECONDS).toBe(86_400);
    expect(read({ 'retry-after': 'Wed, 21 Oct 2099 07:28:00 GMT' })).toBe(86_400);
    expect(read({ 'retry-after': '2299632102' })).toBe(86_400);
    expect(read({ 'retry-after-ms': '99999999999' })).toBe(86_400);
  });

  test('what is neither seconds nor a date is ignored, as if absent', () => {
    for (const value of ['', 'soon', '-5', '0x10', '1e3', 'Infinity', 'NaN', '12 seconds', 'tomorrow 10:00'])
      expect([value, read({ 'retry-after': value })]).toEqual([value, undefined]);
    // An unusable retry-after-ms leaves the Retry-After beside it to be read.
    expect(read({ 'retry-after-ms': 'later', 'retry-after': '4' })).toBe(4);
    expect(read({})).toBeUndefined();
  });

  test("a provider's wait from its body (Gemini's retryDelay) is held to a day too", () => {
    const failure = upstreamFailure({ provider: 'google', status: 429, reason: 'rate_limit', message: 'slow down', retryAfterSeconds: 10 ** 9 });
    expect(failure.retryAfterSeconds).toBe(86_400);
  });
});

describe('writing Retry-After', () => {
  test('whole seconds, rounded up, at most a day; nothing for what is not a wait', () => {
    expect(retryAfterHeader(0.2)).toBe('1');
    expect(retryAfterHeader(0)).toBe('0');
    expect(retryAfterHeader(3 * 86_400)).toBe('86400');
    expect(retryAfterHeader(Number.NaN)).toBeUndefined();
    expect(retryAfterHeader(-1)).toBeUndefined();
    expect(retryAfterHeader(undefined)).toBeUndefined();
  });

  test("an error's headers never say more than a day, whoever set the wait (a plugin, a policy)", () => {
    const error = new KeywayError('rate_limited', { detail: 'later' }, { retryAfterSeconds: 2_299_632_102 });
    expect(errorHeaders(error.toDescriptor())['retry-after']).toBe('86400');
    const nonsense = new KeywayError('rate_limited', { detail: 'later' }, { retryAfterSeconds: Number.NaN });
    expect(errorHeaders(nonsense.toDescriptor())['retry-after']).toBeUndefined();
  });
});
