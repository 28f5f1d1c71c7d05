// An alert rule's targets at rest, sealed as every notify list is (sealed-lists.ts): the `alerts` row
// keeps the list in `notify_ciphertext`, `notify_backend` and `notify_key_version`, bound to its
// account and alert. It is opened into memory when the rules load (the snapshot), so judging and
// delivering never decrypt nor read the store for a target. `notify` keeps `[]` beside the sealed list:
// an earlier release reads such a rule as one without targets rather than failing to load every rule.
// A list an earlier release stored in plaintext is read as it is and sealed once, at start.

import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { Services } from '../../core/spec/services.ts';
import { ruleOf, type AlertRule } from './schema.ts';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import { SealedLists, type SealedListPlace } from './sealed-lists.ts';

type Row = Record<string, unknown>;

/** What `notify` holds once the rule's targets are sealed. */
export const SEALED_NOTIFY = '[]';

export const ALERT_TARGETS_HOLDER = 'alerts:alerts';

/** What the sealed list is bound to: copied to another alert or account, it no longer opens. */
export function targetsBinding(accountId: string, alertId: string): string {
  return `alert-targets:${accountId}:${alertId}`;
}

const ALERT_TARGETS: SealedListPlace = {
  name: ALERT_TARGETS_HOLDER,
  table: 'alerts',
  idColumn: 'id',
  ciphertextColumn: 'notify_ciphertext',
  backendColumn: 'notify_backend',
  keyVersionColumn: 'notify_key_version',
  bindingColumns: ['account_id'],
  binding: (row) => targetsBinding(String(row.account_id), String(row.id)),
  plaintext: { column: 'notify' },
  what: 'alert targets',
};

/** The columns a rule's targets are written to. */
export interface SealedTargetColumns {
  notify: string;
  notify_ciphertext: string | null;
  notify_backend: string | null;
  notify_key_version: number | null;
}

/** The sealed target lists for master-key rotation and the start's check of the versions in use. */
export function alertTargetsHolder(services: Pick<Services, 'store'>): CiphertextHolder {
  return tableCiphertextHolder(services, ALERT_TARGETS);
}

export class AlertTargets {
  private readonly lists: SealedLists;

  constructor(services: Services) {
    this.lists = new SealedLists(services, ALERT_TARGETS);
  }

  async seal(accountId: string, alertId: string, targets: readonly string[]): Promise<SealedTargetColumns> {
    const sealed = await this.lists.seal({ account_id: accountId, id: alertId }, targets);
    return { notify: SEALED_NOTIFY, notify_ciphertext: sealed.ciphertext, notify_backend: sealed.backend, notify_key_version: sealed.keyVersion };
  }

  /** A stored rule with its targets opened. */
  async rule(row: Row): Promise<AlertRule> {
    return ruleOf(row, await this.lists.open(row));
  }

  /**
   * The snapshot's rules, every list opened (each stored value once while it stays stored). A list
   * that does not open leaves its rule without targets; setting `notify` again (PATCH) stores it anew.
   */
  async rules(rows: readonly Row[]): Promise<AlertRule[]> {
    const opened = await this.lists.openAll(rows);
    return rows.map((row, index) => ruleOf(row, opened[index] ?? { targets: [], unreadable: false }));
  }

  /** Seals the lists an earlier release stored in plaintext and scrubs them from the files; answers how many. */
  sealPlaintext(): Promise<number> {
    return this.lists.sealPlaintext();
  }
}
