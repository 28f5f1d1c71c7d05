// Alert channel for e-mail: delivers to addresses through the SMTP relay in KEYWAY_SMTP_URL
// (`smtp://user:pass@host:port?from=alerts@example.com`, or `smtps://`). Without that variable it
// accepts no target, so an address is reported undelivered ("no channel") rather than failing later.
// The mail is plain text, UTF-8, base64-encoded; the whole text is redacted before it is encoded.

import type { AlertChannel, AlertEvent } from '../../core/spec/alert-channel.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { parseSmtpUrl, sendMail, type SmtpSettings } from './smtp.ts';

export const ALERT_EMAIL_CHANNEL = 'alert-email';
const ADDRESS = /^[^\s@<>(),;:"[\]\\]+@[^\s@<>(),;:"[\]\\]+\.[^\s@<>(),;:"[\]\\]+$/;

export function isEmailTarget(target: string): boolean {
  return target.length <= 320 && ADDRESS.test(target.replace(/^mailto:/i, ''));
}

/** Raw bytes of one encoded-word: `=?UTF-8?B?` + base64 of 45 bytes (60 characters) + `?=` is 72, under RFC 2047's 75. */
const ENCODED_WORD_BYTES = 45;
/** RFC 5322 asks lines of at most 78 characters; a folded header continues on a line starting with a space. */
const FOLD_AT = 76;

/** The text cut into pieces of at most `limit` UTF-8 bytes, never inside a character. */
function utf8Pieces(text: string, limit: number): string[] {
  const pieces: string[] = [];
  let piece = '';
  let bytes = 0;
  for (const character of text) {
    const size = Buffer.byteLength(character);
    if (bytes + size > limit && piece !== '') {
      pieces.push(piece);
      piece = '';
      bytes = 0;
    }
    piece += character;
    bytes += size;
  }
  if (piece !== '') pieces.push(piece);
  return pieces;
}

/** ASCII words folded onto continuation lines where a line would pass FOLD_AT. */
function foldAscii(text: string, firstLineUsed: number): string {
  const lines: string[] = [];
  let line = '';
  let room = FOLD_AT - firstLineUsed;
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = FOLD_AT - 1;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join('\r\n ');
}

/**
 * A header value: plain ASCII folded at spaces, anything else as RFC 2047 encoded-words of at most 75
 * characters, one to a line (RFC 5322 folding), so strict clients decode it rather than show
 * `=?UTF-8?B?…` (QA13: one 284-character word on a 293-character line). CR and LF never reach a header.
 */
export function headerText(text: string, name = 'Subject'): string {
  const single = text.replace(/[\r\n]+/g, ' ').slice(0, 200);
  if (/^[\x20-\x7e]*$/.test(single)) return foldAscii(single, name.length + 2);
  return utf8Pieces(single, ENCODED_WORD_BYTES)
    .map((piece) => `=?UTF-8?B?${Buffer.from(piece).toString('base64')}?=`)
    .join('\r\n ');
}

function wrapBase64(text: string): string {
  return (
    Buffer.from(text)
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  ).join('\r\n');
}

export function mailOf(event: AlertEvent, from: string, to: string, redact: (text: string) => string): string {
  const details = JSON.stringify(event.details, null, 2);
  const body = redact(
    `${event.message}\n\nAlert type: ${event.type}\nFired at: ${event.firedAt}\nEvent: ${event.alertId}\n\nDetails:\n${details}\n\n` +
      'Sent by Keyway. Every alert is listed in GET /v1/alerts/events.\n',
  );
  const subject = redact(`[Keyway] ${event.type}: ${event.message}`);
  const domain = from.split('@')[1] ?? 'keyway.localhost';
  return [
    `From: Keyway alerts <${from}>`,
    `To: <${to}>`,
    `Subject: ${headerText(subject)}`,
    `Date: ${new Date(event.firedAt).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${event.alertId}.${Bun.hash(to).toString(36)}@${domain}>`,
    `X-Keyway-Event: alert.${event.type}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    wrapBase64(body),
  ].join('\r\n');
}

export function createEmailChannel(options: { smtp: SmtpSettings | undefined; redact(text: string): string }): AlertChannel {
  return {
    name: ALERT_EMAIL_CHANNEL,
    accepts: (target) => options.smtp !== undefined && isEmailTarget(target),
    async send(event, target) {
      const smtp = options.smtp;
      if (smtp === undefined) throw new Error('KEYWAY_SMTP_URL is not set');
      const to = target.replace(/^mailto:/i, '');
      try {
        await sendMail(smtp, [to], mailOf(event, smtp.from, to, options.redact));
      } catch (error) {
        // The SMTP layer names no address nor password; redact anyway, and cut the recipient out if a server echoed it.
        throw new Error(
          options
            .redact(error instanceof Error ? error.message : String(error))
            .split(to)
            .join('[recipient]'),
        );
      }
    },
  };
}

export const alertEmailPlugin = definePlugin({
  name: ALERT_EMAIL_CHANNEL,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'alert-channel',
  environment: [{ name: 'KEYWAY_SMTP_URL', description: 'The SMTP server alerts are e-mailed through (smtp:// or smtps://, with credentials)' }],
  description: 'Delivers alerts by e-mail through the SMTP relay in KEYWAY_SMTP_URL',
  setup: ({ env, services, logger }) => {
    const url = env.KEYWAY_SMTP_URL;
    const smtp = url === undefined || url === '' ? undefined : parseSmtpUrl(url);
    if (smtp !== undefined)
      logger.info({ host: smtp.host, port: smtp.port, tls: smtp.secure ? 'smtps' : smtp.startTls ? 'starttls-when-offered' : 'off' }, 'e-mail alerts enabled');
    return { alertChannel: createEmailChannel({ smtp, redact: services.errors.redact }) };
  },
});

export default alertEmailPlugin;
