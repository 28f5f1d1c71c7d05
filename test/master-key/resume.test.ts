// A rotation interrupted part-way (the process died after some batches) resumes from its stored
// cursor: the batches done are not redone, the counts carry on, and another instance may take it
// over only once its lease has run out.

import { afterEach, describe, expect, test } from 'bun:test';
import {
  MasterKeyRotator,
  ROTATION_LEASE_MS,
  ROTATION_SETTING,
  RotationConflictError,
  parseRotationState,
} from '../../core/credentials/master-key-rotation.ts';
import { providerKeyHolder } from '../../core/credentials/provider-key-holder.ts';
import { ConfigSnapshots, providerKeyBinding } from '../../core/credentials/snapshot.ts';
import { createLogger } from '../../core/logger.ts';
import type { CiphertextHolder, CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { Store } from '../../core/spec/store.ts';
import { createLocalCryptoBackend } from '../../plugins/crypto-local/index.ts';
import { openStorage } from '../../plugins/store-sqlite/database.ts';
import { SqliteStore } from '../../plugins/store-sqlite/store.ts';
import { generateMasterKey, keyringFrom } from '../crypto/helpers.ts';

const logger = createLogger('silent');
const stores: Store[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const ROWS = 25;
const BATCH = 5;

async function seeded(): Promise<{ store: Store; snapshots: ConfigSnapshots; backends: Map<string, CryptoBackend> }> {
  const store = new SqliteStore(await openStorage('file::memory:'));
  stores.push(store);
  await store.migrate([]);
  await store.insertAccount('default', 'default');
  const old = createLocalCryptoBackend(keyringFrom({}, { KEYWAY_MASTER_KEYS: `1:${FIRST}` }));
  const rows = await Promise.all(
    Array.from({ length: ROWS }, async (_, index) => {
      const id = `pk_${String(index).padStart(3, '0')}`;
      return {
        id,
        owner: 'account' as const,
        accountId: 'default',
        provider: 'openai',
        ciphertext: await old.encrypt(`sk-resume-${index}-secret-value`, providerKeyBinding(id, 'account', 'default', 'openai')),
        keyVersion: 1,
        cryptoBackend: 'local',
        maskedKey: 'sk-…',
        fingerprint: `sha256:${index}`,
        organizationId: null,
        settings: {},
        status: 'active',
        weight: 1,
      };
    }),
  );
  await store.insertProviderKeys(rows);
  const snapshots = new ConfigSnapshots(store, undefined);
  await snapshots.refresh();
  const backends = new Map([['local', createLocalCryptoBackend(keyringFrom({}, { KEYWAY_MASTER_KEYS: `1:${FIRST},2:${SECOND}` }))]]);
  return { store, snapshots, backends };
}

/** The provider keys' holder, dying on its `crashOnList`-th read as a killed process would. */
function crashingHolder(holder: CiphertextHolder, crashOnList: number, reads: string[]): CiphertextHolder {
  let lists = 0;
  return {
    name: holder.name,
    list: async (afterId, limit) => {
      reads.push(afterId);
      lists++;
      if (lists === crashOnList) throw new Error('simulated crash');
      return holder.list(afterId, limit);
    },
    replace: (updates) => holder.replace(updates),
  };
}

function rotator(store: Store, backends: Map<string, CryptoBackend>, holder: CiphertextHolder, now?: () => number): MasterKeyRotator {
  return new MasterKeyRotator({ store, backends, activeBackend: 'local', holders: [holder], logger, batchSize: BATCH, pauseMs: 0, now });
}

describe('an interrupted rotation', () => {
  test('resumes from its cursor on another instance after the lease; finished batches are not redone', async () => {
    const { store, snapshots, backends } = await seeded();
    const holder = providerKeyHolder(store, snapshots) as CiphertextHolder;
    const firstReads: string[] = [];
    // A clock that moves a second per reading, so progress is stored after every batch.
    let clock = Date.now();
    const ticking = () => (clock += 1000);
    await expect(rotator(store, backends, crashingHolder(holder, 3, firstReads), ticking).start()).rejects.toThrow('simulated crash');
    const interrupted = parseRotationState((await store.listPlatformSettings())[ROTATION_SETTING]);
    // Two batches of five done: the cursor stands after the tenth row in the store's walk order.
    expect(interrupted).toMatchObject({ status: 'running', cursor: { holder: 'provider_keys', after_id: '10' } });
    expect(interrupted?.counts.rewrapped).toBe(10);
    const versions = (await store.listActiveProviderKeys()).map((row) => row.keyVersion);
    expect(versions.filter((version) => version === 2)).toHaveLength(10);

    // Another instance asking at once is refused: the run may still be alive somewhere.
    await expect(rotator(store, backends, holder).start()).rejects.toBeInstanceOf(RotationConflictError);

    const laterReads: string[] = [];
    const later = () => clock + ROTATION_LEASE_MS + 1000;
    const finished = await rotator(store, backends, crashingHolder(holder, -1, laterReads), later).start();
    expect(laterReads[0]).toBe('10');
    expect(finished).toMatchObject({ id: interrupted?.id, status: 'completed', cursor: null });
    expect(finished.counts).toMatchObject({ rewrapped: ROWS, already_current: 0, failed: 0 });
    const rows = await store.listActiveProviderKeys();
    expect(rows.every((row) => row.keyVersion === 2 && row.ciphertext.startsWith('kw1.local.v2.'))).toBe(true);
    const backend = backends.get('local') as CryptoBackend;
    for (const row of rows) {
      expect(await backend.decrypt(row.ciphertext, providerKeyBinding(row.id, row.owner, row.accountId, row.provider))).toMatch(/^sk-resume-\d+-secret-value$/);
    }
    // The in-memory snapshot was patched as batches landed: it serves the new ciphertexts without a reload.
    expect([...snapshots.current.secrets.values()].every((sealed) => sealed.ciphertext.startsWith('kw1.local.v2.'))).toBe(true);
  });

  test('a row changed between read and write is left alone and counted, not overwritten', async () => {
    const { store, snapshots, backends } = await seeded();
    const holder = providerKeyHolder(store, snapshots) as CiphertextHolder;
    const racing: CiphertextHolder = {
      name: holder.name,
      list: (afterId, limit) => holder.list(afterId, limit),
      replace: async (updates) => {
        // Someone re-seals pk_000 between the read and the write.
        const first = updates.find((update) => update.id === 'pk_000');
        if (first !== undefined) {
          await store.resealProviderKeys?.([
            { id: first.id, expectedCiphertext: first.expectedCiphertext, ciphertext: 'kw1.local.v2.changed.elsewhere', keyVersion: 2, cryptoBackend: 'local' },
          ]);
        }
        return holder.replace(updates);
      },
    };
    const state = await rotator(store, backends, racing).start();
    expect(state.counts).toMatchObject({ rewrapped: ROWS - 1, changed_meanwhile: 1, failed: 0 });
    expect((await store.listActiveProviderKeys()).find((row) => row.id === 'pk_000')?.ciphertext).toBe('kw1.local.v2.changed.elsewhere');
  });

  test('a row that does not open is counted as failed with its id and a reason free of key material; the rest proceed', async () => {
    const { store, snapshots, backends } = await seeded();
    await store.resealProviderKeys?.([
      {
        id: 'pk_004',
        expectedCiphertext: (await store.listActiveProviderKeys()).find((row) => row.id === 'pk_004')?.ciphertext ?? '',
        ciphertext: 'kw1.local.v1.AAAA.BBBB',
        keyVersion: 1,
        cryptoBackend: 'local',
      },
    ]);
    const state = await rotator(store, backends, providerKeyHolder(store, snapshots) as CiphertextHolder).start();
    expect(state.status).toBe('completed_with_failures');
    expect(state.counts).toMatchObject({ rewrapped: ROWS - 1, failed: 1 });
    expect(state.failures).toEqual([{ holder: 'provider_keys', id: 'pk_004', reason: expect.stringContaining('Decryption failed') }]);
    expect(JSON.stringify(state)).not.toContain(FIRST);
    expect(JSON.stringify(state)).not.toContain('secret-value');
  });
});
