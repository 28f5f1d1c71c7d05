// Webhook host names are resolved before each delivery and every answer is held to the upstream address
// rules (core/wire/outbound.ts over core/wire/upstream-policy.ts): a name at loopback, a private range,
// the metadata service or an IPv4-mapped private address is refused, one private answer among public
// ones refuses the name, and a failed lookup is a failed delivery. An admitted delivery goes to the
// address that was checked, with the name as Host and TLS server name (a real TLS server proves the
// certificate is still verified against the name). The resolver is injected; nothing here needs DNS.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OutboundAdmission } from '../../core/spec/services.ts';
import { admitOutbound, createOutboundService } from '../../core/wire/outbound.ts';
import { UpstreamPolicy, type UpstreamPolicyOptions } from '../../core/wire/upstream-policy.ts';
import { createWebhookSender } from '../../plugins/webhooks/index.ts';
import { chat, createAlerts, DELIVERY_ATTEMPTS, settledEvent, startAlertsGateway, type AlertsGateway } from './fixture.ts';
import { TEST_HOST_ADDRESS } from './receivers.ts';

const PUBLIC_ADDRESS = '93.184.216.34';

/** A policy whose resolver answers from `answers` (a name missing there has no answer), counting lookups. */
function policyAnswering(answers: Record<string, string[]>, options: UpstreamPolicyOptions = {}): { policy: UpstreamPolicy; lookups: string[] } {
  const lookups: string[] = [];
  const resolve = async (host: string): Promise<string[]> => {
    lookups.push(host);
    const found = answers[host];
    if (found === undefined) throw Object.assign(new Error(`queryA ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found;
  };
  return { policy: new UpstreamPolicy({ localAddresses: [], ...options, resolve }), lookups };
}

async function admissionFor(answer: string[], options: UpstreamPolicyOptions = {}): Promise<OutboundAdmission> {
  const { policy } = policyAnswering({ 'hooks.example.com': answer }, options);
  return admitOutbound(policy, 'https://hooks.example.com/keyway?token=abc');
}

describe('admitOutbound: a host name is judged by what it resolves to', () => {
  test.each([
    ['loopback', ['127.0.0.1'], 'loopback (127.0.0.0/8)'],
    ['a private range', ['10.20.30.40'], 'a private range (10.0.0.0/8)'],
    ['the metadata service', ['169.254.169.254'], 'a cloud metadata address'],
    ['IPv6 loopback', ['::1'], 'loopback (::1/128)'],
    ['an IPv4-mapped private address', ['::ffff:192.168.1.10'], 'a private range (192.168.0.0/16)'],
    ['an IPv4-mapped metadata address', ['::ffff:169.254.169.254'], 'a cloud metadata address'],
    ['unique local IPv6', ['fd12:3456::1'], 'unique local'],
  ])('a name resolving to %s is refused', async (_what, answer, rule) => {
    const admission = await admissionFor(answer);
    expect(admission).toMatchObject({ allowed: false, kind: 'refused' });
    const reason = admission.allowed ? '' : admission.reason;
    expect(reason).toContain(rule);
    // The admin learns the rule, never the internal address the name pointed at (`::1` is also its rule's range).
    expect(reason.replace(rule, '')).not.toContain(answer[0] ?? '');
  });

  test('a public answer is admitted, and the checked address is the one to connect to', async () => {
    expect(await admissionFor([PUBLIC_ADDRESS])).toEqual({ allowed: true, address: PUBLIC_ADDRESS });
  });

  test('one private answer among public ones refuses the name', async () => {
    expect(await admissionFor([PUBLIC_ADDRESS, '10.0.0.8'])).toMatchObject({ allowed: false, kind: 'refused' });
    expect(await admissionFor(['2606:2800:220:1::1', '127.0.0.1'])).toMatchObject({ allowed: false, kind: 'refused' });
  });

  test('among several public answers an IPv4 one is preferred', async () => {
    expect(await admissionFor(['2606:2800:220:1::1', PUBLIC_ADDRESS])).toEqual({ allowed: true, address: PUBLIC_ADDRESS });
    expect(await admissionFor(['2606:2800:220:1::1'])).toEqual({ allowed: true, address: '2606:2800:220:1::1' });
  });

  test('a name with no answer is unresolved, not an error', async () => {
    const { policy } = policyAnswering({});
    const admission = await admitOutbound(policy, 'https://nowhere.example/hook');
    expect(admission).toEqual({ allowed: false, kind: 'unresolved', reason: 'could not be resolved (ENOTFOUND)' });
  });

  test('an IP literal and localhost are still decided without a lookup', async () => {
    const { policy, lookups } = policyAnswering({});
    expect(await admitOutbound(policy, 'https://169.254.169.254/latest')).toMatchObject({ allowed: false, kind: 'refused' });
    expect(await admitOutbound(policy, 'https://localhost/hook')).toMatchObject({ allowed: false, reason: 'names this machine (localhost)' });
    expect(await admitOutbound(policy, `https://${PUBLIC_ADDRESS}/hook`)).toEqual({ allowed: true, address: undefined });
    // A special-use name is refused by name: nothing is looked up.
    expect(await admitOutbound(policy, 'https://metadata.google.internal/computeMetadata')).toMatchObject({ allowed: false, kind: 'refused' });
    expect(lookups).toEqual([]);
  });

  test("the operator's KEYWAY_UPSTREAM_ALLOW opens a private name or range here as it does for a key, but a range never opens metadata", async () => {
    expect(await admissionFor(['10.0.0.7'], { allow: '10.0.0.0/8' })).toEqual({ allowed: true, address: '10.0.0.7' });
    expect(await admissionFor(['192.168.1.5'], { allow: 'hooks.example.com' })).toEqual({ allowed: true, address: '192.168.1.5' });
    expect(await admissionFor(['169.254.169.254'], { allow: '169.254.0.0/16' })).toMatchObject({ allowed: false, kind: 'refused' });
    expect(await admissionFor(['203.0.113.9'], { deny: '203.0.113.0/24' })).toMatchObject({ allowed: false, kind: 'refused' });
  });
});

interface FetchCall {
  url: string;
  init: RequestInit & { tls?: { serverName?: string }; keepalive?: boolean };
}

/** A sender whose fetch records each call and answers 200, admitted by `policy`. */
function recordingSender(policy: UpstreamPolicy): { send: ReturnType<typeof createWebhookSender>['send']; calls: FetchCall[] } {
  const calls: FetchCall[] = [];
  const recording = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(input), init: init ?? {} });
    return new Response('ok', { status: 200 });
  };
  const sender = createWebhookSender({
    fetch: recording as typeof fetch,
    admit: createOutboundService(policy).admit,
    redact: (text) => text,
    secretOf: async () => 'whsec_test',
    newDeliveryId: () => 'whd_test',
  });
  return { send: (webhook) => sender.send(webhook), calls };
}

const webhook = (url: string, timeoutMs?: number) => ({ accountId: 'default', url, event: 'alert.test', body: '{}', timeoutMs });

describe('the signed sender admits every delivery', () => {
  test('a name at the metadata service is refused with a clear reason, and nothing is sent', async () => {
    const { policy } = policyAnswering({ 'rebound.example.com': ['169.254.169.254'] });
    const { send, calls } = recordingSender(policy);
    await expect(send(webhook('https://rebound.example.com/hook'))).rejects.toThrow(
      "the webhook's address is refused: it resolves to a cloud metadata address",
    );
    expect(calls).toEqual([]);
  });

  test('a failed lookup fails the delivery without a request', async () => {
    const { policy } = policyAnswering({});
    const { send, calls } = recordingSender(policy);
    await expect(send(webhook('https://gone.example.com/hook'))).rejects.toThrow("the webhook's host name could not be resolved (ENOTFOUND); nothing was sent");
    expect(calls).toEqual([]);
  });

  test('a resolver that never answers fails the delivery once its timeout passes', async () => {
    const policy = new UpstreamPolicy({ localAddresses: [], resolve: () => new Promise<string[]>(() => undefined) });
    const { send, calls } = recordingSender(policy);
    await expect(send(webhook('https://slow.example.com/hook', 50))).rejects.toThrow('could not be resolved within 50 ms');
    expect(calls).toEqual([]);
  });

  test('an admitted name is sent to the checked address, with the name as Host and TLS server name', async () => {
    const { policy } = policyAnswering({ 'hooks.example.com': [PUBLIC_ADDRESS], 'v6.example.com': ['2606:2800:220:1::1'] });
    const { send, calls } = recordingSender(policy);
    await send(webhook('https://hooks.example.com/keyway?token=abc'));
    await send(webhook('https://v6.example.com:8443/keyway'));
    expect(calls.map(({ url, init }) => [url, (init.headers as Record<string, string>).host, init.tls?.serverName, init.keepalive])).toEqual([
      [`https://${PUBLIC_ADDRESS}/keyway?token=abc`, 'hooks.example.com', 'hooks.example.com', false],
      ['https://[2606:2800:220:1::1]:8443/keyway', 'v6.example.com:8443', 'v6.example.com', false],
    ]);
    expect((calls[0]?.init.headers as Record<string, string>)['x-keyway-signature']).toMatch(/^sha256=/);
  });

  test('a public IP literal is sent as written', async () => {
    const { policy } = policyAnswering({});
    const { send, calls } = recordingSender(policy);
    await send(webhook(`https://${PUBLIC_ADDRESS}/hook`));
    expect(calls.map(({ url, init }) => [url, init.tls])).toEqual([[`https://${PUBLIC_ADDRESS}/hook`, undefined]]);
  });
});

describe('pinning keeps TLS verified against the name', () => {
  const certificate = readFileSync(join(import.meta.dir, 'tls/webhook-pinned-test.crt'), 'utf8');
  const hosts: string[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    tls: { cert: certificate, key: readFileSync(join(import.meta.dir, 'tls/webhook-pinned-test.key'), 'utf8') },
    fetch(request) {
      hosts.push(request.headers.get('host') ?? '');
      return new Response('ok');
    },
  });
  afterAll(() => server.stop(true));

  /** The real fetch, trusting the test certificate's issuer (and nothing else) in place of the system roots. */
  const trustingTestCertificate = ((input: string | URL | Request, init?: RequestInit & { tls?: object }) =>
    fetch(input, { ...init, tls: { ...init?.tls, ca: certificate } })) as typeof fetch;

  // 127.0.0.1 is opened by the operator, as a private upstream would be: the pinned request still verifies the name.
  const { policy } = policyAnswering({ 'webhook.pinned.test': ['127.0.0.1'], 'other.pinned.test': ['127.0.0.1'] }, { allow: '127.0.0.1' });
  const sender = createWebhookSender({
    fetch: trustingTestCertificate,
    admit: createOutboundService(policy).admit,
    redact: (text) => text,
    secretOf: async () => undefined,
    newDeliveryId: () => 'whd_tls',
  });

  test('the certificate for the name is accepted at the checked address', async () => {
    const result = await sender.send(webhook(`https://webhook.pinned.test:${server.port}/hook`));
    expect(result.status).toBe(200);
    expect(hosts.at(-1)).toBe(`webhook.pinned.test:${server.port}`);
  });

  test('a name the certificate does not cover is refused by TLS, though its address is the same', async () => {
    const before = hosts.length;
    await expect(sender.send(webhook(`https://other.pinned.test:${server.port}/hook`))).rejects.toThrow('could not be reached');
    expect(hosts.length).toBe(before);
  });
});

describe('through a running gateway', () => {
  let setup: AlertsGateway;
  beforeAll(async () => {
    const answers: Record<string, string[]> = {
      'receiver.test': [TEST_HOST_ADDRESS],
      'metadata-alias.test': ['169.254.169.254'],
      'mixed.test': [TEST_HOST_ADDRESS, '10.1.1.1'],
    };
    setup = await startAlertsGateway({
      resolve: async (host) => {
        const found = answers[host];
        if (found === undefined) throw Object.assign(new Error(`no answer for ${host}`), { code: 'ENOTFOUND' });
        return found;
      },
    });
  });
  afterAll(async () => {
    await setup.stop();
  });

  test('an alert delivers to the public name, pinned, and records the private and unresolvable names as failed after its retries', async () => {
    const [alert] = await createAlerts(setup, [
      {
        type: 'byok_cost_threshold',
        threshold: 0.000001,
        notify: ['https://receiver.test/public', 'https://metadata-alias.test/hook', 'https://mixed.test/hook', 'https://unknown.test/hook'],
      },
    ]);
    expect((await chat(setup)).status).toBe(200);
    const event = await settledEvent(setup, String(alert?.id));
    expect(event.status).toBe('partial');
    const [delivered, metadata, mixed, unknown] = event.deliveries;
    expect(delivered).toMatchObject({ channel: 'alert-webhook', ok: true, attempts: 1 });
    expect(metadata).toMatchObject({ channel: 'alert-webhook', ok: false, attempts: DELIVERY_ATTEMPTS });
    expect(metadata?.error).toContain("the webhook's address is refused: it resolves to a cloud metadata address");
    expect(mixed).toMatchObject({ ok: false, attempts: DELIVERY_ATTEMPTS });
    expect(mixed?.error).toContain('a private range (10.0.0.0/8)');
    expect(unknown).toMatchObject({ ok: false, attempts: DELIVERY_ATTEMPTS });
    expect(unknown?.error).toContain('could not be resolved (ENOTFOUND)');
    // The public delivery went to the checked address with the name as Host (receivers.ts routes only that).
    const received = setup.receiver.received.filter((entry) => entry.path === '/public');
    expect(received.map((entry) => entry.headers.host)).toEqual(['receiver.test']);
    expect(setup.receiver.received.some((entry) => entry.path === '/hook')).toBe(false);
  });
});
