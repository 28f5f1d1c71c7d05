// Master-key rotation end to end, over HTTP: versioned keys in KEYWAY_MASTER_KEYS, the re-wrap
// endpoint, what the rows hold afterwards, removing the old version, and the refusals at start.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, chat, databaseBytes, databaseDump, makeDataDirectory, providerKeyRows, refusedStart, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(4, 'ROT');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
let simulator: SimulatorHandle;
const directory = makeDataDirectory();
const output: string[] = [];
const answers: string[] = [];
let gateway: Restartable | undefined;

const base = (): Record<string, string> => ({ KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` });

async function recorded(response: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await response.text();
  answers.push(text);
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
}

async function restart(env: Record<string, string>): Promise<Restartable> {
  await gateway?.stop();
  gateway = await startAt(directory.path, { ...base(), ...env }, { output });
  return gateway;
}

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
});

afterAll(async () => {
  await gateway?.stop();
  await simulator.stop();
  directory.remove();
});

describe('master key rotation', () => {
  test('keys added under v1 are re-wrapped under v2; they still serve; v1 can then be removed', async () => {
    let current = await restart({ KEYWAY_MASTER_KEYS: `1:${FIRST}` });
    const added = await recorded(
      await call(current, 'POST', '/v1/providers/keys', { providers: KEYS.slice(0, 3).map((api_key) => ({ name: 'openai', api_key })) }),
    );
    expect(added.status).toBe(201);
    const ids = (added.body.providers as Array<{ key_id: string }>).map((key) => key.key_id);
    expect((await call(current, 'DELETE', `/v1/providers/keys/${ids[2]}`)).status).toBe(204);
    expect(providerKeyRows(directory.path).map((row) => row.key_version)).toEqual([1, 1, 1]);

    // v2 goes next to v1 (newest last); new keys are sealed under v2 at once.
    current = await restart({ KEYWAY_MASTER_KEYS: `v1:${FIRST},v2:${SECOND}` });
    const before = await recorded(await call(current, 'GET', '/v1/admin/master-key/status'));
    expect(before.body).toMatchObject({ backend: 'local', current_key_version: 2, key_versions: [1, 2], removable_versions: [] });
    // The deleted key's ciphertext was wiped when it was deleted: nothing of it is sealed any more.
    expect(before.body.stored_by_version).toEqual([{ backend: 'local', key_version: 1, count: 2 }]);

    const rotated = await recorded(await call(current, 'POST', '/v1/admin/master-key/rotate'));
    expect(rotated.status).toBe(200);
    // Nothing stays sealed under the retired key (the deleted key's row holds no ciphertext).
    expect(rotated.body).toMatchObject({
      status: 'completed',
      backend: 'local',
      key_version: 2,
      rewrapped: 2,
      already_current: 0,
      failed: 0,
      removable_versions: [1],
    });
    const rows = providerKeyRows(directory.path);
    const deletedRow = rows.find((row) => row.id === ids[2]);
    expect(deletedRow?.ciphertext).toBe('');
    expect(rows.filter((row) => row !== deletedRow).map((row) => [row.key_version, row.ciphertext.startsWith('kw1.local.v2.')])).toEqual([
      [2, true],
      [2, true],
    ]);
    expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);

    // Idempotent: a second rotation finds everything current and writes nothing.
    const again = await recorded(await call(current, 'POST', '/v1/admin/master-key/rotate', { wait: true }));
    expect(again.body).toMatchObject({ status: 'completed', rewrapped: 0, already_current: 2, failed: 0 });
    expect(providerKeyRows(directory.path).map((row) => row.ciphertext)).toEqual(rows.map((row) => row.ciphertext));

    // v1 removed: start still works, the keys decrypt and serve.
    current = await restart({ KEYWAY_MASTER_KEYS: `2:${SECOND}` });
    for (let attempt = 0; attempt < 4; attempt++) expect((await call(current, 'POST', '/v1/chat/completions', chat)).status).toBe(200);
    const after = await recorded(await call(current, 'GET', '/v1/admin/master-key/status'));
    expect(after.body).toMatchObject({ current_key_version: 2, key_versions: [2], removable_versions: [] });
    expect((after.body.rotation as { status: string }).status).toBe('completed');
  });

  test('only the operator may rotate or read the status', async () => {
    const current = gateway as Restartable;
    await expectSpecError(
      await call(current, 'POST', '/v1/admin/master-key/rotate', undefined, { key: current.defaultAdminKey || 'kw_ak_nope' }),
      403,
      'permission_denied',
    );
    await expectSpecError(
      await call(current, 'GET', '/v1/admin/master-key/status', undefined, { key: 'kw_ak_unknown0000000000000000000000000000000' }),
      401,
      'invalid_api_key',
    );
    await expectSpecError(await call(current, 'POST', '/v1/admin/master-key/rotate', '{"wait": "yes"}'), 400, 'invalid_field');
    await expectSpecError(await call(current, 'POST', '/v1/admin/master-key/rotate', '{nope'), 400, 'invalid_json');
  });

  test('a wrong key under KEYWAY_MASTER_KEYS is refused, naming the version and the variable, never the key; nothing is written', async () => {
    await gateway?.stop();
    gateway = undefined;
    const bytes = databaseDump(directory.path);
    const wrong = generateMasterKey();
    const message = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `2:${wrong}` });
    expect(message).toContain('Wrong master key: master key v2 (from KEYWAY_MASTER_KEYS) does not match this database');
    expect(message).not.toContain(wrong);
    expect(message).not.toContain(SECOND);
    expect(databaseDump(directory.path)).toBe(bytes);
  });

  test('the newest version missing is refused with what to do; nothing is written', async () => {
    const bytes = databaseDump(directory.path);
    const message = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `1:${FIRST}` });
    expect(message).toContain('Missing master key: master key v2 is not configured, but 2 stored provider key(s) are sealed under it');
    expect(message).toContain('KEYWAY_ALLOW_MISSING_KEY_VERSIONS=2');
    expect(message).not.toContain(FIRST);
    expect(databaseDump(directory.path)).toBe(bytes);
  });

  test('no master key configured at all: the generated one does not match, so the start is refused', async () => {
    const bytes = databaseDump(directory.path);
    const message = await refusedStart(directory.path, base());
    expect(message).toMatch(/Wrong master key|Missing master key/);
    expect(databaseDump(directory.path)).toBe(bytes);
  });

  test('ambiguous settings are refused with a clear message', async () => {
    const both = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `2:${SECOND}`, KEYWAY_MASTER_KEY: FIRST });
    expect(both).toContain('KEYWAY_MASTER_KEYS is set together with KEYWAY_MASTER_KEY');
    const previous = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `2:${SECOND}`, KEYWAY_PREVIOUS_MASTER_KEYS: `v1:${FIRST}` });
    expect(previous).toContain('KEYWAY_MASTER_KEYS is set together with KEYWAY_PREVIOUS_MASTER_KEYS');
    const order = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: `2:${SECOND},1:${FIRST}` });
    expect(order).toContain('lists v1 after v2; list the versions oldest first');
    const bare = await refusedStart(directory.path, { ...base(), KEYWAY_MASTER_KEYS: SECOND });
    expect(bare).toContain('must name its version');
    for (const message of [both, previous, order, bare]) {
      expect(message).not.toContain(FIRST);
      expect(message).not.toContain(SECOND);
    }
  });

  test('canaries: no provider key or master key in any log line, answer or database file', () => {
    const logs = output.join('\n');
    const stored = databaseBytes(directory.path);
    for (const secret of [...KEYS, FIRST, SECOND]) {
      expect(logs).not.toContain(secret);
      expect(answers.join('\n')).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });
});
