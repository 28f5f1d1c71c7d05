// A provider key is stored once per owner and provider (migration 0013_provider_keys_stored_once). A
// route checks its snapshot first; a key another worker or instance stored a moment ago is in the
// store but not yet in that snapshot, and the store's unique index refuses the second copy. Each way a
// key is stored answers that as the documented 409 naming the stored key: an add, a rotation's new key,
// and a key converted onto a reference another key holds. test/process/workers-duplicate-keys.test.ts
// races real workers; here "another worker" writes to the store directly, so each path runs for sure.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { fingerprint } from '../../core/credentials/secrets.ts';
import { providerKeyRow } from '../helpers/provider-key-row.ts';
import type { KeyOwner } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const KEYS = Array.from({ length: 6 }, (_, index) => `sk-proj-StoredOnceCanary${index}000000000000000000000000`);
const REFERENCED = 'sk-proj-StoredOnceReferenced00000000000000000000';
const REPEATED = 'sk-proj-StoredOnceRepeatedInBody0000000000000000';

let openai: SimulatorHandle;
let gateway: TestGateway;
let admin = '';

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [...KEYS, REFERENCED, REPEATED] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_KEY_STORED_ONCE: REFERENCED } });
  admin = gateway.defaultAdminKey;
});

afterAll(async () => {
  await gateway.stop();
  await openai.stop();
});

/** What another worker's add leaves: the key in the store, and no word of it in this worker's snapshot. */
async function storedElsewhere(id: string, apiKey: string, owner: KeyOwner = 'account'): Promise<void> {
  await gateway.runtime.store.insertProviderKeys([
    providerKeyRow({
      id,
      owner,
      accountId: owner === 'account' ? 'default' : null,
      provider: 'openai',
      apiKey,
      ciphertext: 'kw1.local.v1.sealed-by-another-worker',
    }),
  ]);
  expect(gateway.runtime.snapshots.current.keysById.has(id)).toBe(false);
}

/** The live keys the store holds with `apiKey`'s fingerprint. */
async function copiesOf(apiKey: string): Promise<string[]> {
  return (await gateway.runtime.store.listActiveProviderKeys()).filter((key) => key.fingerprint === fingerprint(apiKey)).map((key) => key.id);
}

// The second copy named the id the first would have had, which nothing ever held (QA20 seed F3).
test('the same key twice in one body: 409 naming its first place in the body, nothing stored', async () => {
  const added = await call(
    gateway,
    'POST',
    '/v1/providers/keys',
    {
      providers: [
        { name: 'openai', api_key: REPEATED },
        { name: 'openai', api_key: REPEATED },
      ],
    },
    { key: admin },
  );
  const body = await expectSpecError(added, 409, 'conflict');
  expect({ message: body.error.message, param: body.error.param }).toEqual({
    message: 'providers[1]: this openai key is also providers[0] of this body; send it once. Nothing was stored.',
    param: 'providers[1].api_key',
  });
  expect(await copiesOf(REPEATED)).toEqual([]);
});

describe('a key another worker stored a moment ago', () => {
  test('POST /v1/providers/keys and /v1/platform/keys: 409 naming it, the batch stores nothing', async () => {
    await storedElsewhere('pk_elsewhere_add', KEYS[0] as string);
    const added = await call(
      gateway,
      'POST',
      '/v1/providers/keys',
      {
        providers: [
          { name: 'openai', api_key: KEYS[1] },
          { name: 'openai', api_key: KEYS[0] },
        ],
      },
      { key: admin },
    );
    const body = await expectSpecError(added, 409, 'conflict');
    expect({ message: body.error.message, param: body.error.param }).toEqual({
      message: 'providers[1]: this openai key is already stored as pk_elsewhere_add.',
      param: 'providers[1].api_key',
    });
    expect(await copiesOf(KEYS[0] as string)).toEqual(['pk_elsewhere_add']);
    expect(await copiesOf(KEYS[1] as string)).toEqual([]);

    await storedElsewhere('pk_elsewhere_platform', KEYS[2] as string, 'platform');
    const platform = await call(gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: KEYS[2] }] }, { key: OPERATOR_KEY });
    expect((await expectSpecError(platform, 409, 'conflict')).error.message).toBe('providers[0]: this openai key is already stored as pk_elsewhere_platform.');
    expect(await copiesOf(KEYS[2] as string)).toEqual(['pk_elsewhere_platform']);
  });

  test("a rotation's new key: 409 naming it, no rotation started", async () => {
    const [old] = await addProviderKeys(gateway, [{ name: 'openai', api_key: KEYS[3] }], admin);
    await storedElsewhere('pk_elsewhere_rotation', KEYS[4] as string);
    const rotated = await call(
      gateway,
      'POST',
      '/v1/providers/keys/rotate',
      { provider: 'openai', key_id: old?.key_id, new_api_key: KEYS[4], test_before_switch: false },
      { key: admin },
    );
    expect((await expectSpecError(rotated, 409, 'conflict')).error.message).toBe('This openai key is already stored as pk_elsewhere_rotation.');
    expect(await copiesOf(KEYS[4] as string)).toEqual(['pk_elsewhere_rotation']);
    const rotations = (await call(gateway, 'GET', '/v1/providers/keys/rotations', undefined, { key: admin }).then((response) => response.json())) as {
      rotations: unknown[];
    };
    expect(rotations.rotations).toEqual([]);
  });
});

describe('a key converted onto a reference another key of the account holds', () => {
  test('409 naming that key, nothing changed; the same when the snapshot does not know the other key yet', async () => {
    const reference = { source: 'env', locator: 'KEYWAY_KEY_STORED_ONCE' };
    const [byReference] = await addProviderKeys(gateway, [{ name: 'openai', key_reference: reference }], admin);
    const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: REFERENCED }], admin);
    const convert = () => call(gateway, 'POST', `/v1/providers/keys/${stored?.key_id}/convert`, { key_reference: reference }, { key: admin });
    const known = await expectSpecError(await convert(), 409, 'conflict');
    expect({ message: known.error.message, param: known.error.param }).toEqual({
      message: `Provider key ${byReference?.key_id} already holds this key_reference; nothing was changed.`,
      param: 'key_reference',
    });
    // The reference's key deleted here and added again by "another worker": only the store knows it.
    expect((await call(gateway, 'DELETE', `/v1/providers/keys/${byReference?.key_id}`, undefined, { key: admin })).status).toBe(204);
    const twin = (await gateway.runtime.store.listActiveProviderKeys()).find((key) => key.id === stored?.key_id);
    await gateway.runtime.store.insertProviderKeys([
      { ...(twin as NonNullable<typeof twin>), id: 'pk_elsewhere_reference', fingerprint: String(byReference?.fingerprint) },
    ]);
    const raced = await expectSpecError(await convert(), 409, 'conflict');
    expect(raced.error.message).toBe('Provider key pk_elsewhere_reference already holds this key_reference; nothing was changed.');
    const listed = (await gateway.runtime.store.listActiveProviderKeys()).find((key) => key.id === stored?.key_id);
    expect(listed?.fingerprint).toBe(fingerprint(REFERENCED));
  });
});
