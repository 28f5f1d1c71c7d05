// Masked-key redaction (core/credentials/masked-keys.ts) per text, with 0 and 1,000 provider keys held:
// an ordinary 1 KB error text (with and without a masked form of a held key), then the adversarial
// texts of the security review (a 180 KB model name of `…`, `a`, `a…`), alone and through the error
// path's cut (redactedExcerpt, as KeywayError.toDescriptor uses it). `bun bench/masked-keys.ts`; the
// figures are in docs/security.md. Each case says how many map lookups one text cost: the same with
// 1,000 keys as with none but a few, which is the point.

import { do_not_optimize, measure } from 'mitata';
import { forgetMaskedForms, maskedFormWork, redactMaskedForms, rememberMaskedForms } from '../core/credentials/masked-keys.ts';
import { redactedExcerpt, redactSecrets } from '../core/credentials/secret-shapes.ts';
import { forgetSecret, rememberSecret } from '../core/credentials/secret-values.ts';
import { formatNanoseconds } from './micro/report.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const FAMILIES = ['sk-proj-', 'sk-ant-api03-', 'pplx-', '', 'AIzaSy'];

/** Keys as stored keys are: a few families, 40 random characters each (seeded, so every run is alike). */
function keys(count: number): string[] {
  let seed = 7;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return ALPHABET[seed % ALPHABET.length] as string;
  };
  return Array.from({ length: count }, (_, index) => `${FAMILIES[index % FAMILIES.length]}${Array.from({ length: 40 }, next).join('')}`);
}

/** An upstream's 1 KB error text: prose, a URL, ellipses, no key. */
function errorText(): string {
  let text = 'Invalid request: the model is loading... please retry. See https://platform.example.com/docs/errors#invalid_request for details; ';
  while (text.length < 1024) text += 'the parameter `max_tokens` must be below the context window (…) of this model. ';
  return text.slice(0, 1024);
}

const HELD = keys(1_000);
const ORDINARY = errorText();
const quoted = HELD[500] as string;
const WITH_FORM = `Incorrect API key provided: ${quoted.slice(0, 3)}${'*'.repeat(20)}${quoted.slice(-4)}. ${ORDINARY}`.slice(0, 1024);
const ADVERSARIAL: Array<[string, string]> = [
  ["'…' × 60,000 (the review's model name)", '…'.repeat(60_000)],
  ["'a' × 60,000", 'a'.repeat(60_000)],
  ["'a…' × 30,000", 'a…'.repeat(30_000)],
  ["'ab**' × 15,000", 'ab**'.repeat(15_000)],
];

function hold(count: number): void {
  for (const key of HELD.slice(0, count)) {
    rememberSecret(key);
    rememberMaskedForms(key);
  }
}

function release(count: number): void {
  for (const key of HELD.slice(0, count)) {
    forgetSecret(key);
    forgetMaskedForms(key);
  }
}

const rows: string[][] = [['case', 'keys', 'avg', 'p50', 'p99', 'lookups']];

async function time(name: string, held: number, text: string, redact: (text: string) => string): Promise<void> {
  const before = maskedFormWork();
  redact(text);
  const lookups = maskedFormWork() - before;
  const stats = await measure(() => do_not_optimize(redact(text)));
  rows.push([name, String(held), formatNanoseconds(stats.avg), formatNanoseconds(stats.p50), formatNanoseconds(stats.p99), String(lookups)]);
}

for (const held of [0, 1_000]) {
  hold(held);
  await time('1 KB error text, redactSecrets', held, ORDINARY, redactSecrets);
  await time('1 KB error text with a masked form, redactSecrets', held, WITH_FORM, redactSecrets);
  release(held);
}
hold(1_000);
for (const [name, text] of ADVERSARIAL) {
  await time(`${name}, redactMaskedForms`, 1_000, text, redactMaskedForms);
  await time(`${name}, redactedExcerpt to 4,096`, 1_000, text, (value) => redactedExcerpt(value, 4_096));
}
release(1_000);

const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
