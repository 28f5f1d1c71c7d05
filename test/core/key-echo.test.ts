// The check of an answer for the provider key its upstream was called with (core/credentials/key-echo.ts):
// found anywhere, even cut across two chunks of a stream; an answer without it is passed on as it
// came (the same string, the same bytes), and an ordinary stream is never held back.

import { describe, expect, test } from 'bun:test';
import { KeySearch, keySearch, keySearchOf, StreamKeyFilter } from '../../core/credentials/key-echo.ts';

const KEY = 'Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0a';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A stream's filter for `key`. */
function filterFor(key: string): StreamKeyFilter {
  return new StreamKeyFilter(new KeySearch(key));
}

function run(filter: StreamKeyFilter, chunks: readonly string[]): string {
  let out = '';
  for (const chunk of chunks) out += decoder.decode(filter.chunk(encoder.encode(chunk)));
  return out + decoder.decode(filter.flush());
}

describe('KeySearch', () => {
  const search = new KeySearch(KEY);

  test('an answer without the key is the same string', () => {
    const text = `{"id":"chatcmpl-1","choices":[{"message":{"content":"${'ordinary text '.repeat(50)}"}}]}`;
    expect(search.redact(text)).toBe(text);
  });

  test('every occurrence of the key is replaced, whatever stands before it', () => {
    expect(search.redact(`{"system_fingerprint":"fp_${KEY}","note":"${KEY}"}`)).toBe('{"system_fingerprint":"fp_[REDACTED]","note":"[REDACTED]"}');
  });

  test('found after many places that hold its rarest character (the whole-key search takes over), in text and bytes', () => {
    // Base64-like text holds every letter many times, near-misses of the key included.
    const noise = `${KEY.slice(0, 20)}x ${'QZXJKVWYBGPFUMHCDLRNIOSATE'.repeat(8)} ${KEY.slice(0, -1)}.`;
    for (const text of [noise, `${noise}${KEY}!`, `${KEY}${noise}`]) {
      expect(search.indexIn(text)).toBe(text.indexOf(KEY));
      const bytes = encoder.encode(text);
      expect(search.indexInBytes(bytes)).toBe(Buffer.from(bytes).indexOf(KEY));
    }
  });

  test('a key too short to look for has no search', () => {
    expect(keySearch('abc123')).toBeUndefined();
    expect(keySearch(undefined)).toBeUndefined();
    expect(keySearchOf({ apiKey: 'short' })).toBeUndefined();
  });

  test("a credential's search is made once", () => {
    const credential = { apiKey: KEY };
    expect(keySearchOf(credential)).toBe(keySearchOf(credential) as KeySearch);
  });
});

describe('StreamKeyFilter', () => {
  test('an ordinary SSE frame goes out as it came: the same bytes, nothing held', () => {
    const filter = filterFor(KEY);
    const frame = encoder.encode('data: {"choices":[{"delta":{"content":"Zq7 is not the key"}}]}\n\n');
    expect(filter.chunk(frame)).toBe(frame);
    expect(filter.flush().length).toBe(0);
  });

  test('the key whole in one frame is replaced', () => {
    expect(run(filterFor(KEY), [`data: {"system_fingerprint":"fp_${KEY}"}\n\n`])).toBe('data: {"system_fingerprint":"fp_[REDACTED]"}\n\n');
  });

  test('the key cut across two chunks, at every place, is replaced; the bytes around it are kept', () => {
    const whole = `data: {"x":"fp_${KEY}"}\n\n`;
    const start = whole.indexOf(KEY);
    for (let cut = start + 1; cut < start + KEY.length; cut++) {
      expect(run(filterFor(KEY), [whole.slice(0, cut), whole.slice(cut)])).toBe('data: {"x":"fp_[REDACTED]"}\n\n');
    }
  });

  test('the key cut across three chunks is replaced', () => {
    const whole = `a${KEY}b`;
    expect(run(filterFor(KEY), [whole.slice(0, 5), whole.slice(5, 20), whole.slice(20)])).toBe('a[REDACTED]b');
  });

  test('an end that starts like the key but is not it goes out with the next chunk, or at the end', () => {
    const filter = filterFor(KEY);
    const first = filter.chunk(encoder.encode('text then Zq7f'));
    expect(decoder.decode(first)).toBe('text then ');
    expect(decoder.decode(filter.chunk(encoder.encode('X and more\n\n')))).toBe('Zq7fX and more\n\n');
    expect(run(filterFor(KEY), ['ends with Zq7fK2'])).toBe('ends with Zq7fK2');
  });

  test('a chunk that is a view into a larger buffer is searched where it lies', () => {
    const backing = encoder.encode(`${KEY}|data: fp_${KEY}\n\n|${KEY}`);
    const view = backing.subarray(KEY.length + 1, backing.length - KEY.length - 1);
    const filter = filterFor(KEY);
    expect(decoder.decode(filter.chunk(view)) + decoder.decode(filter.flush())).toBe('data: fp_[REDACTED]\n\n');
    const clean = backing.subarray(KEY.length + 1, KEY.length + 7);
    expect(filterFor(KEY).chunk(clean)).toBe(clean);
  });

  test('a key with characters outside ASCII is found in the UTF-8 bytes', () => {
    const key = 'clé-secrète-ü-0123456789';
    expect(run(filterFor(key), [`«${key.slice(0, 5)}`, `${key.slice(5)}»`])).toBe('«[REDACTED]»');
  });
});
