// Redis unreachable, so the cluster bus carries nothing: a management write on one instance still
// reaches the other within about a second, because every instance reads the store's configuration
// change version once a second (core/credentials/config-watch.ts). Two instances in this process on
// one PostgreSQL database, their Redis URL pointing at a port nobody listens on. The usual reason to
// re-issue a member's key is that it leaked: the old key must stop working everywhere, not at the
// next 30 s backstop reload (QA15 cluster #6: served 83–99 more times on each other instance).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, type TestGateway } from '../helpers/gateway.ts';
import { postgresReachable, sharedBackends, startInProcessInstances, within, type SharedBackends } from './instances.ts';

const reachable = await postgresReachable();

/** A local port nothing listens on: taken, then given back. */
function closedPort(): number {
  const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

interface Member {
  id: string;
  api_key: string;
}

describe.skipIf(!reachable)('two instances with Redis unreachable', () => {
  let backends: SharedBackends;
  let instances: TestGateway[] = [];
  let adminKey = '';
  const at = (index: number) => () => instances[index] as TestGateway;
  const [a, b] = [at(0), at(1)];

  const status = async (instance: TestGateway, key: string) => {
    const response = await call(instance, 'GET', '/v1/models', undefined, { key });
    await response.text();
    return response.status;
  };

  beforeAll(async () => {
    backends = await sharedBackends();
    // The backstop stays at its default (30 s): only the change version can bring a change within 2 s.
    instances = await startInProcessInstances(backends, 2, { KEYWAY_REDIS_URL: `redis://127.0.0.1:${closedPort()}` });
    adminKey = a().defaultAdminKey;
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await backends?.remove();
  });

  test('the bus is Redis, and it is down on both', () => {
    for (const instance of instances) {
      expect(instance.runtime.cluster.name).toBe('redis');
      expect(instance.runtime.counters.reachable?.()).toBe(false);
    }
  });

  test("a member key re-issued on one instance is refused on the other within 2 s, and the new key works there; a removed member's key too", async () => {
    const created = await call(
      a(),
      'POST',
      '/v1/teams',
      { name: 'Leaky Team', members: [{ email: 'leaky@company.com', role: 'developer', byok_access: true }] },
      { key: adminKey },
    );
    expect(created.status).toBe(201);
    const team = (await created.json()) as { id: string; members: Member[] };
    const member = team.members[0] as Member;
    const appeared = await within(2_000, 'the new member key on the other instance', async () => (await status(b(), member.api_key)) === 200, 20);

    const reissued = await call(a(), 'POST', `/v1/teams/${team.id}/members/${member.id}/keys`, undefined, { key: adminKey });
    expect(reissued.status).toBe(201);
    const newKey = ((await reissued.json()) as Member).api_key;
    expect(newKey).not.toBe(member.api_key);
    expect(await status(a(), member.api_key)).toBe(401);
    const refused = await within(2_000, 'the old key refused on the other instance', async () => (await status(b(), member.api_key)) === 401, 20);
    expect(await status(b(), newKey)).toBe(200);

    const removed = await call(a(), 'DELETE', `/v1/teams/${team.id}/members/${member.id}`, undefined, { key: adminKey });
    expect(removed.status).toBe(204);
    const gone = await within(2_000, "the removed member's key refused on the other instance", async () => (await status(b(), newKey)) === 401, 20);
    console.log(
      `bus down: a new key in force on the other instance after ${Math.round(appeared)} ms, a re-issued key refused after ${Math.round(refused)} ms, a removed member's after ${Math.round(gone)} ms`,
    );
  }, 20_000);
});
