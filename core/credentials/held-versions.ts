// Which backends and key versions the registered ciphertext holders still need (stored Responses, the
// webhook secrets, the reconciliation admin keys, any plugin's own table), for the start's check for
// a removed master key version and the status of lost ones. Counted through the holder contract only,
// so a holder a plugin registers is covered without the core knowing it, and counted cheaply: by
// version in the database where the holder can (`countByVersion`), never by decrypting.

import type { Logger } from '../logger.ts';
import { addHeldCount } from '../spec/ciphertext-table.ts';
import type { CiphertextHolder, CiphertextVersionReader, CryptoBackend, HeldCiphertext, HeldVersionCount } from '../spec/crypto-backend.ts';
import type { Store } from '../spec/store.ts';

const LISTING_PAGE = 200;

export interface HolderVersionCount extends HeldVersionCount {
  holder: string;
}

function versionReader(backends: ReadonlyMap<string, CryptoBackend>): CiphertextVersionReader {
  return (backend, ciphertext) => backends.get(backend)?.keyVersionOf?.(ciphertext);
}

/** Whether a master key version must still open this value. */
const stillNeeded = (item: HeldCiphertext): boolean => item.noCiphertext !== true && item.needsReentry !== true && item.retired !== true;

/** The fallback for a holder without `countByVersion`: every value read through `list`, none decrypted. */
async function countByListing(holder: CiphertextHolder, versionOf: CiphertextVersionReader): Promise<HeldVersionCount[]> {
  const tally = new Map<string, HeldVersionCount>();
  let cursor = '';
  for (;;) {
    const items = await holder.list(cursor, LISTING_PAGE);
    if (items.length === 0) return [...tally.values()];
    for (const item of items.filter(stillNeeded)) addHeldCount(tally, item.backend, versionOf(item.backend, item.ciphertext) ?? item.keyVersion, 1);
    const lastItem = items.at(-1) as HeldCiphertext;
    cursor = lastItem.cursor ?? lastItem.id;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Every holder's counts by backend and version. A holder that counts itself and fails is a real
 * failure, except before the migrations: its table may not exist yet, and the check after them counts
 * it. A holder counted through `list` may read `services.store`, which does not exist yet at start:
 * it is then left out with a warning rather than failing every start.
 */
export async function countHolderVersions(
  holders: readonly CiphertextHolder[],
  store: Pick<Store, 'query'>,
  backends: ReadonlyMap<string, CryptoBackend>,
  logger: Logger,
  options: { beforeMigrations: boolean },
): Promise<HolderVersionCount[]> {
  const versionOf = versionReader(backends);
  const counts: HolderVersionCount[] = [];
  for (const holder of holders) {
    let held: HeldVersionCount[];
    try {
      held = holder.countByVersion === undefined ? await countByListing(holder, versionOf) : await holder.countByVersion(store, versionOf);
    } catch (error) {
      if (options.beforeMigrations) continue;
      if (holder.countByVersion !== undefined) throw error;
      logger.warn(
        { holder: holder.name, error: errorText(error) },
        'ciphertext holder could not be listed, so the master key versions its values need are not checked; give it countByVersion (tableCiphertextHolder does)',
      );
      continue;
    }
    for (const count of held) if (count.count > 0) counts.push({ holder: holder.name, ...count });
  }
  return counts;
}

/**
 * Once the start check passed: holders that count themselves store the versions they had to read from
 * ciphertexts (rows from before a key-version column), so later starts count them without reading.
 * Separate from the check, so a refused start writes nothing; otherwise it is one more GROUP BY each.
 */
export async function recordHolderVersions(
  holders: readonly CiphertextHolder[],
  store: Pick<Store, 'query'>,
  backends: ReadonlyMap<string, CryptoBackend>,
): Promise<void> {
  const versionOf = versionReader(backends);
  for (const holder of holders) await holder.countByVersion?.(store, versionOf, { record: true });
}
