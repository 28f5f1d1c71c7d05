// POST /v1/settings/webhook-secret: account admins only, answered once, replaced by the next call,
// stored sealed (the database files never hold it in plaintext); deliveries are signed with the
// current secret and verify with the documented recipe. Also the SMTP client's AUTH LOGIN.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSmtpUrl, sendMail } from '../../plugins/alert-email/smtp.ts';
import { sendSignedWebhook } from '../../plugins/webhooks/index.ts';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { startAlertsGateway, type AlertsGateway } from './fixture.ts';
import { startSmtpServer } from './smtp-server.ts';

let setup: AlertsGateway;
beforeAll(async () => {
  setup = await startAlertsGateway({ addKey: false });
});
afterAll(async () => {
  await setup.stop();
});

const rotate = (key = setup.adminKey) => call(setup.gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key });

/** What a receiver does: HMAC the raw body with its copy of the secret and compare in constant time. */
function verify(secret: string, body: string, header: string | undefined): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const received = Buffer.from(header ?? '');
  return expected.length === received.length && timingSafeEqual(expected, received);
}

function databaseText(): string {
  const directory = setup.gateway.dataDirectory;
  return readdirSync(directory)
    .filter((name) => name.startsWith('keyway.db'))
    .map((name) => readFileSync(join(directory, name)).toString('latin1'))
    .join('\n');
}

describe('POST /v1/settings/webhook-secret', () => {
  test('answers a new secret once, replaces it on the next call, and never stores it in plaintext', async () => {
    const first = await rotate();
    expect(first.status).toBe(201);
    const one = (await first.json()) as { secret: string; replaced: boolean };
    expect(one.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(one.replaced).toBe(false);
    const second = (await (await rotate()).json()) as { secret: string; replaced: boolean };
    expect(second.replaced).toBe(true);
    expect(second.secret).not.toBe(one.secret);

    await setup.gateway.runtime.store.execute('PRAGMA wal_checkpoint(TRUNCATE)', []).catch(() => undefined);
    const stored = databaseText();
    expect(stored).toContain('webhook_secrets');
    expect(stored).not.toContain(one.secret);
    expect(stored).not.toContain(second.secret);
    expect(stored).not.toContain(second.secret.slice(6));

    // Deliveries are signed with the current secret only.
    const sent = await sendSignedWebhook(setup.gateway.runtime.services, {
      accountId: 'default',
      url: 'https://receiver.test/signed',
      event: 'test.ping',
      body: '{"hello":"world"}',
    });
    expect(sent.signed).toBe(true);
    const received = setup.receiver.received.find((entry) => entry.path === '/signed');
    expect(verify(second.secret, received?.body ?? '', received?.headers['x-keyway-signature'])).toBe(true);
    expect(verify(one.secret, received?.body ?? '', received?.headers['x-keyway-signature'])).toBe(false);
    expect(received?.headers['x-keyway-delivery']).toBe(sent.deliveryId);
    expect(setup.gateway.output.join('\n')).not.toContain(second.secret);
  });

  test('an account without a secret gets unsigned deliveries, and a warning once', async () => {
    const created = await call(setup.gateway, 'POST', '/v1/accounts', { name: 'Unsigned Co' });
    const accountId = ((await created.json()) as { id: string }).id;
    const send = () => sendSignedWebhook(setup.gateway.runtime.services, { accountId, url: 'https://receiver.test/unsigned', event: 'test.ping', body: '{}' });
    expect((await send()).signed).toBe(false);
    await send();
    const received = setup.receiver.received.filter((entry) => entry.path === '/unsigned');
    expect(received.map((entry) => entry.headers['x-keyway-signature'])).toEqual([undefined, undefined]);
    expect(setup.gateway.output.filter((line) => line.includes('webhooks are sent unsigned') && line.includes(accountId))).toHaveLength(1);
  });

  test('plain http targets are refused by the sender, and only admins may set the secret', async () => {
    await expect(
      sendSignedWebhook(setup.gateway.runtime.services, { accountId: 'default', url: 'http://127.0.0.1:1/x', event: 'test.ping', body: '{}' }),
    ).rejects.toThrow('https://');
    await expectSpecError(await rotate(''), 401, 'invalid_api_key');
  });
});

describe('the SMTP client', () => {
  test('authenticates with AUTH LOGIN when the server offers only that, and dot-stuffs the body', async () => {
    const server = await startSmtpServer({ credentials: { username: 'user@example.com', password: 'p@ss:word' }, mechanisms: ['LOGIN'] });
    try {
      const settings = parseSmtpUrl(server.url(`${encodeURIComponent('user@example.com')}:${encodeURIComponent('p@ss:word')}`));
      await sendMail(settings, ['ops@example.com'], 'Subject: hi\r\nContent-Type: text/plain\r\n\r\n.leading dot\r\nsecond line');
      expect(server.received[0]?.auth).toBe('LOGIN');
      expect(server.received[0]?.text).toBe('.leading dot\r\nsecond line');
      const wrong = parseSmtpUrl(server.url('user%40example.com:wrong'));
      await expect(sendMail(wrong, ['ops@example.com'], 'Subject: x\r\n\r\nx')).rejects.toThrow('refused the credentials (535 5.7.8)');
    } finally {
      await server.stop();
    }
  });

  test('upgrades with STARTTLS when offered, before sending credentials; verifies the certificate unless told not to', async () => {
    const tls = {
      key: readFileSync(join(import.meta.dir, 'tls/smtp-test.key'), 'utf8'),
      cert: readFileSync(join(import.meta.dir, 'tls/smtp-test.crt'), 'utf8'),
    };
    const server = await startSmtpServer({ credentials: { username: 'keyway', password: 'tls-only-pass' }, tls });
    try {
      const verified = parseSmtpUrl(server.url('keyway:tls-only-pass'));
      // A self-signed certificate is refused by default.
      await expect(sendMail(verified, ['ops@example.com'], 'Subject: x\r\n\r\nx')).rejects.toThrow();
      expect(server.received).toHaveLength(0);
      const trusting = parseSmtpUrl(`${server.url('keyway:tls-only-pass')}&tls_verify=false`);
      await sendMail(trusting, ['ops@example.com'], 'Subject: over TLS\r\n\r\nsecret report');
      expect(server.received[0]).toMatchObject({ tls: true, auth: 'PLAIN', subject: 'over TLS' });
    } finally {
      await server.stop();
    }
  });

  test('smtps:// speaks TLS from the first byte', async () => {
    const tls = {
      key: readFileSync(join(import.meta.dir, 'tls/smtp-test.key'), 'utf8'),
      cert: readFileSync(join(import.meta.dir, 'tls/smtp-test.crt'), 'utf8'),
    };
    const server = await startSmtpServer({ credentials: { username: 'keyway', password: 'implicit-pass' }, implicitTls: tls });
    try {
      const settings = parseSmtpUrl(`${server.url('keyway:implicit-pass')}&tls_verify=false`);
      expect(settings.secure).toBe(true);
      await sendMail(settings, ['ops@example.com'], 'Subject: implicit\r\n\r\nbody');
      expect(server.received[0]).toMatchObject({ tls: true, auth: 'PLAIN', subject: 'implicit' });
    } finally {
      await server.stop();
    }
  });

  test('refuses a bad KEYWAY_SMTP_URL without echoing it', () => {
    expect(() => parseSmtpUrl('http://user:hunter22@mail.example.com')).toThrow('smtp://');
    expect(() => parseSmtpUrl('smtp://user:hunter22@mail.example.com?from=nobody')).toThrow('from=');
  });
});
