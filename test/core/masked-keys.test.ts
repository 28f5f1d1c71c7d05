// A provider refusing a key may quote it masked, and no error answer may quote key material: while a
// client's own key (X-Provider-Key) is in play, or a stored key is decrypted, every masked form of it
// (a start of the key, a run of mask characters, an end of the key) is redacted like the key itself.

import { afterEach, expect, test } from 'bun:test';
import { forgetMaskedForms, maskedFormWork, redactMaskedForms, rememberMaskedForms, rememberedMaskedFormCount } from '../../core/credentials/masked-keys.ts';
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

// Canaries of the security review: a Google key (no family prefix: listed `…gk3E`), a Cohere key
// (none either: `…ch4R`), a Perplexity key (`pplx-`).
const GOOGLE = `AIzaSyCANARYgoogleCC${'C'.repeat(15)}gk3E`;
const COHERE = `CANARYcohereDDDD${'q'.repeat(20)}ch4R`;
const PERPLEXITY = 'pplx-CANARYperplexDDDDDDDDEEEEEEEEpx5T';

test("a key's listed form inside a longer masked form is no listed form: the whole form goes", () => {
  rememberMaskedForms(GOOGLE, '…gk3E');
  rememberMaskedForms(COHERE, '…ch4R');
  try {
    expect(redactMaskedForms('Credential AIzaSyCANARYgoogleCC…gk3E is not allowed')).toBe('Credential [REDACTED] is not allowed');
    expect(redactMaskedForms('Credential CANARYcohereDDDD…ch4R is not allowed')).toBe('Credential [REDACTED] is not allowed');
    // Standing alone (a word boundary before and after it), it is Keyway's own listing and stays.
    for (const text of ['key …gk3E was rotated', 'holds (…ch4R)', '"masked_key":"…gk3E"']) expect(redactMaskedForms(text)).toBe(text);
  } finally {
    forgetMaskedForms(GOOGLE);
    forgetMaskedForms(COHERE);
  }
});

test('two stars, `#` runs, `x` runs, and a start or end of eight characters or more standing alone are redacted', () => {
  hold(PERPLEXITY);
  hold(COHERE);
  for (const form of ['pplx-CANARYp**px5T', 'pplx-CANARYp########px5T', 'CANARYcoherexxxxxxxxch4R', 'pplx-CANARYperplex', 'EEEEEEEEpx5T', 'CANARYcohere']) {
    expect(redactMaskedForms(`The key ${form}, is refused`)).toBe('The key [REDACTED], is refused');
  }
  expect(redactMaskedForms('starting with pplx-CANARYperplex and ending in EEEEEEEEpx5T.')).toBe('starting with [REDACTED] and ending in [REDACTED].');
});

test('ordinary words are left alone: x in words, two stars of bold, fewer than eight characters of a start or end', () => {
  hold(PERPLEXITY);
  hold(COHERE);
  for (const text of [
    'the boxxxxes and wxxxxz',
    'a **bold** claim',
    'pplx-CANARYp alone',
    'ends EEEpx5T',
    'CANARYc is seven',
    'pplx-CANARYperplexZ is no start of it',
    'xxxx ch4R',
  ]) {
    expect(redactMaskedForms(text)).toBe(text);
  }
});

test('a key made of words leaves its words in prose: a start or end that reads as a word counts from 16 characters', () => {
  hold('rejected-cohere-key');
  hold('local-token-for-the-deadline-of-today');
  for (const text of ['key pk_1 was rejected by cohere', 'the deadline passed', 'a cohere-key here']) expect(redactMaskedForms(text)).toBe(text);
  expect(redactMaskedForms('token local-token-for-the-deadline (and more)')).toBe('token [REDACTED] (and more)');
});

/** Keys as a thousand stored keys would be: random-looking, a few families. */
function manyKeys(count: number): string[] {
  const families = ['sk-proj-', 'sk-ant-api03-', 'pplx-', '', 'AIza'];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let seed = 7;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return alphabet[seed % alphabet.length] as string;
  };
  return Array.from({ length: count }, (_, index) => `${families[index % families.length]}${Array.from({ length: 40 }, next).join('')}`);
}

/** The work (map lookups and character comparisons) `text` costs to redact. */
function workOf(text: string): number {
  const before = maskedFormWork();
  redactMaskedForms(text);
  return maskedFormWork() - before;
}

test('the work a text costs is bounded by its length, whatever the number of keys held (the review’s 25 s model name)', () => {
  const texts = [
    '…'.repeat(60_000),
    'a'.repeat(60_000),
    'a…'.repeat(30_000),
    'abcdefgh…'.repeat(6_000),
    'ab**'.repeat(15_000),
    'axxxx'.repeat(12_000),
    'a...'.repeat(15_000),
  ];
  for (const key of manyKeys(5)) hold(key);
  const withFew = texts.map(workOf);
  for (const key of manyKeys(1_000)) hold(key);
  for (const [index, text] of texts.entries()) {
    const work = workOf(text);
    // About 20 lookups a character at most, and the same with a thousand keys as with five.
    expect(work).toBeLessThanOrEqual(20 * text.length);
    expect(work).toBeLessThanOrEqual(2 * (withFew[index] as number) + 100);
  }
});

test('an ordinary error text costs a few lookups per mask run, and the forms in it are still found among a thousand keys', () => {
  const keys = manyKeys(1_000);
  for (const key of keys) hold(key);
  const quoted = keys[500] as string;
  const text = `Incorrect API key provided: ${quoted.slice(0, 3)}${'*'.repeat(20)}${quoted.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
  expect(redactMaskedForms(text)).toBe('Incorrect API key provided: [REDACTED]. You can find your API key at https://platform.openai.com/account/api-keys.');
  expect(workOf(text)).toBeLessThan(500);
});
