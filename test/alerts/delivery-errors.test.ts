// A delivery that fails says why without naming where: not the target URL (its path and query are often
// its own token), not the pinned URL the sender rewrote it to, and not the checked (internal) address.
// A QA pass found `ERR_TLS_CERT_ALTNAME_INVALID fetching "https://127.0.0.1:18443/hooks/…?token=…"` in
// `GET /v1/alerts/events` and in four log lines: the scrub cut out the original URL, not the pinned one.
// Here a real TLS server whose certificate names only `webhook.pinned.test` stands behind every HTTP
// channel (alert webhooks, Slack, compliance `notify`, rotation `notification_webhooks`): each delivery
// fails its certificate check, and neither the events nor any log line carry a canary or the address.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rotationHandleOf } from '../../plugins/rotation/index.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { events } from './fixture.ts';

const OLD_KEY = 'sk-proj-DeliveryErrorsOldKey000000000000000001';
const NEW_KEY = 'sk-proj-DeliveryErrorsNewKey000000000000000002';
const WEBHOOK_CANARIES = ['CANARYleakPath', 'CANARYleakToken'];
const SLACK_CANARIES = ['TCANARYteam', 'BCANARYbot', 'CANARYslackSecret'];
const ALL_CANARIES = [...WEBHOOK_CANARIES, ...SLACK_CANARIES];

const certificate = readFileSync(join(import.meta.dir, 'tls/webhook-pinned-test.crt'), 'utf8');
const tlsServer = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  tls: { cert: certificate, key: readFileSync(join(import.meta.dir, 'tls/webhook-pinned-test.key'), 'utf8') },
  fetch: () => new Response('ok'),
});
const address = `127.0.0.1:${tlsServer.port}`;
/** A name the resolver points at the TLS server's address, which its certificate does not cover. */
const webhookTarget = `https://leak.pinned.test:${tlsServer.port}/hooks/CANARYleakPath?token=CANARYleakToken`;
const slackTarget = 'https://hooks.slack.com/services/TCANARYteam/BCANARYbot/CANARYslackSecret';

/**
 * The real fetch, trusting the test certificate's issuer, so the failure is the name check
 * (ERR_TLS_CERT_ALTNAME_INVALID) as in production. Slack's host is sent to the TLS server with
 * Slack's name as the TLS server name: fetch's own message then quotes `https://127.0.0.1:<port>/services/…`.
 */
const gatewayFetch = ((input: string | URL | Request, init?: RequestInit & { tls?: object }) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname === 'hooks.slack.com')
    return fetch(`https://${address}${url.pathname}${url.search}`, { ...init, tls: { serverName: 'hooks.slack.com', ca: certificate } } as RequestInit);
  return fetch(input, { ...init, tls: { ...init?.tls, ca: certificate } } as RequestInit);
}) as typeof fetch;

let openai: SimulatorHandle;
let gateway: TestGateway;
let adminKey: string;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OLD_KEY, NEW_KEY] });
  gateway = await startTestGateway({
    probes: false,
    fetch: gatewayFetch,
    resolve: async (host) => {
      if (host === 'leak.pinned.test') return ['127.0.0.1'];
      throw Object.assign(new Error(`no answer for ${host}`), { code: 'ENOTFOUND' });
    },
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      // The operator opens the address, as the QA gateway did: the delivery is admitted and pinned to it.
      KEYWAY_UPSTREAM_ALLOW: '127.0.0.1',
      KEYWAY_ALERTS_INTERVAL_MS: '40',
      KEYWAY_ALERTS_RETRY_BASE_MS: '5',
      KEYWAY_ALERTS_DELIVERY_ATTEMPTS: '2',
    },
  });
  adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OLD_KEY }], adminKey);
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
  tlsServer.stop(true);
});

/** Polls the events of one type (or alert) until none is still delivering. */
async function settled(query: string): Promise<Awaited<ReturnType<typeof events>>> {
  const deadline = Date.now() + 8000;
  for (;;) {
    const found = await events(gateway, adminKey, query);
    if (found.length > 0 && found.every((event) => event.status !== 'delivering')) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for settled events (${query})`);
    await Bun.sleep(25);
  }
}

/** Nothing the caller or the logs see holds a canary, or the checked address with the TLS server's port. */
function expectNoTrace(text: string): void {
  for (const canary of ALL_CANARIES) expect(text).not.toContain(canary);
  expect(text).not.toContain(address);
  expect(text).not.toContain(`127.0.0.1:${tlsServer.port}`);
}

describe('a failed delivery names the failure, never the target or its pinned address', () => {
  test('alert webhook and Slack targets: the events and the log lines', async () => {
    const created = await call(
      gateway,
      'POST',
      '/v1/alerts',
      { type: 'byok_cost_threshold', threshold: 0.000001, notify: [webhookTarget, slackTarget] },
      { key: adminKey },
    );
    expect(created.status).toBe(201);
    const alertId = String(((await created.json()) as { alerts: Array<{ id: string }> }).alerts[0]?.id);
    const chat = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] }, { key: adminKey });
    expect(chat.status).toBe(200);
    const [event] = await settled(`?alert_id=${alertId}`);
    expect(event?.status).toBe('failed');
    const [webhook, slack] = event?.deliveries ?? [];
    expect(webhook).toMatchObject({ channel: 'alert-webhook', ok: false, attempts: 2 });
    expect(webhook?.error).toBe('the webhook could not be reached: its TLS certificate does not cover the host name (ERR_TLS_CERT_ALTNAME_INVALID)');
    expect(slack).toMatchObject({ channel: 'alert-slack', ok: false, attempts: 2 });
    expect(slack?.error).toBe('Slack could not be reached: its TLS certificate does not cover the host name (ERR_TLS_CERT_ALTNAME_INVALID)');
    expectNoTrace(JSON.stringify(event?.deliveries));
    // Two targets × two attempts, each logged by the core; none of them names where.
    const failures = gateway.output.filter((line) => line.includes('alert delivery failed'));
    expect(failures.length).toBe(4);
    expectNoTrace(gateway.output.join('\n'));
  });

  test('rotation notification_webhooks: the log line of the undelivered notification', async () => {
    const response = await call(
      gateway,
      'POST',
      '/v1/providers/keys/rotate',
      { provider: 'openai', new_api_key: NEW_KEY, rotation_strategy: 'immediate', test_before_switch: false, notification_webhooks: [webhookTarget] },
      { key: adminKey },
    );
    expect(response.status).toBe(201);
    await rotationHandleOf(gateway.runtime.services)?.rotations.idle();
    const undelivered = gateway.output.filter((line) => line.includes('rotation webhook not delivered'));
    expect(undelivered.length).toBe(1);
    expect(undelivered[0]).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    expectNoTrace(gateway.output.join('\n'));
  });

  test("compliance notify: the compliance alert's delivery and the log lines", async () => {
    // never_store_keys is unmet while the account stores a key: a compliance alert goes to `notify`. The
    // event's subject names the targets by a digest, not as written.
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', { data_residency: 'never_store_keys', notify: [webhookTarget] }, { key: adminKey });
    expect(response.status).toBe(200);
    const [event] = await settled('?type=compliance');
    expect(event?.deliveries[0]).toMatchObject({ channel: 'alert-webhook', ok: false });
    expect(event?.deliveries[0]?.error).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(event?.subject).toMatch(/^data_residency\|targets:[0-9a-f]{12}$/);
    expectNoTrace(JSON.stringify(event));
    expectNoTrace(gateway.output.join('\n'));
  });
});

describe("the core's last scrub of a channel's error", () => {
  test('cuts out every URL and address, but keeps a rule range', async () => {
    const { withoutAddresses } = await import('../../core/wire/outbound.ts');
    expect(withoutAddresses('TLS failed fetching "https://127.0.0.1:18443/hooks/x?token=y". More')).toBe('TLS failed fetching "[URL removed]". More');
    expect(withoutAddresses('connect ECONNREFUSED 10.1.2.3:587 and [fd00::1]:443')).toBe('connect ECONNREFUSED [address removed] and [address removed]');
    expect(withoutAddresses('it resolves to a private range (10.0.0.0/8)')).toBe('it resolves to a private range (10.0.0.0/8)');
  });
});
