// The store's configuration change version (Store.configChangeVersion / recordConfigChange, read by
// ConfigSnapshots.pollChanges): two gateways on one SQLite file, their bus a LocalClusterHub whose
// messages the test can drop, as a Redis outage drops them. The poll is called by hand here
// (KEYWAY_CONFIG_POLL_MS=0 turns its timer off), so each step is deterministic:
// - a change whose message was lost is found with one read and loaded;
// - nothing changed, or the change already arrived by its message: the read loads nothing;
// - both stores keep the number (PostgreSQL in bus-down.test.ts), and it only grows.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import type { ClusterBus } from '../../core/spec/cluster.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/** A member of `hub` whose messages go out only while `delivering()` says so. */
function droppingMember(hub: LocalClusterHub, delivering: () => boolean): ClusterBus {
  const bus = hub.join();
  return { ...bus, publish: (topic, message) => (delivering() ? bus.publish(topic, message) : undefined) };
}

describe('configuration changes found in the store', () => {
  const hub = new LocalClusterHub();
  let delivering = true;
  let a: TestGateway;
  let b: TestGateway;

  const status = async (instance: TestGateway, key: string) => {
    const response = await call(instance, 'GET', '/v1/models', undefined, { key });
    await response.text();
    return response.status;
  };
  const createKey = async (name: string) => {
    const created = await call(a, 'POST', '/v1/keys', { name, role: 'developer' });
    expect(created.status).toBe(201);
    return (await created.json()) as { id: string; api_key: string };
  };
  const loadsOf = (instance: TestGateway) => instance.runtime.snapshots.current.version;

  beforeAll(async () => {
    const masterKey = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 13 + 1)).toString('base64');
    const env = { KEYWAY_CONFIG_POLL_MS: '0', KEYWAY_CONFIG_RELOAD_MS: '86400000', KEYWAY_MASTER_KEY: masterKey };
    a = await startTestGateway({ probes: false, logLevel: 'warn', env, cluster: droppingMember(hub, () => delivering) });
    b = await startTestGateway({
      probes: false,
      logLevel: 'warn',
      env: { ...env, KEYWAY_DATABASE_URL: `file:${join(a.dataDirectory, 'keyway.db')}` },
      cluster: droppingMember(hub, () => delivering),
    });
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  test('a change whose message was lost is loaded at the next read of the version', async () => {
    delivering = false;
    const key = await createKey('lost message');
    await Bun.sleep(50);
    expect(await status(b, key.api_key)).toBe(401);
    const before = loadsOf(b);
    await b.runtime.snapshots.pollChanges();
    expect(loadsOf(b)).toBe(before + 1);
    expect(await status(b, key.api_key)).toBe(200);

    const revoked = await call(a, 'DELETE', `/v1/keys/${key.id}`);
    expect(revoked.status).toBeLessThan(300);
    await b.runtime.snapshots.pollChanges();
    expect(await status(b, key.api_key)).toBe(401);
  });

  test('nothing changed, or the change came by its message: the read loads nothing', async () => {
    const idle = loadsOf(b);
    await b.runtime.snapshots.pollChanges();
    await b.runtime.snapshots.pollChanges();
    expect(loadsOf(b)).toBe(idle);

    delivering = true;
    const key = await createKey('delivered message');
    for (let waited = 0; (await status(b, key.api_key)) !== 200 && waited < 2_000; waited += 10) await Bun.sleep(10);
    const delivered = loadsOf(b);
    expect(delivered).toBe(idle + 1);
    await b.runtime.snapshots.pollChanges();
    expect(loadsOf(b)).toBe(delivered);
    // The writer loaded its own change after recording it: its read finds nothing new either.
    const writer = loadsOf(a);
    await a.runtime.snapshots.pollChanges();
    expect(loadsOf(a)).toBe(writer);
  });

  test('every management write raises the version once', async () => {
    const store = a.runtime.store;
    const before = (await store.configChangeVersion?.()) ?? -1;
    expect(before).toBeGreaterThan(0);
    await createKey('one more');
    expect(await store.configChangeVersion?.()).toBe(before + 1);
  });
});
