// A provider refusing a key may quote it masked, and no error answer may quote key material: while a
// client's own key (X-Provider-Key) is in play, or a stored key is decrypted, every masked form of it
// (a start of the key, a run of mask characters, an end of the key) is redacted like the key itself.

import { afterEach, expect, test } from 'bun:test';
import { forgetMaskedForms, redactMaskedForms, rememberMaskedForms, rememberedMaskedFormCount } from '../../core/credentials/masked-keys.ts';
import { redactSecrets } from '../../core/logger.ts';

const KEY = 'wrong-key-1234567890';
const PROJECT_KEY = 'sk-proj-ClientOwnKey0123456789abcdefWXYZ';
const held: string[] = [];

function hold(key: string): void {
  rememberMaskedForms(key);
  held.push(key);
}

afterEach(() => {
  for (const key of held.splice(0)) forgetMaskedForms(key);
});

test("OpenAI's form, first 3 and last 4 around stars, is redacted from the message it sits in", () => {
  hold(KEY);
  expect(redactSecrets('Incorrect API key provided: wro*************7890. You can find your API key at https://platform.openai.com/account/api-keys.')).toBe(
    'Incorrect API key provided: [REDACTED]. You can find your API key at https://platform.openai.com/account/api-keys.',
  );
  hold(PROJECT_KEY);
  expect(redactSecrets(`Incorrect API key provided: sk-${'*'.repeat(33)}WXYZ.`)).toBe('Incorrect API key provided: [REDACTED].');
  expect(redactSecrets('Incorrect API key provided: sk-proj-********WXYZ.')).toBe('Incorrect API key provided: [REDACTED].');
});

test('forms with only the end, an ellipsis, bullets, or a longer start are redacted too', () => {
  hold(PROJECT_KEY);
  for (const masked of ['****WXYZ', 'sk-pr...WXYZ', 'sk-proj-Cl…XYZ', 'sk-•••••WXYZ', 'sk-proj-ClientOwn****']) {
    expect(redactMaskedForms(`Authentication Fails, Your api key: ${masked} is invalid`)).toBe('Authentication Fails, Your api key: [REDACTED] is invalid');
  }
  expect(redactMaskedForms(`a sk-***WXYZ and b ****WXYZ`)).toBe('a [REDACTED] and b [REDACTED]');
});

test("another key's masked form, ellipses in prose, and too little of the key are left alone", () => {
  hold(PROJECT_KEY);
  for (const text of ['Incorrect API key provided: sk-*******Jq8z.', 'The model is loading... please wait', 'shown as sk-…, not a key', 'x***Z']) {
    expect(redactMaskedForms(text)).toBe(text);
  }
});

test('only while the request holds the key: released, its forms pass again; two holders need two releases', () => {
  const before = rememberedMaskedFormCount();
  const masked = 'Incorrect API key provided: wro*************7890.';
  hold(KEY);
  rememberMaskedForms(KEY);
  expect(rememberedMaskedFormCount()).toBe(before + 1);
  forgetMaskedForms(KEY);
  expect(redactMaskedForms(masked)).toBe('Incorrect API key provided: [REDACTED].');
  forgetMaskedForms(held.splice(0)[0] as string);
  expect(rememberedMaskedFormCount()).toBe(before);
  expect(redactMaskedForms(masked)).toBe(masked);
});

test('keys too short to look for are not held', () => {
  const before = rememberedMaskedFormCount();
  rememberMaskedForms('short');
  expect(rememberedMaskedFormCount()).toBe(before);
});

test("a family prefix (`sk-proj-`) is not counted: another key's listed form is left alone", () => {
  hold(PROJECT_KEY);
  for (const text of ['deleted sk-proj-…Jq8z', 'sk-proj-***Jq8z', 'sk-proj-********']) expect(redactMaskedForms(text)).toBe(text);
  expect(redactMaskedForms('sk-proj-***WXYZ')).toBe('[REDACTED]');
});

test("a stored key's own listed form (its masked_key) stays; every other form of it goes", () => {
  const stored = 'sk-proj-StoredKey0123456789abcdefQRST';
  rememberMaskedForms(stored, 'sk-proj-…QRST');
  try {
    expect(redactMaskedForms('holds (sk-proj-…QRST)')).toBe('holds (sk-proj-…QRST)');
    expect(redactMaskedForms('Incorrect API key provided: sk-********QRST.')).toBe('Incorrect API key provided: [REDACTED].');
    expect(redactMaskedForms('sk-proj-St…QRST')).toBe('[REDACTED]');
    // Another key with the same last four makes the form a match of its own: still Keyway's listed form.
    hold('other-StoredKey0123456789zyxwQRST');
    expect(redactMaskedForms('holds (sk-proj-…QRST)')).toBe('holds (sk-proj-…QRST)');
  } finally {
    forgetMaskedForms(stored);
  }
});

test('with another held key of the same last four, the whole form is redacted, its start included', () => {
  // Held first: it matches the stars and the end alone, and used to win, leaving `ope` in front.
  hold('sk-other-account-test-key');
  hold('openai-stored-test-key');
  expect(redactSecrets('Incorrect API key provided: ope***************-key. You can find it.')).toBe(
    'Incorrect API key provided: [REDACTED]. You can find it.',
  );
});
