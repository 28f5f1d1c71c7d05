// The compliance block's `notify` list at rest, sealed as alert rules' targets are
// (../alerts/sealed-lists.ts): kept in `compliance_targets`, one row per account, bound to it; the
// block in the account's settings holds the rest. Opened when the snapshot loads, so the block is
// still read synchronously from memory on every request. An earlier release kept the list in the
// settings JSON: it is read from there while it is, and sealed once, at start.

import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { JobDefinition, SnapshotSection } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { dropPlaintextCopies, SealedLists, targetListOf, untilDone, type SealedListPlace } from '../alerts/sealed-lists.ts';
import { COMPLIANCE_SETTING } from './schema.ts';

export const COMPLIANCE_TARGETS_SECTION = 'compliance-targets';

/** Account id → its opened targets (accounts with none are absent). */
export type ComplianceTargetsSection = ReadonlyMap<string, readonly string[]>;

const COMPLIANCE_TARGETS: SealedListPlace = {
  name: 'audit:compliance_targets',
  table: 'compliance_targets',
  idColumn: 'account_id',
  ciphertextColumn: 'notify_ciphertext',
  backendColumn: 'notify_backend',
  keyVersionColumn: 'notify_key_version',
  bindingColumns: [],
  binding: (row) => `compliance-targets:${String(row.account_id)}`,
  what: 'compliance notify targets',
};

function blockOf(settings: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const block = settings[COMPLIANCE_SETTING];
  return block !== null && typeof block === 'object' && !Array.isArray(block) ? (block as Record<string, unknown>) : undefined;
}

export class ComplianceTargets {
  private readonly lists: SealedLists;

  constructor(private readonly services: Services) {
    this.lists = new SealedLists(services, COMPLIANCE_TARGETS);
  }

  holder(): CiphertextHolder {
    return this.lists.holder();
  }

  /** Every account's list, opened (each stored value once while it stays stored). */
  section(): SnapshotSection {
    return {
      name: COMPLIANCE_TARGETS_SECTION,
      load: async (store): Promise<ComplianceTargetsSection> => {
        const rows = await store.query('SELECT account_id, notify_ciphertext, notify_backend FROM compliance_targets');
        const opened = await this.lists.openAll(rows);
        return new Map(rows.map((row, index) => [String(row.account_id), opened[index]?.targets ?? []]));
      },
    };
  }

  /** The account's sealed targets as the snapshot opened them; undefined when it has none. */
  of(accountId: string): readonly string[] | undefined {
    return this.services.snapshot.section<ComplianceTargetsSection>(COMPLIANCE_TARGETS_SECTION)?.get(accountId);
  }

  /** Seals and stores the account's list (an empty one removes its row). */
  async write(accountId: string, targets: readonly string[]): Promise<void> {
    const sealed = await this.lists.seal({ account_id: accountId }, targets);
    if (sealed.ciphertext === null) {
      await this.services.store.execute('DELETE FROM compliance_targets WHERE account_id = ?', [accountId]);
      return;
    }
    await this.services.store.execute(
      `INSERT INTO compliance_targets (account_id, notify_ciphertext, notify_backend, notify_key_version, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET notify_ciphertext = excluded.notify_ciphertext, notify_backend = excluded.notify_backend,
         notify_key_version = excluded.notify_key_version, updated_at = excluded.updated_at`,
      [accountId, sealed.ciphertext, sealed.backend, sealed.keyVersion, new Date(this.services.clock.now()).toISOString()],
    );
  }

  /**
   * Seals every block's list an earlier release kept in the settings JSON, removes it from there, and
   * drops the plaintext copies from the store's files. Answers how many.
   */
  async sealPlaintext(): Promise<number> {
    let sealed = 0;
    for (const account of await this.services.store.listAccounts()) {
      const block = blockOf(account.settings);
      const targets = targetListOf(block?.notify);
      if (block === undefined || targets === undefined) continue;
      await this.write(account.id, targets);
      const { notify: _sealed, ...rest } = block;
      await this.services.store.updateAccountSettings(account.id, { ...account.settings, [COMPLIANCE_SETTING]: rest });
      sealed += 1;
    }
    if (sealed === 0) return 0;
    await dropPlaintextCopies(this.services, ['accounts', 'compliance_targets'], COMPLIANCE_TARGETS.what, sealed);
    await this.services.snapshot.refresh();
    return sealed;
  }

  /** Once per process, a second after the start: the lists kept in plaintext are sealed. */
  startJob(): JobDefinition {
    return { name: 'audit-seal-compliance-targets', intervalMs: 1_000, run: untilDone(async () => void (await this.sealPlaintext())) };
  }
}
