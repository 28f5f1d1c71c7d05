// Key access logs (`key_access_logs: true`): every decryption (a key-vault cache miss) and every use of
// a provider key (each attempt) is an audit event with the key id, the principal's key id, the
// request id and the time, served by GET /v1/audit-logs?type=key_access; never the key. Without the
// setting, nothing of the kind is logged.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

const PROVIDER_KEY = 'sk-proj-KeyAccessLogCanary0123456789abcdefghijk';
let openai: SimulatorHandle;
let gateway: TestGateway;
let keyId: string;

interface KeyAccessEvent {
  action: string;
  request_id: string | null;
  occurred_at: string;
  actor: { key_id: string | null };
  target: { key_id: string; provider: string };
  [detail: string]: unknown;
}

async function keyAccessEvents(): Promise<{ events: KeyAccessEvent[]; text: string }> {
  const response = await call(gateway, 'GET', '/v1/audit-logs?type=key_access&limit=200', undefined, { key: gateway.defaultAdminKey });
  const text = await response.text();
  expect(response.status).toBe(200);
  return { events: (JSON.parse(text) as { events: KeyAccessEvent[] }).events, text };
}

async function chat(content: string): Promise<Response> {
  return call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { key: gateway.defaultAdminKey });
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  // No background probes: the first decryption is the request's own.
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` }, probes: false });
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
});

describe('key access logs', () => {
  test('off: neither decryptions nor uses are logged', async () => {
    const [key] = await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }], gateway.defaultAdminKey);
    keyId = key?.key_id as string;
    expect((await chat('before')).status).toBe(200);
    expect((await keyAccessEvents()).events).toEqual([]);
  });

  test('on: a decryption caused by a request names the request, the principal and the key', async () => {
    const put = await call(gateway, 'PUT', '/v1/settings/compliance', { key_access_logs: true }, { key: gateway.defaultAdminKey });
    expect(put.status).toBe(200);
    // Evict the cached plaintext, as the TTL would: the next request decrypts again.
    gateway.runtime.vault.forget(keyId);
    const response = await chat('after');
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    const { events, text } = await keyAccessEvents();
    const decrypt = events.find((event) => event.action === 'provider_key.decrypt' && event.request_id === requestId);
    expect(decrypt).toMatchObject({ target: { key_id: keyId, provider: 'openai' } });
    expect(decrypt?.actor.key_id).toBeTruthy();
    expect(Number.isNaN(Date.parse(decrypt?.occurred_at ?? ''))).toBe(false);
    const use = events.find((event) => event.action === 'provider_key.use' && event.request_id === requestId);
    expect(use).toMatchObject({ target: { key_id: keyId } });
    expect(use?.actor.key_id).toBe(decrypt?.actor.key_id as string);
    expect(text).not.toContain(PROVIDER_KEY);
  });

  test('a cached key is not decrypted again; each use still is logged', async () => {
    const before = (await keyAccessEvents()).events;
    const response = await chat('cached');
    const requestId = response.headers.get('x-request-id');
    const after = (await keyAccessEvents()).events;
    expect(after.filter((event) => event.action === 'provider_key.decrypt').length).toBe(
      before.filter((event) => event.action === 'provider_key.decrypt').length,
    );
    expect(after.some((event) => event.action === 'provider_key.use' && event.request_id === requestId)).toBe(true);
  });

  test('the key is in no log line', () => {
    expect(gateway.output.join('\n')).not.toContain(PROVIDER_KEY);
  });
});
