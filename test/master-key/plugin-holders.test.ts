// Master-key rotation re-wraps what plugins seal themselves (stored Responses, the webhook secret, the
// reconciliation admin keys), not only provider keys: before the rotation v1 is not removable while
// any of them needs it; after it, a start with v2 alone still opens every one of them.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { join } from 'node:path';
import { AdminKeys } from '../../plugins/reconciliation/admin-keys.ts';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, makeDataDirectory, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(2, 'HOLD');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const ADMIN_KEY = 'sk-admin-CANARYHOLDxDoNotLeak0123456789abcdef';
let simulator: SimulatorHandle;
const directories: Array<{ remove(): void }> = [];
const running = new Set<Restartable>();

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
});

afterAll(async () => {
  for (const gateway of running) await gateway.stop();
  await simulator.stop();
  for (const directory of directories) directory.remove();
});

type Body = Record<string, unknown>;

async function bodyOf(response: Response): Promise<{ status: number; body: Body }> {
  return { status: response.status, body: (await response.json()) as Body };
}

/** A data directory whose gateway is restarted with another keyring, one gateway at a time. */
function scenario(): (keyring: string) => Promise<Restartable> {
  const directory = makeDataDirectory();
  directories.push(directory);
  let current: Restartable | undefined;
  return async (keyring) => {
    if (current !== undefined) {
      await current.stop();
      running.delete(current);
    }
    current = await startAt(directory.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: keyring });
    running.add(current);
    return current;
  };
}

function tableRows(gateway: Restartable, sql: string): Body[] {
  const database = new Database(join(gateway.runtime.config.dataDirectory, 'keyway.db'), { readonly: true });
  try {
    return database.query(sql).all() as Body[];
  } finally {
    database.close();
  }
}

async function waitForRow(gateway: Restartable, sql: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (tableRows(gateway, sql).length > 0) return;
    await Bun.sleep(20);
  }
  throw new Error(`no row for: ${sql}`);
}

/** With v1 and v2 configured: v1 is not removable while the one plugin value needs it; the rotation re-wraps it; then v1 is. */
async function rotateExpecting(gateway: Restartable): Promise<void> {
  const before = await bodyOf(await call(gateway, 'GET', '/v1/admin/master-key/status'));
  expect(before.body).toMatchObject({ current_key_version: 2, key_versions: [1, 2], removable_versions: [] });
  expect(before.body.stored_by_version).toEqual([{ backend: 'local', key_version: 1, count: 1 }]);
  const rotated = await bodyOf(await call(gateway, 'POST', '/v1/admin/master-key/rotate'));
  expect(rotated.status).toBe(200);
  expect(rotated.body).toMatchObject({ status: 'completed', rewrapped: 1, failed: 0, removable_versions: [1] });
  expect(rotated.body.stored_by_version).toEqual([{ backend: 'local', key_version: 2, count: 1 }]);
}

describe('master key rotation of plugin-sealed values', () => {
  test('a stored response: re-wrapped, then read and continued with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const added = await bodyOf(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[0] }] }));
    const keyId = (added.body.providers as Array<{ key_id: string }>)[0]?.key_id;
    const created = await bodyOf(await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'hello under v1' }));
    expect(created.status).toBe(200);
    const responseId = String(created.body.id);
    await waitForRow(gateway, `SELECT id FROM responses_stored WHERE id = '${responseId}'`);
    // The provider key's ciphertext is wiped on delete, so only the stored response needs v1.
    expect((await call(gateway, 'DELETE', `/v1/providers/keys/${keyId}`)).status).toBe(204);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);
    expect(String(tableRows(gateway, 'SELECT ciphertext FROM responses_stored')[0]?.ciphertext)).toStartWith('kw1.local.v2.');

    gateway = await restart(`2:${SECOND}`);
    const read = await bodyOf(await call(gateway, 'GET', `/v1/responses/${responseId}`));
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(responseId);
    expect((await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[1] }] })).status).toBe(201);
    const continued = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'again', previous_response_id: responseId });
    expect(continued.status).toBe(200);
  });

  test('the webhook secret: re-wrapped, then opened with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const created = await bodyOf(await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: gateway.defaultAdminKey }));
    expect(created.status).toBe(201);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);

    gateway = await restart(`2:${SECOND}`);
    const row = tableRows(gateway, "SELECT backend, key_version, ciphertext FROM webhook_secrets WHERE account_id = 'default'")[0];
    expect(row?.key_version).toBe(2);
    const opened = await gateway.runtime.services.secrets.open(
      { backend: String(row?.backend), ciphertext: String(row?.ciphertext) },
      'webhook-secret:default',
    );
    expect(opened).toBe(String(created.body.secret));
  });

  test('a reconciliation admin key: re-wrapped, then opened with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const stored = await call(gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: ADMIN_KEY, verify: false });
    expect(stored.status).toBe(200);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);

    gateway = await restart(`2:${SECOND}`);
    expect(tableRows(gateway, 'SELECT key_version FROM reconciliation_admin_keys')).toEqual([{ key_version: 2 }]);
    const opened = await new AdminKeys(gateway.runtime.services).open('default', 'openai');
    expect(opened?.adminKey).toBe(ADMIN_KEY);
  });
});
