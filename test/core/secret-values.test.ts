import { afterEach, expect, test } from 'bun:test';
import { looksLikeSecret, shownValue } from '../../core/credentials/secret-shapes.ts';
import { containsKnownSecret, forgetSecret, redactKnownSecrets, rememberSecret, rememberedSecretCount } from '../../core/credentials/secret-values.ts';
import { redactSecrets } from '../../core/logger.ts';

const first = 'Qm9vbGVhbkZsYWdTZWNyZXQx';
const second = 'Qm9vbGVhbkFub3RoZXIy9999';
const remembered: string[] = [];

function remember(value: string): void {
  rememberSecret(value);
  remembered.push(value);
}

afterEach(() => {
  for (const value of remembered.splice(0)) forgetSecret(value);
});

test('every occurrence of every remembered value is replaced, including two sharing a prefix', () => {
  const before = rememberedSecretCount();
  remember(first);
  remember(second);
  expect(rememberedSecretCount()).toBe(before + 2);
  expect(redactKnownSecrets(`a ${first} b ${second}c${first}`)).toBe('a [REDACTED] b [REDACTED]c[REDACTED]');
});

test('a key that starts with another key in play is redacted whole, whichever was remembered first', () => {
  remember(first);
  remember(`${first}-f2`);
  expect(redactKnownSecrets(`key ${first}-f2 is revoked; ${first} too`)).toBe('key [REDACTED] is revoked; [REDACTED] too');
});

test('short values are never remembered, and text without secrets comes back unchanged', () => {
  const before = rememberedSecretCount();
  rememberSecret('short');
  expect(rememberedSecretCount()).toBe(before);
  expect(redactKnownSecrets('nothing to hide here')).toBe('nothing to hide here');
});

test('a value held twice is redacted until both holders forget it', () => {
  remember(first);
  rememberSecret(first);
  forgetSecret(first);
  expect(redactKnownSecrets(first)).toBe('[REDACTED]');
  forgetSecret(first);
  remembered.pop();
  expect(redactKnownSecrets(first)).toBe(first);
});

test('the logger scrubs remembered values as well as key-shaped text', () => {
  remember(first);
  expect(redactSecrets(`key ${first} and sk-proj-abcdefghijklmnop`)).toBe('key [REDACTED] and [REDACTED]');
});

test('a secret is found by value anywhere in a text, and next to another that shares its hash bucket', () => {
  remember(first);
  remember(second);
  expect(containsKnownSecret(`openai/${second}`)).toBe(true);
  expect(containsKnownSecret(`${first.slice(0, -1)}`)).toBe(false);
  expect(containsKnownSecret('gpt-4o-mini')).toBe(false);
  // A replacement restarts the scan right after the marker: a secret that follows at once is found too.
  expect(redactKnownSecrets(`${first}${second}`)).toBe('[REDACTED][REDACTED]');
});

test('key shapes and values are secrets; model, provider and tag names are not', () => {
  remember(first);
  for (const secret of [
    first,
    'sk-proj-abcdefghijklmnop',
    'sk-ant-api03-abcdefghijklmnop',
    'AIzaSyabcdefghijklmnopqrstuvwxyz0123456',
    'kw_op_abcdefghijklmnop',
    'kw_ak_abcdefghijklmnop',
    'kw_mk_abcdefghijklmnop',
    'pplx-abcdefghijklmnop',
    'bearer abcdefghijklmnop',
    // Still found inside a text, after a space, a quote or an equals sign.
    'Authorization: sk-proj-abcdefghijklmnop',
    '{"key":"sk-ant-api03-abcdefghijklmnop"}',
    '?key=AIzaSyabcdefghijklmnopqrstuvwxyz0123456',
  ])
    expect([secret, looksLikeSecret(secret)]).toEqual([secret, true]);
  for (const name of [
    'gpt-4o-mini',
    'claude-3-opus-20240229',
    'openai/gpt-4o',
    'text-embedding-004',
    'accounts/fireworks/models/llama-v3p1-70b',
    'task-tracker-2024',
    // A shape starts where no name character precedes it (QA12 verify: these were refused as keys).
    'project-sk-analytics',
    'shop-sk-production',
    'team-pk-reporting',
    'ft:gpt-4o-mini:acme:support-sk-tuned:abc123',
    // Keyway's own catalog: Perplexity's model ids are not its keys.
    'pplx-7b-online',
    'pplx-70b-chat',
    'pplx-embed-v1-4b',
  ])
    expect([name, looksLikeSecret(name)]).toEqual([name, false]);
  expect(shownValue('kw_op_abcdefghijklmnop')).toBe('[REDACTED]');
  expect(shownValue('gpt-4o')).toBe('gpt-4o');
});
