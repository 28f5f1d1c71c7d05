// Alert channel for signed webhooks: any `https://` URL except Slack's incoming webhooks (the Slack
// channel's). The JSON body is sent through the product's one signed sender (plugins/webhooks), so it
// carries `X-Keyway-Signature`, `X-Keyway-Event: alert.<type>` and `X-Keyway-Delivery` (the same id on
// every retry of one event to one target, so receivers can de-duplicate). See docs/alerts.md.

import { createHash } from 'node:crypto';
import type { AlertChannel, AlertEvent } from '../../core/spec/alert-channel.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { webhookSenderFor, type WebhookSender } from '../webhooks/index.ts';

export const ALERT_WEBHOOK_CHANNEL = 'alert-webhook';
const DELIVERY_TIMEOUT_MS = 10_000;

/** Slack's incoming-webhook hosts: delivered by alert-slack, never as a generic signed webhook. */
export function isSlackWebhook(target: string): boolean {
  return /^https:\/\/hooks\.slack(-gov)?\.com\//i.test(target);
}

export function isWebhookTarget(target: string): boolean {
  if (!/^https:\/\/[^\s/]+/i.test(target) || isSlackWebhook(target)) return false;
  try {
    new URL(target);
    return true;
  } catch {
    return false;
  }
}

/** One delivery id per (event, target): retries reuse it; two targets of one event differ. */
export function deliveryIdOf(event: AlertEvent, target: string): string {
  return `whd_${createHash('sha256').update(`${event.alertId}\u0000${target}`).digest('hex').slice(0, 32)}`;
}

/** The body receivers get: the event without its targets (a URL can hold a token), redacted as a whole. */
export function alertWebhookBody(event: AlertEvent, redact: (text: string) => string): string {
  return redact(
    JSON.stringify({
      id: event.alertId,
      object: 'alert_event',
      type: event.type,
      account_id: event.accountId,
      alert_id: event.details.alert_id ?? null,
      subject: event.subject ?? null,
      period: event.period ?? null,
      message: event.message,
      fired_at: event.firedAt,
      details: event.details,
    }),
  );
}

export function createAlertWebhookChannel(options: { sender: WebhookSender; redact(text: string): string; timeoutMs?: number }): AlertChannel {
  return {
    name: ALERT_WEBHOOK_CHANNEL,
    accepts: isWebhookTarget,
    async send(event, target) {
      await options.sender.send({
        accountId: event.accountId,
        url: target,
        event: `alert.${event.type}`,
        body: alertWebhookBody(event, options.redact),
        deliveryId: deliveryIdOf(event, target),
        timeoutMs: options.timeoutMs ?? DELIVERY_TIMEOUT_MS,
      });
    },
  };
}

export const alertWebhookPlugin = definePlugin({
  name: ALERT_WEBHOOK_CHANNEL,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'alert-channel',
  dependencies: ['webhooks'],
  description: 'Delivers alerts to https:// webhooks, signed with the account webhook secret',
  setup: ({ services }) => ({
    alertChannel: createAlertWebhookChannel({
      // The sender is built on first use: it reads the store, which opens after every setup.
      sender: { send: (webhook) => webhookSenderFor(services).send(webhook) },
      redact: services.errors.redact,
    }),
  }),
});

export default alertWebhookPlugin;
