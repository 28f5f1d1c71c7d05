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

/** RFC 2047 for a header that is not plain ASCII; CR and LF can never reach a header. */
function headerText(text: string): string {
  const single = text.replace(/[\r\n]+/g, ' ').slice(0, 200);
  return /^[\x20-\x7e]*$/.test(single) ? single : `=?UTF-8?B?${Buffer.from(single).toString('base64')}?=`;
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
