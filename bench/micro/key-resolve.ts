import { do_not_optimize, group } from 'mitata';
import { decryptEnvelope } from '../../plugins/crypto-local/envelope.ts';
import { BENCH_ACCOUNT_ID } from './fixtures/repository-rows.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark } from './registry.ts';

/** The provider keys of the account, then the decrypted credential: cached, and on a miss. */
export function registerKeyResolveBenches(world: BenchWorld): void {
  const record = world.accountKeys('openai')[0];
  if (record === undefined) throw new Error('the bench account has no OpenAI key');
  const sealed = world.snapshots.current.secrets.get(record.id);
  if (sealed === undefined) throw new Error(`no ciphertext for ${record.id}`);

  group('key resolve', () => {
    benchmark('key resolve: keysFor + credential (cache hit)', () => {
      const keys = world.snapshots.keysFor(BENCH_ACCOUNT_ID);
      const first = keys.account.get('openai')?.[0] ?? record;
      return do_not_optimize(world.vault.credential(first));
    });
    // forget() first so every call takes the miss path: envelope decrypt plus the vault's bookkeeping.
    benchmark('key resolve: credential cache miss (vault + AES-256-GCM)', async () => {
      world.vault.forget(record.id);
      do_not_optimize(await world.vault.credential(record));
    });
    benchmark('key resolve: decryptEnvelope alone', () => do_not_optimize(decryptEnvelope(sealed.ciphertext, sealed.binding, world.keyring)));
  });
}
