// POST /v1/admin/master-key/rotate on two instances of one database and one cluster bus: a call on the
// instance not running the rotation is refused with 409 `conflict` ("another instance"), while a call
// on the instance running it joins it. (Two workers of one instance join each other's run instead:
// test/process/workers-master-key.test.ts.) Two gateways in this process share a LocalClusterHub.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { canaryKeys } from './helpers.ts';

const [UPSTREAM_KEY] = canaryKeys(1, 'INST') as [string];
const MASTER = generateMasterKey();

describe('a master key rotation running on another instance', () => {
  const hub = new LocalClusterHub();
  let simulator: SimulatorHandle;
  let first: TestGateway;
  let second: TestGateway;

  const rotate = async (instance: TestGateway, body?: unknown) => {
    const response = await call(instance, 'POST', '/v1/admin/master-key/rotate', body);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
  };

  beforeAll(async () => {
    simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
    // One row a batch and a pause after it: the run lasts about a second.
    const env = {
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      KEYWAY_MASTER_KEYS: `1:${MASTER}`,
      KEYWAY_MASTER_KEY_REWRAP_BATCH: '1',
      KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS: '1000',
    };
    first = await startTestGateway({ probes: false, env, cluster: hub.join() });
    second = await startTestGateway({
      probes: false,
      env: { ...env, KEYWAY_DATABASE_URL: `file:${join(first.dataDirectory, 'keyway.db')}` },
      cluster: hub.join(),
    });
    expect((await call(first, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] })).status).toBe(201);
  });

  afterAll(async () => {
    await second?.stop();
    await first?.stop();
    await simulator?.stop();
  });

  test('is refused with 409 conflict there, and joined where it runs', async () => {
    const started = await rotate(first, { wait: false });
    expect(started).toMatchObject({ status: 202, body: { status: 'running', joined: false } });
    const elsewhere = await rotate(second);
    expect(elsewhere.status).toBe(409);
    expect(elsewhere.body.error?.code).toBe('conflict');
    expect(elsewhere.body.error?.message).toContain('running on another instance');
    const here = await rotate(first);
    expect(here).toMatchObject({ status: 200, body: { id: started.body.id, status: 'completed', joined: true } });
  });
});
