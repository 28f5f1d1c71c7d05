// Alert channel for Slack incoming webhooks (`https://hooks.slack.com/…`): Slack's own payload,
// `{ text, blocks }`, so the message renders in the channel. Slack does not verify signatures, so none
// is added; the URL itself is the credential, which is why it never appears in an error or an answer.
// Registered before alert-webhook, and alert-webhook refuses Slack's hosts: Slack URLs always land here.

import type { AlertChannel, AlertEvent } from '../../core/spec/alert-channel.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { describeNetworkFailure } from '../../core/wire/outbound.ts';
import { isSlackWebhook } from '../alert-webhook/index.ts';

export const ALERT_SLACK_CHANNEL = 'alert-slack';
const DELIVERY_TIMEOUT_MS = 10_000;

/** Slack's mrkdwn treats these three as control characters; everything else passes as is. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function detailLines(details: Record<string, unknown>): string {
  return Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined && typeof value !== 'object')
    .slice(0, 12)
    .map(([key, value]) => `• *${escapeSlack(key)}*: ${escapeSlack(String(value))}`)
    .join('\n');
}

export function slackPayload(event: AlertEvent): { text: string; blocks: unknown[] } {
  const text = `[Keyway] ${event.type}: ${event.message}`;
  const lines = detailLines(event.details);
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: `Keyway alert: ${event.type}`.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: escapeSlack(event.message).slice(0, 3000) } },
  ];
  if (lines !== '') blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.slice(0, 3000) } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Fired ${escapeSlack(event.firedAt)} · event ${escapeSlack(event.alertId)}` }] });
  return { text, blocks };
}

export function createSlackChannel(options: { fetch: typeof fetch; redact(text: string): string; timeoutMs?: number }): AlertChannel {
  return {
    name: ALERT_SLACK_CHANNEL,
    accepts: isSlackWebhook,
    async send(event, target) {
      const timeoutMs = options.timeoutMs ?? DELIVERY_TIMEOUT_MS;
      let response: Response;
      try {
        response = await options.fetch(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: options.redact(JSON.stringify(slackPayload(event))),
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        // From the error's class and code only: fetch's message quotes the URL, which is the credential.
        throw new Error(`Slack could not be reached: ${describeNetworkFailure(error, timeoutMs)}`);
      }
      // Slack answers 200 "ok", or 4xx with a short reason such as "no_service" or "invalid_payload".
      const reason = (await response.text()).slice(0, 100);
      if (!response.ok) throw new Error(`Slack answered HTTP ${response.status}${/^[a-z_]+$/.test(reason) ? ` (${reason})` : ''}`);
    },
  };
}

export const alertSlackPlugin = definePlugin({
  name: ALERT_SLACK_CHANNEL,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'alert-channel',
  description: 'Delivers alerts to Slack incoming webhooks (https://hooks.slack.com/…)',
  setup: ({ fetch, services }) => ({ alertChannel: createSlackChannel({ fetch, redact: services.errors.redact }) }),
});

export default alertSlackPlugin;
