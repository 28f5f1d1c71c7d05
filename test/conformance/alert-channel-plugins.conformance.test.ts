// The three built-in alert channels through the alert-channel conformance suite (alert-channel.ts):
// alert-webhook (signed https:// webhooks), alert-slack (Slack incoming webhooks) and alert-email
// (SMTP). Their destinations are local: a plain-HTTP receiver reached through the injectable fetch
// for the https:// targets (test/alerts/receivers.ts), and the test SMTP server.

import { afterAll } from 'bun:test';
import { redactSecrets } from '../../core/logger.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { alertEmailPlugin, createEmailChannel } from '../../plugins/alert-email/index.ts';
import { parseSmtpUrl } from '../../plugins/alert-email/smtp.ts';
import { alertSlackPlugin, createSlackChannel } from '../../plugins/alert-slack/index.ts';
import { alertWebhookPlugin, createAlertWebhookChannel } from '../../plugins/alert-webhook/index.ts';
import { createWebhookSender } from '../../plugins/webhooks/index.ts';
import { routingFetch, startReceiver, testResolver } from '../alerts/receivers.ts';
import { startSmtpServer } from '../alerts/smtp-server.ts';
import { describeAlertChannelConformance, type AlertChannelHarness } from './alert-channel.ts';

// One receiver and one SMTP server for the file: each harness reads only what arrived after it was made.
const receiver = startReceiver();
const smtp = await startSmtpServer({ credentials: { username: 'keyway', password: 'smtp-pass-123' } });
const smtpUrl = smtp.url('keyway:smtp-pass-123');
const fetchThroughReceiver = routingFetch(receiver);

afterAll(async () => {
  await receiver.stop();
  await smtp.stop();
});

function httpHarness(channel: AlertChannelHarness['channel'], target: string, failingTarget: string, read: (body: string) => unknown): AlertChannelHarness {
  const start = receiver.received.length;
  const path = new URL(target).pathname;
  return {
    channel,
    target,
    failingTarget,
    received: async () =>
      receiver.received
        .slice(start)
        .filter((entry) => entry.path === path)
        .map((entry) => read(entry.body)),
    cleanup: () => undefined,
  };
}

describeAlertChannelConformance('alert-webhook', {
  create: async () => {
    const sender = createWebhookSender({
      fetch: fetchThroughReceiver,
      redact: redactSecrets,
      secretOf: async () => 'whsec_conformance_secret',
      newDeliveryId: () => crypto.randomUUID(),
    });
    const channel = createAlertWebhookChannel({ sender, redact: redactSecrets });
    return httpHarness(channel, `https://receiver.test/webhook-${crypto.randomUUID()}`, 'https://receiver.test/down/webhook', (body) => JSON.parse(body));
  },
  acceptedTarget: 'https://alerts.example.com/keyway',
  // Slack's URLs belong to alert-slack, never to the generic webhook channel.
  rejectedTarget: 'https://hooks.slack.com/services/T000/B000/XXXX',
  plugin: alertWebhookPlugin as PluginDefinition,
  builtin: true,
  gateway: { fetch: fetchThroughReceiver, resolve: testResolver },
});

describeAlertChannelConformance('alert-slack', {
  create: async () => {
    const channel = createSlackChannel({ fetch: fetchThroughReceiver, redact: redactSecrets });
    return httpHarness(channel, `https://hooks.slack.com/services/T0/B0/${crypto.randomUUID()}`, 'https://hooks.slack.com/down/T0/B0/x', (body) =>
      JSON.parse(body),
    );
  },
  acceptedTarget: 'https://hooks.slack.com/services/T000/B000/XXXX',
  rejectedTarget: 'https://alerts.example.com/keyway',
  plugin: alertSlackPlugin as PluginDefinition,
  builtin: true,
  gateway: { fetch: fetchThroughReceiver },
});

describeAlertChannelConformance('alert-email', {
  create: async () => {
    const channel = createEmailChannel({ smtp: parseSmtpUrl(smtpUrl), redact: redactSecrets });
    const start = smtp.received.length;
    const target = `ops-${crypto.randomUUID().slice(0, 8)}@example.com`;
    return {
      channel,
      target,
      failingTarget: 'broken@fail.example',
      received: async () =>
        smtp.received
          .slice(start)
          .filter((mail) => mail.to.includes(target))
          .map((mail) => ({ subject: mail.subject, text: mail.text, raw: mail.raw })),
      cleanup: () => undefined,
    };
  },
  acceptedTarget: 'alerts@company.com',
  rejectedTarget: 'https://alerts.example.com/keyway',
  plugin: alertEmailPlugin as PluginDefinition,
  builtin: true,
  gateway: { env: { KEYWAY_SMTP_URL: smtpUrl } },
});
