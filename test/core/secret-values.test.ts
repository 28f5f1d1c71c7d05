import { afterEach, expect, test } from 'bun:test';
import { forgetSecret, redactKnownSecrets, rememberSecret, rememberedSecretCount } from '../../core/credentials/secret-values.ts';
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
