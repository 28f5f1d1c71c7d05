// The re-wrap runs online: requests keep flowing and none fails while every stored key is re-wrapped
// in small batches; a second caller joins the running rotation instead of starting another.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, chat, makeDataDirectory, providerKeyRows, seedProviderKeys, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(400, 'ONL');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
let simulator: SimulatorHandle;
const directory = makeDataDirectory();
let gateway: Restartable | undefined;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
  const seeding = await startAt(directory.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: `1:${FIRST}` });
  await seedProviderKeys(seeding.runtime, KEYS);
  await seeding.stop();
  gateway = await startAt(directory.path, {
    KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
    KEYWAY_MASTER_KEYS: `1:${FIRST},2:${SECOND}`,
    // Small batches, so the rotation spans many transactions while requests run.
    KEYWAY_MASTER_KEY_REWRAP_BATCH: '10',
    KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS: '2',
  });
});

afterAll(async () => {
  await gateway?.stop();
  await simulator.stop();
  directory.remove();
});

describe('re-wrap under traffic', () => {
  test('every request succeeds while 400 keys are re-wrapped; a concurrent call joins the same run', async () => {
    const current = gateway as Restartable;
    let rotating = true;
    const statuses: number[] = [];
    const client = async (): Promise<void> => {
      while (rotating) statuses.push((await call(current, 'POST', '/v1/chat/completions', chat)).status);
    };
    const clients = Array.from({ length: 6 }, () => client());
    const started = await call(current, 'POST', '/v1/admin/master-key/rotate', { wait: false });
    expect(started.status).toBe(202);
    const first = (await started.json()) as { id: string; status: string; joined: boolean };
    expect(first).toMatchObject({ status: 'running', joined: false });
    const joined = (await (await call(current, 'POST', '/v1/admin/master-key/rotate')).json()) as Record<string, unknown>;
    rotating = false;
    await Promise.all(clients);
    expect(joined).toMatchObject({ id: first.id, joined: true, status: 'completed', rewrapped: 400, failed: 0 });
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(new Set(providerKeyRows(directory.path).map((row) => row.key_version))).toEqual(new Set([2]));
    // Progress was reported while it ran: the status endpoint now shows the finished run.
    const status = (await (await call(current, 'GET', '/v1/admin/master-key/status')).json()) as {
      rotation: Record<string, unknown>;
      removable_versions: number[];
    };
    expect(status.rotation).toMatchObject({ id: first.id, status: 'completed', rewrapped: 400, cursor: null });
    expect(status.removable_versions).toEqual([1]);
  });
});
