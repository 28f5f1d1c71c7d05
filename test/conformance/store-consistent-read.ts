// Store.readConsistent, the optional read the snapshot load is made through (core/credentials/snapshot.ts):
// every read of the view sees one state of the database while writes through the store go on, the
// view refuses writes, and a failed read leaves the store as usable as before. Part of the store
// conformance suite (store.ts), which runs it for a store that offers the method.

import { beforeAll, expect, test as bunTest } from 'bun:test';
import type { NewGatewayKey, NewProviderKey, Store } from '../../core/spec/store.ts';

/** A write through the store while a read is open must not wait for that read: WAL readers and MVCC block no writer. */
const WRITE_BOUND_MS = 3_000;

async function withinBound<Value>(what: string, work: Promise<Value>): Promise<Value> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} waited more than ${WRITE_BOUND_MS} ms for an open consistent read`)), WRITE_BOUND_MS);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const gatewayKey = (id: string): NewGatewayKey => ({
  id,
  accountId: 'acc_view',
  role: 'developer',
  name: id,
  keyHash: `hash_${id}`,
  maskedKey: 'kw_ak_…view',
  teamId: 'team_view',
});

const providerKey = (id: string): NewProviderKey => ({
  id,
  owner: 'account',
  accountId: 'acc_view',
  provider: 'openai',
  ciphertext: `sealed-${id}-v1`,
  keyVersion: 1,
  cryptoBackend: 'local',
  maskedKey: 'sk-…view',
  fingerprint: `fp_${id}`,
  organizationId: null,
  settings: {},
  status: 'active',
  weight: 1,
});

/** What the view reads: each part of the state the snapshot is built from. */
async function stateOf(store: Store) {
  return {
    accounts: (await store.listAccounts()).map((account) => account.id).sort(),
    accountSettings: (await store.getAccount('acc_view'))?.settings,
    gatewayKeys: (await store.listActiveGatewayKeys()).map((key) => key.id).sort(),
    providerKeys: (await store.listActiveProviderKeys()).map((key) => `${key.id}:${key.status}:${key.ciphertext}`).sort(),
    mode: (await store.listPlatformSettings()).conformance_mode,
    notes: (await store.query('SELECT id, body FROM conformance_view_notes ORDER BY id')).map((row) => `${String(row.id)}:${String(row.body)}`),
    changeVersion: await store.configChangeVersion?.(),
  };
}

/** Each test passes at once for a store without readConsistent: the method is optional. */
function testIfOffered(store: () => Store): (name: string, run: () => Promise<void>) => void {
  return (name, run) =>
    bunTest(name, async () => {
      if (store().readConsistent !== undefined) await run();
    });
}

/** The tests, given the suite's fresh migrated store and the plugin table's CREATE statement in its dialect. */
export function consistentReadTests(store: () => Store, createNotes: () => string): void {
  const consistent = (): NonNullable<Store['readConsistent']> => {
    const read = store().readConsistent;
    if (read === undefined) throw new Error('the store has no readConsistent');
    return read.bind(store());
  };
  const test = testIfOffered(store);

  beforeAll(async () => {
    await store().migrate([{ plugin: 'conformance-view', migrations: [{ id: '0001_notes', statements: [createNotes()] }] }]);
    await store().insertAccount('acc_view', 'View');
    await store().insertGatewayKey(gatewayKey('gk_view_member'));
    await store().insertProviderKeys([providerKey('pk_view_1')]);
    await store().setPlatformSetting('conformance_mode', 'before');
    await store().execute('INSERT INTO conformance_view_notes (id, body, score) VALUES (?, ?, ?)', ['team_view', 'live', 1]);
    await store().recordConfigChange?.();
  });

  test('every read of the view sees the state of its first read, while writes through the store go on unblocked', async () => {
    const before = await stateOf(store());
    const answer = await consistent()(async (view) => {
      expect(await stateOf(view)).toEqual(before);
      // One management change touching every table the snapshot reads: a team deleted with its member
      // key revoked, a key re-issued, a provider key re-sealed and paused, settings changed.
      await withinBound(
        'a write',
        (async () => {
          await store().execute('UPDATE conformance_view_notes SET body = ? WHERE id = ?', ['deleted', 'team_view']);
          await store().revokeGatewayKey('gk_view_member', 'acc_view');
          await store().insertGatewayKey(gatewayKey('gk_view_reissued'));
          await store().insertProviderKeys([providerKey('pk_view_2')]);
          await store().updateProviderKeyStatus('pk_view_1', 'paused');
          const resealed = await store().resealProviderKeys?.([
            { id: 'pk_view_1', expectedCiphertext: 'sealed-pk_view_1-v1', ciphertext: 'sealed-pk_view_1-v2', keyVersion: 2, cryptoBackend: 'local' },
          ]);
          if (resealed !== undefined) expect(resealed).toEqual(['pk_view_1']);
          await store().setPlatformSetting('conformance_mode', 'after');
          await store().updateAccountSettings('acc_view', { environment: 'after' });
          await store().insertAccount('acc_view_new', 'New');
          await store().recordConfigChange?.();
        })(),
      );
      // The store itself sees the change at once; the view still sees the state it started on.
      expect((await stateOf(store())).gatewayKeys).toEqual(['gk_view_reissued']);
      expect(await stateOf(view)).toEqual(before);
      return 'answered';
    });
    expect(answer).toBe('answered');
    const after = await stateOf(store());
    expect(after.gatewayKeys).toEqual(['gk_view_reissued']);
    expect(after.notes).toEqual(['team_view:deleted']);
    expect(after.mode).toBe('after');
    expect(after.accounts).toContain('acc_view_new');
    expect(after.providerKeys).toContain(`pk_view_1:paused:${store().resealProviderKeys === undefined ? 'sealed-pk_view_1-v1' : 'sealed-pk_view_1-v2'}`);
    if (before.changeVersion !== undefined) expect(after.changeVersion).toBeGreaterThan(before.changeVersion);
    // A read started after the write sees all of it.
    expect(await consistent()((view) => stateOf(view))).toEqual(after);
  });

  test('a provider key deleted (its old ciphertext reclaimed) while a read is open: the delete completes, the read keeps its state', async () => {
    await store().insertProviderKeys([providerKey('pk_view_deleted')]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let opened: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const reading = consistent()(async (view) => {
      const first = (await view.listActiveProviderKeys()).map((key) => key.id);
      opened();
      await gate;
      return { first, second: (await view.listActiveProviderKeys()).map((key) => key.id) };
    });
    await started;
    // Not awaited inside the read: a reclaim may wait for the read to end, never the other way round.
    const deleting = store().deleteProviderKey('pk_view_deleted', 'account', 'acc_view');
    await Bun.sleep(20);
    release();
    const [read, deleted] = await Promise.all([reading, withinBound('a delete', deleting)]);
    expect(read.second).toEqual(read.first);
    expect(read.first).toContain('pk_view_deleted');
    expect(deleted).toBe(true);
    expect((await store().listActiveProviderKeys()).map((key) => key.id)).not.toContain('pk_view_deleted');
  });

  test('the view is for reading: a write through it is refused and leaves nothing; the store reads and writes on', async () => {
    const refused = await consistent()(async (view) =>
      view.execute('INSERT INTO conformance_view_notes (id, body, score) VALUES (?, ?, ?)', ['through_view', 'x', 1]),
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(Error);
    expect(await store().query('SELECT id FROM conformance_view_notes WHERE id = ?', ['through_view'])).toEqual([]);
    await store().execute('INSERT INTO conformance_view_notes (id, body, score) VALUES (?, ?, ?)', ['after_refusal', 'ok', 1]);
    expect(await consistent()(async (view) => (await view.query('SELECT id FROM conformance_view_notes WHERE id = ?', ['after_refusal'])).length)).toBe(1);
  });

  test("a read that throws rejects with its error and ends the view: the next read sees today's state", async () => {
    await expect(
      consistent()(async (view) => {
        await view.listAccounts();
        throw new Error('the section loader failed');
      }),
    ).rejects.toThrow('the section loader failed');
    await store().setPlatformSetting('conformance_mode', 'after the failure');
    expect(await consistent()(async (view) => (await view.listPlatformSettings()).conformance_mode)).toBe('after the failure');
  });
}
