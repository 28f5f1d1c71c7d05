// The reference webhook channel (test/plugins/webhook-recorder) through the alert-channel
// conformance suite (alert-channel.ts), against a local HTTP receiver: `/alerts` records each JSON
// body and answers 204, `/failing` answers 503 like a receiver that is down.

import { createLogger } from '../../core/logger.ts';
import { standaloneServices } from '../../core/services.ts';
import type { AlertChannel } from '../../core/spec/alert-channel.ts';
import webhookRecorderPlugin from '../plugins/webhook-recorder/index.ts';
import { describeAlertChannelConformance, type AlertChannelHarness } from './alert-channel.ts';

interface Receiver {
  url: string;
  received: unknown[];
  stop(): Promise<void>;
}

function startReceiver(): Receiver {
  const received: unknown[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method === 'POST' && path === '/alerts') {
        received.push(await request.json());
        return new Response(null, { status: 204 });
      }
      if (path === '/failing') return new Response('receiver is down', { status: 503 });
      return new Response('not found', { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

/** The channel as the gateway would build it: through the plugin's setup. */
async function setUpChannel(): Promise<AlertChannel> {
  const logger = createLogger('warn', { write: () => undefined } as never);
  const contributions = await webhookRecorderPlugin.setup?.({
    config: {},
    logger,
    fetch,
    env: {},
    dataDirectory: '.',
    services: standaloneServices({ logger }),
  });
  const channel = contributions?.alertChannel;
  if (channel === undefined) throw new Error('webhook-recorder contributed no alert channel');
  return channel;
}

async function createHarness(): Promise<AlertChannelHarness> {
  const receiver = startReceiver();
  return {
    channel: await setUpChannel(),
    target: `${receiver.url}/alerts`,
    failingTarget: `${receiver.url}/failing`,
    received: async () => [...receiver.received],
    cleanup: () => receiver.stop(),
  };
}

describeAlertChannelConformance('webhook-recorder', {
  create: createHarness,
  acceptedTarget: 'https://hooks.example.com/keyway/alerts',
  rejectedTarget: 'ops@example.com',
  plugin: webhookRecorderPlugin,
});
