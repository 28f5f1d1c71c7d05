// The alert-channel conformance suite: what every AlertChannel (core/spec/alert-channel.ts) must do,
// whether it posts to a webhook, Slack or a mail server. Call it from your own test file with a
// harness around a destination you control (a local HTTP receiver, an SMTP sink):
//
//   describeAlertChannelConformance('slack', {
//     create: async () => ({ channel, target: 'slack:#ops', failingTarget: 'slack:#broken', received, cleanup }),
//     acceptedTarget: 'slack:#alerts',
//     rejectedTarget: 'ops@example.com',
//     plugin: slackPlugin,
//     gateway: { env: { KEYWAY_SLACK_API_URL: sink.url } },
//   });
//
// Secrets: the contract is "the channel redacts". AlertChannel.send already promises never to send a
// secret, and the channel is the last hop before a third party: it sees the final text (a JSON body,
// a Slack message, an e-mail) in which a key could arrive from anywhere, such as an upstream error
// that echoed one into `details`. The core should not put secrets in events either, but a channel
// test can only check the channel. Use `services.errors.redact` from the setup context: the suite
// sends keys of the shapes it knows (OpenAI, Anthropic, Google) and checks none arrives.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import type { AlertChannel, AlertEvent } from '../../core/spec/alert-channel.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '../helpers/gateway.ts';

export interface AlertChannelHarness {
  channel: AlertChannel;
  /** A target the channel accepts whose deliveries `received()` reports. */
  target: string;
  /** A target the channel accepts whose destination fails (answers an error, refuses the connection). */
  failingTarget: string;
  /** Everything `target`'s destination has received so far, one entry per delivery. */
  received(): Promise<unknown[]>;
  cleanup(): Promise<void> | void;
}

export interface AlertChannelConformanceOptions {
  /** A fresh harness: each test starts with nothing received. */
  create(): Promise<AlertChannelHarness>;
  /** A target of the kind the channel delivers to; it need not be reachable. */
  acceptedTarget: string;
  /** A target of another kind, which the channel must refuse. */
  rejectedTarget: string;
  /** The channel's plugin, loaded into a test gateway for the end-to-end check. */
  plugin: PluginDefinition;
  /** What that gateway needs to reach the harness's destination (env, fetch). */
  gateway?: Pick<TestGatewayOptions, 'env' | 'fetch' | 'resolve'>;
  /** The plugin is one of the built-ins, which every test gateway already loads: it is not added again. */
  builtin?: boolean;
}

/** Key-shaped strings the core's redactor knows; distinctive enough that finding one means a leak. */
const FAKE_SECRETS = [
  'sk-proj-AlertConformanceCanary0123456789abcdef',
  'sk-ant-api03-AlertConformanceCanary0123456789',
  'AIzaAlertConformanceCanary0123456789abcd',
];

/** A target no channel can accept: the end-to-end check expects the core to report it undelivered. */
const UNCLAIMED_TARGET = 'keyway-conformance-nowhere:0';

function alertEvent(overrides: Partial<AlertEvent> = {}): AlertEvent {
  return {
    alertId: `alert_${crypto.randomUUID()}`,
    accountId: 'acc_conformance',
    type: 'budget_threshold',
    message: 'Account acc_conformance has spent 80% of its monthly budget.',
    firedAt: new Date().toISOString(),
    details: { thresholdPercent: 80, spentUsd: 40, limitUsd: 50 },
    targets: [],
    ...overrides,
  };
}

/** An event carrying secrets where careless code would forward them: details and the message. */
function leakyEvent(): AlertEvent {
  const [openAIKey, anthropicKey, googleKey] = FAKE_SECRETS;
  return alertEvent({
    type: 'provider_key_invalid',
    message: `A provider key stopped working: Incorrect API key provided: ${openAIKey}.`,
    details: { providerKeyId: 'pk_1', apiKey: anthropicKey, upstreamError: { message: `API key not valid: ${googleKey}` } },
  });
}

function expectNoSecrets(text: string): void {
  for (const secret of FAKE_SECRETS) expect(text).not.toContain(secret);
}

/** A delivery as text to search: raw text (a mail body) as is, anything else as JSON. */
function textOf(delivery: unknown): string {
  return typeof delivery === 'string' ? delivery : JSON.stringify(delivery);
}

async function rejectionMessage(pending: Promise<void>): Promise<string> {
  try {
    await pending;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error('expected send to reject, but it resolved');
}

export function describeAlertChannelConformance(name: string, options: AlertChannelConformanceOptions): void {
  describe(`alert-channel conformance: ${name}`, () => {
    describeChannel(options);
    describeEndToEnd(options);
  });
}

function describeChannel(options: AlertChannelConformanceOptions): void {
  describe('the channel on its own', () => {
    const harness = useHarness(options);
    describeTargets(options, harness);
    describeDelivery(harness);
  });
}

/** A fresh harness per test, so each starts with nothing received. */
function useHarness(options: AlertChannelConformanceOptions): () => AlertChannelHarness {
  let harness: AlertChannelHarness | undefined;
  beforeEach(async () => {
    harness = await options.create();
  });
  afterEach(async () => {
    await harness?.cleanup();
    harness = undefined;
  });
  return () => {
    if (harness === undefined) throw new Error('the harness was not created');
    return harness;
  };
}

function describeTargets(options: AlertChannelConformanceOptions, current: () => AlertChannelHarness): void {
  test('accepts() is true for its target kind and false for others', () => {
    const { channel, target, failingTarget } = current();
    expect(channel.accepts(options.acceptedTarget)).toBe(true);
    expect(channel.accepts(target)).toBe(true);
    expect(channel.accepts(failingTarget)).toBe(true);
    expect(channel.accepts(options.rejectedTarget)).toBe(false);
    expect(channel.accepts(UNCLAIMED_TARGET)).toBe(false);
    expect(channel.accepts('')).toBe(false);
  });
}

function describeDelivery(current: () => AlertChannelHarness): void {
  test('send() delivers once per call, naming the alert type and message', async () => {
    const { channel, target, received } = current();
    const event = alertEvent();
    await expect(channel.send(event, target)).resolves.toBeUndefined();
    const deliveries = await received();
    expect(deliveries).toHaveLength(1);
    const text = textOf(deliveries[0]);
    expect(text).toContain(event.type);
    expect(text).toContain(event.message);
    await channel.send(alertEvent({ type: 'second_alert' }), target);
    expect(await received()).toHaveLength(2);
  });

  test('send() rejects when the destination fails, without echoing a secret', async () => {
    const { channel, failingTarget, received } = current();
    const message = await rejectionMessage(channel.send(leakyEvent(), failingTarget));
    expect(message.length).toBeGreaterThan(0);
    expectNoSecrets(message);
    expect(await received()).toEqual([]);
  });

  test('what arrives never contains a secret, though the alert itself does arrive', async () => {
    const { channel, target, received } = current();
    const event = leakyEvent();
    await channel.send(event, target);
    const deliveries = await received();
    expect(deliveries).toHaveLength(1);
    const text = textOf(deliveries[0]);
    expect(text).toContain(event.type);
    expectNoSecrets(text);
  });
}

function describeEndToEnd(options: AlertChannelConformanceOptions): void {
  describe('through a gateway with the plugin loaded', () => {
    let harness: AlertChannelHarness;
    let gateway: TestGateway;
    beforeAll(async () => {
      harness = await options.create();
      const extraPlugins = options.builtin === true ? [] : [{ definition: options.plugin, source: 'conformance' }];
      gateway = await startTestGateway({ ...options.gateway, extraPlugins, probes: false });
    });
    afterAll(async () => {
      await gateway?.stop();
      await harness?.cleanup();
    });

    test('services.alerts.fire reports each target: delivered, failed, or claimed by no channel', async () => {
      const event = leakyEvent();
      const targets = [harness.target, harness.failingTarget, UNCLAIMED_TARGET];
      const deliveries = await gateway.runtime.services.alerts.fire({ ...event, targets });
      const channel = harness.channel.name;
      expect(deliveries).toEqual([
        { target: harness.target, channel, ok: true },
        { target: harness.failingTarget, channel, ok: false, error: expect.any(String) },
        { target: UNCLAIMED_TARGET, channel: undefined, ok: false, error: expect.any(String) },
      ]);
      expect(deliveries[2]?.channel).toBeUndefined();
      const received = await harness.received();
      expect(received).toHaveLength(1);
      expect(textOf(received[0])).toContain(event.type);
    });

    test('no secret from the event reaches the gateway log or a delivery report', async () => {
      const deliveries = await gateway.runtime.services.alerts.fire({ ...leakyEvent(), targets: [harness.failingTarget] });
      expect(deliveries[0]?.ok).toBe(false);
      expectNoSecrets(JSON.stringify(deliveries));
      // The failed delivery is logged by the core: make sure that log line was written, then scan.
      expect(gateway.output.some((line) => line.includes('alert delivery failed'))).toBe(true);
      expectNoSecrets(gateway.output.join('\n'));
    });
  });
}
