// State shared by three instances on one PostgreSQL database and one Redis (three gateways in this
// process, each with its own Redis connections, so what passes between them is real pub/sub):
// a key cooling down after a rate limit on one cools on all, a provider's circuit opened on one is
// open on all (within the two seconds the product promises), a re-send waiting on an approval on one
// instance is served as soon as an admin approves it on another, Keyway's rate limits count once
// across the three, and a change made behind the bus's back arrives by the backstop reload.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTeamOnEvery, postgresReachable, sharedBackends, startInProcessInstances, within, type SharedBackends } from './instances.ts';

const OPENAI_KEY = 'sk-proj-ClusterSharedStateOpenAIKey00000001';
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };
const SMALL = { model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] };
const BACKSTOP_MS = 500;

interface ProviderHealth {
  name: string;
  status: string;
  keys: Array<{ key_id: string; status: string }>;
}

const reachable = await postgresReachable();

describe.skipIf(!reachable)('three instances sharing state over Redis', () => {
  let backends: SharedBackends;
  let openai: SimulatorHandle;
  let instances: TestGateway[] = [];
  let adminKey = '';
  let memberKey = '';
  let keyId = '';

  const at = (index: number) => () => instances[index] as TestGateway;
  const [a, b, c] = [at(0), at(1), at(2)];

  beforeAll(async () => {
    backends = await sharedBackends();
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    instances = await startInProcessInstances(backends, 3, { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_CONFIG_RELOAD_MS: String(BACKSTOP_MS) });
    adminKey = a().defaultAdminKey;
    const [stored] = await addProviderKeys(a(), [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
    keyId = String(stored?.key_id ?? '');
    ({ memberKey } = await createTeamOnEvery(instances, adminKey, {
      name: 'Engineering Team',
      byok_permissions: { providers: { openai: { enabled: true, require_approval_above: 0.005 } } },
      rate_limits: { requests_per_minute: 1000 },
      members: [{ email: 'developer@company.com', role: 'developer', byok_access: true }],
    }));
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await openai?.stop();
    await backends?.remove();
  });

  async function healthOn(instance: TestGateway): Promise<ProviderHealth> {
    const body = (await (await call(instance, 'GET', '/v1/providers/health', undefined, { key: adminKey })).json()) as { providers: ProviderHealth[] };
    const found = body.providers.find((entry) => entry.name === 'openai');
    if (found === undefined) throw new Error('no openai in the health answer');
    return found;
  }

  test('every instance is on the Redis bus and counters', () => {
    for (const instance of instances) {
      expect(instance.runtime.cluster.name).toBe('redis');
      expect(instance.runtime.counters.name).toBe('redis');
    }
    expect(new Set(instances.map((instance) => instance.runtime.cluster.instanceId)).size).toBe(3);
  });

  test('a key rate limited on one instance cools down on the others within 2 s, without their calling it', async () => {
    for (const instance of instances) expect((await healthOn(instance)).keys[0]?.status).toBe('active');
    openai.inject({ kind: 'rate_limit', retryAfterSeconds: 30 });
    const limited = await call(a(), 'POST', '/v1/chat/completions', SMALL, { key: adminKey });
    expect(limited.status).toBe(429);
    await limited.text();
    const upstream = openai.inferenceRequests().length;
    for (const instance of [b(), c()]) {
      const took = await within(2_000, 'the cooldown on another instance', async () => (await healthOn(instance)).keys[0]?.status === 'rate_limited');
      console.log(`cluster: cooldown seen on another instance after ${Math.round(took)} ms`);
    }
    expect(openai.inferenceRequests().length).toBe(upstream);
    expect((await healthOn(b())).keys[0]?.key_id).toBe(keyId);
  });

  test('a re-send waiting on an approval on one instance is served within 1 s of its approval on another', async () => {
    const held = await call(a(), 'POST', '/v1/chat/completions', BIG, { key: memberKey });
    expect(held.status).toBe(403);
    const approvalId = ((await held.json()) as { error: { approval_id: string } }).error.approval_id;
    expect(approvalId).toStartWith('apr');
    let answeredAt = 0;
    const waiting = call(a(), 'POST', '/v1/chat/completions', BIG, { key: memberKey, headers: { 'x-approval-id': approvalId, prefer: 'wait=20' } }).then(
      (response) => {
        answeredAt = performance.now();
        return response;
      },
    );
    await Bun.sleep(300);
    expect(answeredAt).toBe(0);
    const approved = await call(b(), 'POST', `/v1/approvals/${approvalId}/approve`, undefined, { key: adminKey });
    expect(approved.status).toBe(200);
    const approvedAt = performance.now();
    const response = await waiting;
    expect(response.status).toBe(200);
    // RFC 7240: the wait was honoured.
    expect(response.headers.get('preference-applied')).toBe('wait=20');
    await response.text();
    const took = answeredAt - approvedAt;
    console.log(`cluster: the waiting re-send was served ${Math.round(took)} ms after the approval on another instance`);
    expect(took).toBeLessThan(1_000);
    // Served once: a second re-send anywhere is refused as used.
    const again = await call(c(), 'POST', '/v1/chat/completions', BIG, { key: memberKey, headers: { 'x-approval-id': approvalId } });
    expect(again.status).toBe(403);
    expect(((await again.json()) as { error: { approval_status: string } }).error.approval_status).toBe('used');
  });

  test('a re-send waiting on an approval that is denied elsewhere is refused as denied', async () => {
    const held = await call(a(), 'POST', '/v1/chat/completions', BIG, { key: memberKey });
    const approvalId = ((await held.json()) as { error: { approval_id: string } }).error.approval_id;
    const waiting = call(c(), 'POST', '/v1/chat/completions', BIG, { key: memberKey, headers: { 'x-approval-id': approvalId, prefer: 'wait=20' } });
    await Bun.sleep(200);
    expect((await call(b(), 'POST', `/v1/approvals/${approvalId}/deny`, undefined, { key: adminKey })).status).toBe(200);
    const response = await waiting;
    expect(response.status).toBe(403);
    expect(response.headers.get('preference-applied')).toBe('wait=20');
    expect(((await response.json()) as { error: { approval_status: string } }).error.approval_status).toBe('denied');
  });

  test("Keyway's rate limit counts once across the instances", async () => {
    const created = await call(
      a(),
      'POST',
      '/v1/teams',
      {
        name: 'Limited Team',
        byok_permissions: { providers: { openai: { enabled: true } } },
        rate_limits: { requests_per_minute: 6 },
        members: [{ email: 'limited@company.com', role: 'developer', byok_access: true }],
      },
      { key: adminKey },
    );
    const limitedKey = ((await created.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    for (const instance of instances)
      await within(2_000, 'the team on every instance', async () => (await call(instance, 'GET', '/v1/models', undefined, { key: limitedKey })).status !== 401);
    // A burst that straddles a minute boundary would meet two windows: start early in one.
    if (Date.now() % 60_000 > 50_000) await Bun.sleep(60_000 - (Date.now() % 60_000) + 100);
    const statuses = await Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const response = await call(instances[index % 3] as TestGateway, 'POST', '/v1/chat/completions', SMALL, { key: limitedKey });
        await response.text();
        return response.status;
      }),
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(6);
    expect(statuses.filter((status) => status === 429)).toHaveLength(6);
  }, 30_000);

  // Last: the circuit stays open for check_interval (60 s).
  test('a change written behind the bus (no message) reaches the other instances by the backstop reload', async () => {
    const created = await call(a(), 'POST', '/v1/keys', { name: 'backstop', role: 'developer' }, { key: adminKey });
    expect(created.status).toBe(201);
    const { id, api_key: key } = (await created.json()) as { id: string; api_key: string };
    for (const instance of instances)
      await within(2_000, 'the key on every instance', async () => (await call(instance, 'GET', '/v1/models', undefined, { key })).status === 200);
    // Straight into the database, as another tool or a lost message would leave it: nobody is told.
    expect(await a().runtime.store.revokeGatewayKey(id, 'default')).toBe(true);
    for (const instance of instances) {
      const took = await within(
        BACKSTOP_MS * 4,
        'the revocation by the backstop',
        async () => (await call(instance, 'GET', '/v1/models', undefined, { key })).status === 401,
      );
      expect(took).toBeLessThan(BACKSTOP_MS * 4);
    }
  });

  test("a provider's circuit opened on one instance is open on the others within 2 s; they refuse without calling it", async () => {
    const policy = { auto_disable: true, health_threshold: 95, latency_threshold: 30_000, check_interval: 60, min_samples: 2 };
    expect((await call(a(), 'POST', '/v1/providers/health-check', policy, { key: adminKey })).status).toBe(200);
    // The policy in force on every instance before the circuit opens: an instance still on the policy
    // before (no auto_disable) closes a circuit the others open, so on a busy machine the news of the open
    // circuit could arrive first and be released. And the circuit closed everywhere ('degraded' is a
    // closed circuit whose only key still cools down from the test above).
    for (const instance of instances) {
      await within(2_000, 'the policy on every instance', async () => {
        const answer = (await (await call(instance, 'GET', '/v1/providers/health', undefined, { key: adminKey })).json()) as {
          policy?: { auto_disable?: boolean; min_samples?: number };
        };
        return answer.policy?.auto_disable === true && answer.policy.min_samples === policy.min_samples;
      });
      await within(2_000, 'the circuit closed on every instance', async () => ['healthy', 'degraded'].includes((await healthOn(instance)).status));
    }
    openai.inject({ kind: 'server_error' }, { kind: 'server_error' }, { kind: 'server_error' }, { kind: 'server_error' });
    for (let attempt = 0; attempt < 4 && (await healthOn(a())).status !== 'disabled'; attempt++)
      await (await call(a(), 'POST', '/v1/chat/completions', SMALL, { key: adminKey })).text();
    expect((await healthOn(a())).status).toBe('disabled');
    openai.reset();
    for (const instance of [b(), c()]) {
      const took = await within(2_000, 'the open circuit on another instance', async () => (await healthOn(instance)).status === 'disabled');
      console.log(`cluster: open circuit seen on another instance after ${Math.round(took)} ms`);
    }
    const upstream = openai.inferenceRequests().length;
    const refused = await call(b(), 'POST', '/v1/chat/completions', SMALL, { key: adminKey });
    expect(refused.status).toBe(503);
    await refused.text();
    expect(openai.inferenceRequests().length).toBe(upstream);
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable: the shared-state tests are skipped', () => {});
