// The alert mail's Subject: plain ASCII folded at spaces, anything else as RFC 2047 encoded-words of
// at most 75 characters one to a line, so no line passes RFC 5322's 78 and strict clients decode it
// (QA13: a team name with accents gave one 284-character encoded-word on a 293-character line).

import { describe, expect, test } from 'bun:test';
import { headerText, mailOf } from '../../plugins/alert-email/index.ts';

/** RFC 2047 decoding of what headerText wrote (B encoding, UTF-8), unfolded. */
function decoded(value: string): string {
  const words = value.split('\r\n ');
  if (!words.every((word) => word.startsWith('=?UTF-8?B?'))) return words.join(' ');
  return Buffer.concat(words.map((word) => Buffer.from(word.slice('=?UTF-8?B?'.length, -2), 'base64'))).toString('utf8');
}

describe('alert mail subjects', () => {
  test('a long non-ASCII subject is split into encoded-words of at most 75 characters, never inside a character', () => {
    const subject = `[Keyway] approval_pending: Équipe données — 東京チーム 🚀 asked for an approval of $12.50 on openai gpt-4o, over its threshold of $10.00`;
    const header = headerText(subject);
    const words = header.split('\r\n ');
    expect(words.length).toBeGreaterThan(2);
    for (const word of words) {
      expect(word.length).toBeLessThanOrEqual(75);
      expect(word).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
      // Each word decodes on its own to whole characters.
      expect(Buffer.from(word.slice(10, -2), 'base64').toString('utf8')).not.toContain('\uFFFD');
    }
    expect(decoded(header)).toBe(subject);
  });

  test('a long ASCII subject is folded at spaces: every line within 78 characters with its header name, unfolded unchanged', () => {
    const subject = `[Keyway] byok_cost_threshold: daily BYOK spend of the account default reached $125.000000, above its threshold of $100.00 (openai 80.1 %, anthropic 19.9 %)`;
    const header = headerText(subject);
    const lines = `Subject: ${header}`.split('\r\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    expect(header.replaceAll('\r\n ', ' ')).toBe(subject);
  });

  test('CR and LF in the text never start a header of their own', () => {
    const mail = mailOf(
      {
        alertId: 'alt_1',
        type: 'approval_pending',
        message: 'Team x\r\nBcc: evil@example.com asked',
        firedAt: new Date(0).toISOString(),
        details: {},
      } as never,
      'alerts@example.com',
      'ops@example.com',
      (text) => text,
    );
    const headers = mail.split('\r\n\r\n')[0] ?? '';
    expect(headers.split('\r\n').some((line) => line.startsWith('Bcc:'))).toBe(false);
    for (const line of headers.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
  });
});
