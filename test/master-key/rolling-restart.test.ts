// The master-key rotation's step 1 across instances (docs/key-lifecycle.md, "Rotating the master key"):
// while instances restart one by one with the new version, an instance already on v1+v2 seals a new
// provider key under v2, and the instances still on v1 alone cannot open it. They must treat that key
// as not usable here: other keys and fallbacks serve; with none left, a 503 that says the key needs a
// master key version this instance does not have; /ready stays 200 (the load balancer must not take
// every not-yet-restarted instance out); one warning per key. QA15 cluster #10 found a 500
// `internal_error` for the key and /ready 503 on every v1-only instance.
// Two gateways in this process on one SQLite file, sharing a LocalClusterHub as their bus.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { canaryKeys } from './helpers.ts';

const [ACCOUNT_V1, ACCOUNT_V2, PLATFORM_V2] = canaryKeys(3, 'ROLL') as [string, string, string];
const OLD = generateMasterKey();
const NEW = generateMasterKey();
const CHAT = { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] };
const PLATFORM_ONLY = { ...CHAT, routing: { strategy: 'fallback_chain', provider_order: ['platform'] } };

describe('a provider key added on an instance already on the new master key version', () => {
  const hub = new LocalClusterHub();
  let simulator: SimulatorHandle;
  /** Still on v1 alone. */
  let old: TestGateway;
  /** Restarted with v1 and v2. */
  let restarted: TestGateway;
  let adminKey = '';

  const keyIdOf = async (instance: TestGateway, body: unknown, key?: string) => {
    const response = await call(instance, 'POST', '/v1/chat/completions', body, { key });
    const text = await response.text();
    return { status: response.status, keyId: response.headers.get('x-key-id'), body: JSON.parse(text) as { error?: { code: string; message: string } } };
  };
  const ready = async (instance: TestGateway) => {
    const response = await call(instance, 'GET', '/ready', undefined, { key: '' });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** The warning itself, not the request lines whose answers quote it. */
  const warningsOn = (instance: TestGateway, keyId: string) =>
    instance.output.filter((line) => line.includes('"level":"warn"') && line.includes(`"msg":"Provider key ${keyId} is sealed under master key v2`)).length;

  beforeAll(async () => {
    simulator = startOpenAISimulator({ apiKeys: [ACCOUNT_V1, ACCOUNT_V2, PLATFORM_V2] });
    const env = { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_CONFIG_POLL_MS: '0' };
    old = await startTestGateway({ probes: false, logLevel: 'info', env: { ...env, KEYWAY_MASTER_KEYS: `1:${OLD}` }, cluster: hub.join() });
    adminKey = old.defaultAdminKey;
    restarted = await startTestGateway({
      probes: false,
      logLevel: 'info',
      env: { ...env, KEYWAY_MASTER_KEYS: `1:${OLD},2:${NEW}`, KEYWAY_DATABASE_URL: `file:${join(old.dataDirectory, 'keyway.db')}` },
      cluster: hub.join(),
    });
  });

  afterAll(async () => {
    await restarted?.stop();
    await old?.stop();
    await simulator?.stop();
  });

  test("with the account's v1 key beside it, the old instance serves every request with the v1 key, and stays ready", async () => {
    const first = await call(old, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: ACCOUNT_V1 }] }, { key: adminKey });
    expect(first.status).toBe(201);
    const v1Id = ((await first.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id ?? '';
    const second = await call(restarted, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: ACCOUNT_V2 }] }, { key: adminKey });
    expect(second.status).toBe(201);
    const v2Id = ((await second.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id ?? '';
    for (let waited = 0; !old.runtime.snapshots.current.keysById.has(v2Id) && waited < 2_000; waited += 10) await Bun.sleep(10);
    expect(old.runtime.snapshots.current.keysById.has(v2Id)).toBe(true);

    const served = [];
    for (let index = 0; index < 12; index++) served.push(await keyIdOf(old, CHAT, adminKey));
    expect(served.map((answer) => answer.status)).toEqual(Array(12).fill(200));
    expect(new Set(served.map((answer) => answer.keyId))).toEqual(new Set([v1Id]));
    expect(await ready(old)).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect(warningsOn(old, v2Id)).toBe(1);

    // The restarted instance opens both.
    const there = [];
    for (let index = 0; index < 12; index++) there.push(await keyIdOf(restarted, CHAT, adminKey));
    expect(there.map((answer) => answer.status)).toEqual(Array(12).fill(200));
    expect(new Set(there.map((answer) => answer.keyId))).toEqual(new Set([v1Id, v2Id]));
  });

  test('with no other key, the old instance answers a 503 that names the missing master key version, never a 500, and stays ready', async () => {
    const added = await call(restarted, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: PLATFORM_V2 }] });
    expect(added.status).toBe(201);
    const platformId = ((await added.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id ?? '';
    for (let waited = 0; !old.runtime.snapshots.current.keysById.has(platformId) && waited < 2_000; waited += 10) await Bun.sleep(10);

    expect(await keyIdOf(restarted, PLATFORM_ONLY)).toMatchObject({ status: 200, keyId: platformId });
    for (let index = 0; index < 3; index++) {
      const refused = await keyIdOf(old, PLATFORM_ONLY);
      expect(refused.status).toBe(503);
      expect(refused.body.error?.code).toBe('no_provider_available');
      expect(refused.body.error?.message).toContain(platformId);
      expect(refused.body.error?.message).toContain('master key v2');
    }
    expect(await ready(old)).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect(warningsOn(old, platformId)).toBe(1);
    expect(old.output.filter((line) => line.includes('"level":"error"') || line.includes('internal_error')).join('\n')).not.toContain(platformId);
  });

  test('a response stored through the restarted instance (sealed under v2) is a 503 that says why on the old one, not a 500', async () => {
    const created = await call(restarted, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'Hello' }, { key: adminKey });
    expect(created.status).toBe(200);
    const id = String(((await created.json()) as { id: string }).id);
    let answer: Response | undefined;
    for (let waited = 0; waited < 2_000; waited += 20) {
      answer = await call(old, 'GET', `/v1/responses/${id}`, undefined, { key: adminKey });
      if (answer.status !== 404) break;
      await answer.text();
      await Bun.sleep(20);
    }
    expect(answer?.status).toBe(503);
    const body = (await answer?.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_ready');
    expect(body.error.message).toContain('master key v2');
    expect((await call(restarted, 'GET', `/v1/responses/${id}`, undefined, { key: adminKey })).status).toBe(200);
  });

  // QA18 multi #4: the continuation was 404 previous_response_not_found ("it was not stored"), so a
  // client started the conversation over instead of retrying on a restarted instance.
  test('continuing that response on the old instance is the same 503, not a 404 that says it was never stored', async () => {
    const created = await call(restarted, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'Remember blue' }, { key: adminKey });
    expect(created.status).toBe(200);
    const id = String(((await created.json()) as { id: string }).id);
    const continued = await call(old, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'And then?', previous_response_id: id }, { key: adminKey });
    const body = (await continued.json()) as { error?: { code: string; message: string } };
    expect([continued.status, body.error?.code]).toEqual([503, 'not_ready']);
    expect(body.error?.message).toContain('master key v2');
    expect(
      (await call(restarted, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'And then?', previous_response_id: id }, { key: adminKey })).status,
    ).toBe(200);
  });
});
