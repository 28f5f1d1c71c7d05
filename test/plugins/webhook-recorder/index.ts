// A reference alert channel: POSTs each alert as JSON to an `http://` or `https://` URL. It exists so
// the alert-channel conformance suite (test/conformance/alert-channel.ts) has something to run on
// before the real channels (webhook, Slack, e-mail) land, and as a template for them. Like every
// out-of-tree plugin it imports only types from core, so the single binary could load it: the fetch
// and the redactor come from the setup context.

import type { AlertChannel, AlertEvent, PluginDefinition } from '../../../core/spec/plugin.ts';

export const CHANNEL_NAME = 'webhook-recorder';

/** Long enough for a slow receiver; short enough that one dead webhook cannot hold an alert run. */
const DELIVERY_TIMEOUT_MS = 10_000;

/** What a receiver gets: the event without `targets`, since a webhook URL often carries a token. */
export type WebhookPayload = Omit<AlertEvent, 'targets'>;

export interface WebhookChannelOptions {
  fetch: typeof fetch;
  /** Scrubs key-shaped text: the gateway's `services.errors.redact`. */
  redact(text: string): string;
  timeoutMs?: number;
}

function isWebhookUrl(target: string): boolean {
  return /^https?:\/\/[^\s/]+/i.test(target);
}

/**
 * The body to send, serialized and then redacted as a whole: a secret can hide anywhere in
 * `details` (an upstream error that echoed a key), so scrubbing named fields would not be enough.
 * The redactor's marker holds no JSON-special characters, so the text stays valid JSON.
 */
function payloadText(event: AlertEvent, redact: (text: string) => string): string {
  const payload: WebhookPayload = {
    alertId: event.alertId,
    accountId: event.accountId,
    type: event.type,
    message: event.message,
    firedAt: event.firedAt,
    details: event.details,
  };
  return redact(JSON.stringify(payload));
}

async function post(options: WebhookChannelOptions, target: string, body: string): Promise<Response> {
  try {
    return await options.fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? DELIVERY_TIMEOUT_MS),
    });
  } catch (error) {
    // Never the target in the message: the runtime logs it, and the URL may hold a token.
    throw new Error(`the webhook could not be reached: ${options.redact(error instanceof Error ? error.message : String(error))}`);
  }
}

export function createWebhookChannel(options: WebhookChannelOptions): AlertChannel {
  return {
    name: CHANNEL_NAME,
    accepts: isWebhookUrl,
    async send(event, target) {
      const response = await post(options, target, payloadText(event, options.redact));
      // The body is not needed; cancelling it frees the connection.
      await response.body?.cancel();
      if (!response.ok) throw new Error(`the webhook answered HTTP ${response.status}`);
    },
  };
}

const plugin: PluginDefinition = {
  name: CHANNEL_NAME,
  version: '1.0.0',
  // The literal, not PLUGIN_API_VERSION: importing the constant would import core at run time.
  apiVersion: 1,
  kind: 'alert-channel',
  description: 'Posts alerts as JSON to http(s) webhooks (the reference channel of the conformance suite)',
  setup: (context) => ({ alertChannel: createWebhookChannel({ fetch: context.fetch, redact: context.services.errors.redact }) }),
};

export default plugin;
