// The content-blocking detectors, one by one: each finds what it should (true positives) and leaves
// look-alikes alone (false positives). Key-shaped literals are assembled from pieces so that no
// secret scanner mistakes this file for a leak.

import { describe, expect, test } from 'bun:test';
import type { DetectorId } from '../../policies/content-blocking/detectors.ts';
import { IBAN_LENGTHS, ibanChecksumValid } from '../../policies/content-blocking/ids.ts';
import { ssnValid } from '../../policies/content-blocking/numbers.ts';
import { mayHoldSensitive, scanRequest, scanText, walkText } from '../../policies/content-blocking/scan.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';

const RANDOM_36 = 'aB3dEfGh1jKlMnOpQrStUvWxYz0123456789';
const JWT_HEADER = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9'; // {"alg":"HS256","typ":"JWT"}
const JWT = `${JWT_HEADER}.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;

function expectFound(detector: DetectorId, texts: string[]): void {
  for (const text of texts) expect({ text, found: scanText(text) }).toEqual({ text, found: detector });
}

function expectClean(texts: string[]): void {
  for (const text of texts) expect({ text, found: scanText(text) }).toEqual({ text, found: undefined });
}

describe('secrets', () => {
  test('OpenAI keys: legacy, project, service account', () => {
    expectFound('openai_api_key', [`my key is sk-${RANDOM_36}abcdEFGH1234`, `OPENAI_API_KEY=sk-proj-${RANDOM_36}${RANDOM_36}`, `"sk-svcacct-${RANDOM_36}"`]);
    expectClean(['pip install sk-learn-is-a-machine-learning-library', 'the task-runner-configuration-reference page', 'sk-proj-short1A', `ask-${RANDOM_36}`]);
  });

  test('Anthropic keys', () => {
    expectFound('anthropic_api_key', [`x-api-key: sk-ant-api03-${RANDOM_36}-${RANDOM_36}`, `sk-ant-admin01-${RANDOM_36}`]);
    expectClean(['sk-ant-api03-placeholder-goes-here-later-on', 'sk-ant-']);
  });

  test('Google API keys: AIza and 35 characters', () => {
    expectFound('google_api_key', [`?key=AIza${'SyA1234567890abcdefghijklmnopqrstuv'}&q=1`]);
    expectClean([`AIza${'SyA1234567890abcdefghijklmnopqrst'}`, 'AIzaTheWordIsNotAKeyAtAllJustAWord']);
  });

  test('AWS access key ids and named secret keys', () => {
    expectFound('aws_access_key', ['aws_access_key_id = AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A']);
    expectFound('aws_secret_key', [
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
    ]);
    expectClean([
      'AKIAIOSFODNN7EXAMPL',
      'AKIAiosfodnn7example',
      'ASIAN_MARKETS_OVERVIEW_2024',
      'the secret is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', // 40 base64 characters, not named as an AWS secret
      'aws_secret_access_key = abcdefghijabcdefghijabcdefghijabcdefghij',
    ]);
  });

  test('GitHub tokens', () => {
    expectFound('github_token', [`gh${'p_'}${RANDOM_36}`, `GH_TOKEN=gh${'s_'}${RANDOM_36}`, `github${'_pat_'}11ABCDEFG0${RANDOM_36}_${RANDOM_36}`]);
    expectClean(['ghp_tooShort123', 'ghost_protocol_configuration_section', `gh${'p_'}${'a'.repeat(36)}`]);
  });

  test('Slack tokens', () => {
    expectFound('slack_token', [`xo${'xb-'}1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx`]);
    expectClean(['xoxb-not-a-real-token-at-all-here', 'xoxo-hugs-and-kisses-to-everyone-x']);
  });

  test('Stripe live secret and restricted keys', () => {
    expectFound('stripe_secret_key', [`sk${'_live_'}4eC39HqLyjWDarjtT1zdp7dc`, `rk${'_live_'}51H8x2eLkdIwHu7ixAbCdEf`]);
    expectClean(['sk_live_placeholder_value_here', 'pk_live_4eC39HqLyjWDarjtT1zdp7dc']);
  });

  test('PEM private keys', () => {
    expectFound('private_key', [
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----',
      'key: "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA"',
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      '-----BEGIN PGP PRIVATE KEY BLOCK-----',
    ]);
    expectClean(['-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A', 'Never paste a PRIVATE KEY into a chat.', '-----BEGIN CERTIFICATE-----']);
  });

  test('JWTs: three base64url segments whose header is JSON naming its alg', () => {
    expectFound('jwt', [`Authorization: Bearer ${JWT}`, `${JWT_HEADER}.eyJzdWIiOiIxIn0.`]);
    expectClean([
      'dGhpcyBpcyBub3QgYSBqd3QgYXQgYWxs.c2Vjb25kIHNlZ21lbnQ.dGhpcmQ', // random base64, no JSON header
      'eyJub3RhIjoiand0In0.eyJzdWIiOiIxIn0.c2ln', // JSON header without alg
      `${JWT_HEADER}.eyJzdWIiOiIxIn0`, // two segments
      `${JWT_HEADER}.eyJzdWIiOiIxIn0.c2ln.ZXh0cmE`, // four segments
      'eyJustSomeWordThatStartsLikeIt.and.continues',
    ]);
  });
});

describe('payment cards', () => {
  test('Luhn-valid numbers in known issuer ranges, plain or grouped', () => {
    expectFound('payment_card', [
      'card 4111111111111111 exp 12/29',
      'Visa: 4111 1111 1111 1111.',
      'MC 5555-5555-5555-4444',
      'Amex 3782 822463 10005',
      'Discover 6011111111111117',
      'Mastercard 2-series 2221000000000009',
    ]);
  });

  test('no: Luhn failures, unknown ranges, order ids, odd grouping, decimals, numbers glued to letters', () => {
    expectClean([
      'card 4111 1111 1111 1112', // Luhn fails
      'order 1234567890123456', // starts with 1: no network
      'order 1234567890128', // 13 digits, Luhn-valid, no network
      'tracking 9400111899223197428490', // 22 digits
      '4111 11 1111111 111', // not grouped like a card
      'pi is 3.4111111111111111',
      'id ORD4111111111111111',
      '4111111111111111x',
    ]);
  });
});

describe('national ids', () => {
  test('US SSNs: 3-2-4 with a separator and the SSA validity rules', () => {
    expectFound('us_ssn', ['SSN 536-22-1234', 'ssn: 536 22 1234']);
    expectClean([
      '000-12-3456',
      '666-12-3456',
      '912-12-3456', // 9xx: ITINs and unassigned
      '536-00-1234',
      '536-22-0000',
      '078-05-1120', // the Woolworth sample
      '536221234', // no separator: too many other things are 9 digits
      '536-22 1234', // mixed separators
      'call 555-12-3456x',
    ]);
    expect(ssnValid(536, 22, 1234)).toBe(true);
    expect(ssnValid(899, 99, 9999)).toBe(true);
    expect(ssnValid(900, 22, 1234)).toBe(false);
  });

  test('UK National Insurance numbers: prefix rules and an A–D suffix', () => {
    expectFound('uk_nino', ['NI number AB123456C', 'NINO: AB 12 34 56 D']);
    expectClean(['QQ123456C', 'AD123456C', 'BG123456C', 'AB123456E', 'AB123456', 'AB1234567C', 'AB 12 3456 C']);
  });

  test('UK National Insurance numbers as they are printed: a space after the prefix, before the suffix (QA12)', () => {
    expectFound('uk_nino', ['NINO: AB 123456 C', 'AB123456 C', 'NI AB 123456C', 'AB12 34 56 A', '(JG 10 37 41 B)']);
    expectClean([
      'AB 123456 E', // suffix past D
      'AB 123456 Cat', // a word, not a suffix
      'AB 123456 c', // lower-case suffix
      'AB  123456 C', // two spaces
      'AB 12345 C', // five digits
      'AB 1234567 C', // seven digits
      'AB 12 3456 C', // pairs split one way, then not
      'GB 123456 A', // a prefix HMRC never issues
      'QA 123456 C', // Q first: never issued
      'AB-123456-C', // hyphens: not how NINOs are written
    ]);
  });

  test('Canadian SINs: 3-3-3, Luhn-valid, not starting with 0 or 8', () => {
    expectFound('ca_sin', ['SIN 130 692 544', 'SIN 130-692-544']);
    expectClean(['130 692 545', '046 454 286', '830 692 541', '130692544']);
  });

  test('Spanish DNIs: 8 digits and their mod-23 letter', () => {
    expectFound('es_dni', ['DNI 12345678Z']);
    expectClean(['DNI 12345678A', 'ref 12345678ZZ', '1234567Z']);
  });

  test('Spanish DNIs as they are printed: a hyphen or a space before the letter, a lower-case letter (QA12)', () => {
    // 12345678 mod 23 = 14: Z. 00000000 mod 23 = 0: T. 87654321 mod 23 = 10: X.
    expectFound('es_dni', ['DNI 12345678-Z', 'DNI: 12345678 Z', 'dni 12345678z', 'NIF 12345678-z', '00000000-T', '(87654321 X)']);
    expectClean([
      'DNI 12345678-A', // a wrong letter, each way
      'DNI 12345678 A',
      'dni 12345678a',
      '12345678 z', // lower case after a space: the word "a", a unit
      'tracking 87654321 x 3', // a dimension
      '12345678-ZZ', // two letters
      '12345678 Zebra',
      '12345678--Z', // two separators
      '1234567-Z', // seven digits
      '123456789-Z', // nine
      '3.12345678 Z', // a decimal's fraction
      '1234-12345678-Z', // part of a longer code
    ]);
  });
});

describe('IBANs', () => {
  test('country length and mod-97, compact or in groups of four', () => {
    expectFound('iban', ['IBAN GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'pay to FR1420041010050500013M02606 today', 'NL91ABNA0417164300']);
    expectClean([
      'DE89370400440532013001', // check digits wrong
      'DE8937040044053201300', // one short for Germany
      'DE893704004405320130000', // one long
      'ZZ89370400440532013000', // no such country
      'GB82 WEST 1234 5698 7654', // cut short
    ]);
  });

  test('the table and the checksum', () => {
    expect(IBAN_LENGTHS.DE).toBe(22);
    expect(IBAN_LENGTHS.NO).toBe(15);
    const chars = [...'GB82WEST12345698765432'].map((char) => char.charCodeAt(0));
    expect(ibanChecksumValid(chars, chars.length)).toBe(true);
  });
});

// Text pasted from PDFs and web pages groups numbers with Unicode spaces and dashes: no-break space
// U+00A0, narrow no-break space U+202F, figure space U+2007, thin space U+2009, en dash U+2013, em dash
// U+2014, non-breaking hyphen U+2011, minus sign U+2212 (QA: a card with no-break spaces passed).
describe('Unicode separators', () => {
  const NBSP = '\u00a0';
  const NARROW = '\u202f';
  const FIGURE = '\u2007';
  const THIN = '\u2009';
  const EN = '\u2013';
  const EM = '\u2014';
  const group = (separator: string, ...parts: string[]): string => parts.join(separator);

  test('cards, SSNs, SINs, DNIs, IBANs and NINOs grouped with them are found', () => {
    for (const separator of [NBSP, NARROW, FIGURE, THIN, EN, EM, '\u2011', '\u2212']) {
      expectFound('payment_card', [`card ${group(separator, '4111', '1111', '1111', '1111')}`, `Amex ${group(separator, '3782', '822463', '10005')}`]);
      expectFound('us_ssn', [`SSN ${group(separator, '536', '22', '1234')}`]);
      expectFound('es_dni', [`DNI 12345678${separator}Z`]);
    }
    // Spaces and ASCII mixed in one number are still one kind: a space.
    expectFound('payment_card', [`card 4111 1111${NBSP}1111${NBSP}1111`]);
    for (const separator of [EN, EM]) expectFound('ca_sin', [`SIN ${group(separator, '130', '692', '544')}`]);
    for (const separator of [NBSP, NARROW, THIN]) {
      expectFound('iban', [`IBAN ${group(separator, 'GB82', 'WEST', '1234', '5698', '7654', '32')}`]);
      expectFound('uk_nino', [`NINO ${group(separator, 'AB', '12', '34', '56', 'C')}`, `NINO AB${separator}123456${separator}C`]);
    }
  });

  test('no: mixed kinds, doubled separators, other Unicode characters, thousands grouped with Unicode spaces', () => {
    expectClean([
      `card 4111${NBSP}1111-1111${NBSP}1111`, // a space and a dash
      `card 4111${EN}1111 1111${EN}1111`,
      `card 4111${NBSP}${NBSP}1111${NBSP}1111${NBSP}1111`, // two separators
      `card 4111\u00b71111\u00b71111\u00b71111`, // a middle dot is no separator
      `card 4111\u200b1111\u200b1111\u200b1111`, // nor a zero-width space (not a space separator)
      `card 4111${NBSP}1111${NBSP}1111${NBSP}1112`, // Luhn fails
      `SSN 536${NBSP}22-1234`,
      // French and SI text writes thousands with these spaces: 130 692 544 € is an amount, not a SIN.
      `total 130${NARROW}692${NARROW}544 €`,
      `total 130${NBSP}692${NBSP}544 €`,
      `total 130${THIN}692${THIN}544 m`,
      `pages 1999${EN}2024, 2019${EM}2023`,
      `NINO AB${NBSP}${NBSP}123456 C`,
      `IBAN ${group(NBSP, 'GB82', 'WEST', '1234', '5698', '7654', '33')}`, // check digits fail
    ]);
  });
});

describe('ordinary text passes', () => {
  test('prose, code, dates, prices, phone numbers and UUIDs', () => {
    expectClean([
      'Revenue grew 12.5% to $4,210,883.17 on 2025-03-14; ticket OPS-20931.',
      'Call +44 20 7946 0958 or +1 (555) 123-4567.',
      'const request_identifier_value = computeRequestIdentifier(customerAccountNumber);',
      'id 123e4567-e89b-12d3-a456-426614174000',
      'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      'ISBN 978-3-16-148410-0',
      '',
      'short',
    ]);
  });
});

describe('scanRequest', () => {
  const request = (messages: ChatRequest['messages']): ChatRequest => ({ model: 'gpt-4o', messages });

  test('names the message, a text part and a tool call by index', () => {
    expect(
      scanRequest(
        request([
          { role: 'user', content: 'hello' },
          { role: 'user', content: 'card 4111 1111 1111 1111' },
        ]),
      ),
    ).toEqual({
      detector: 'payment_card',
      messageIndex: 1,
    });
    expect(
      scanRequest(
        request([
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: 'data:,x' } },
              { type: 'text', text: 'SSN 536-22-1234' },
            ],
          },
        ]),
      ),
    ).toEqual({ detector: 'us_ssn', messageIndex: 0 });
    const toolCalls = [
      { id: 'a', type: 'function' as const, function: { name: 'lookup', arguments: '{"q":"weather"}' } },
      { id: 'b', type: 'function' as const, function: { name: 'pay', arguments: '{"iban":"DE89370400440532013000"}' } },
    ];
    expect(
      scanRequest(
        request([
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: null, tool_calls: toolCalls },
        ]),
      ),
    ).toEqual({
      detector: 'iban',
      messageIndex: 1,
      toolCallIndex: 1,
    });
  });

  test("an embeddings request's input, a string or an array of strings", () => {
    expect(scanRequest({ model: 'text-embedding-3-small', messages: [], input: 'SSN 536-22-1234' })).toEqual({
      detector: 'us_ssn',
      messageIndex: -1,
      inputIndex: 0,
    });
    expect(scanRequest({ model: 'text-embedding-3-small', messages: [], input: ['hello', 'IBAN DE89370400440532013000'] })).toEqual({
      detector: 'iban',
      messageIndex: -1,
      inputIndex: 1,
    });
    expect(scanRequest({ model: 'text-embedding-3-small', messages: [], input: [[1, 2, 3]] })).toBeUndefined();
  });

  test('clean requests and odd shapes find nothing', () => {
    expect(scanRequest(request([{ role: 'user', content: 'hello there, how are you today?' }]))).toBeUndefined();
    expect(scanRequest(request([{ role: 'user', content: null }, { role: 'tool', content: [{ type: 'text' }] } as never]))).toBeUndefined();
  });
});

describe('the native pre-check (mayHoldSensitive)', () => {
  // scanText skips the walk when the text has no digit, no two adjacent capitals, no `eyJ` and no
  // `cret`/`CRET`: it must never skip a text the walk would refuse. Random texts built from pieces of
  // every detector's positives, look-alikes and prose, mutated (cut, case-flipped, digits removed),
  // must get the same answer both ways.
  const pieces = [
    `sk-${RANDOM_36}abcdEFGH1234`,
    `sk-ant-api03-${RANDOM_36}-${RANDOM_36}`,
    `AIza${'SyA1234567890abcdefghijklmnopqrstuv'}`,
    'AKIAIOSFODNN7EXAMPLE',
    'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    `gh${'p_'}${RANDOM_36}`,
    `xox${'b-'}123456789012-123456789012-abcdefABCDEF`,
    `sk_${'live_'}${RANDOM_36}`,
    '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
    JWT,
    // {"alg":"abc"} with lower-case segments: no digit, no two capitals; only `eyJ` gives it away.
    'eyJhbGciOiJhYmMifQ.abcdefgh.abcdefgh',
    '4111 1111 1111 1111',
    '078-05-1120',
    'AB 12 34 56 C',
    '046 454 286',
    '12345678Z',
    '12345678-Z',
    'AB 123456 C',
    'GB82 WEST 1234 5698 7654 32',
    '4111\u00a01111\u00a01111\u00a01111',
    '536\u201322\u20131234',
    'Summarise the release notes. ',
    'ask me anything about secrets ',
    'the quick brown fox jumps over the lazy dog ',
    'Ünïcödé 東京 😀 ',
  ];
  let seed = 7;
  const random = (limit: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % limit;
  };
  const mutate = (text: string): string => {
    switch (random(5)) {
      case 0:
        return text.slice(random(text.length), text.length - random(4));
      case 1:
        return text.toLowerCase();
      case 2:
        return text.replace(/[0-9]/g, '');
      case 3:
        return text.toUpperCase();
      default:
        return text;
    }
  };

  test('never skips a text the walk refuses (3,000 random texts)', () => {
    let refused = 0;
    let skipped = 0;
    for (let round = 0; round < 3000; round++) {
      let text = '';
      for (let count = 1 + random(4); count > 0; count--) text += mutate(pieces[random(pieces.length)] as string);
      const walked = walkText(text);
      if (walked !== undefined) refused++;
      if (!mayHoldSensitive(text)) {
        skipped++;
        expect({ text, walked }).toEqual({ text, walked: undefined });
      }
      expect({ text, found: scanText(text) }).toEqual({ text, found: text.length < 9 ? undefined : walked });
    }
    // Both kinds occur, or the comparison proves nothing.
    expect(refused).toBeGreaterThan(300);
    expect(skipped).toBeGreaterThan(300);
  });

  test('prose with a digit or an acronym still gets the walk', () => {
    expect(mayHoldSensitive('Summarise the release notes. '.repeat(30))).toBe(false);
    expect(mayHoldSensitive('version 3 of the notes')).toBe(true);
    expect(mayHoldSensitive('ask the API team')).toBe(true);
    expect(mayHoldSensitive('the secret word')).toBe(true);
    expect(scanText('token eyJhbGciOiJhYmMifQ.abcdefgh.abcdefgh end')).toBe('jwt');
  });
});
