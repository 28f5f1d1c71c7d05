// An alert rule's targets at rest. A Slack incoming-webhook URL, or a webhook URL with a token in it,
// is its own credential, so the `alerts` row keeps the list only sealed by the crypto backend that
// seals provider keys (`services.secrets`: the same master key, versions and rotation), bound to its
// account and alert. It is opened into memory when the rules load (the snapshot), so judging and
// delivering never decrypt nor read the store for a target. `notify` keeps `[]` beside the sealed list:
// an earlier release reads such a rule as one without targets rather than failing to load every rule.
// A list an earlier release stored in plaintext is read as it is and sealed once, at start.

import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { SealedSecret, Services } from '../../core/spec/services.ts';
import { ruleOf, type AlertRule, type RuleTargets } from './schema.ts';

type Row = Record<string, unknown>;

/** What `notify` holds once the rule's targets are sealed. */
export const SEALED_NOTIFY = '[]';
/** Rows sealed per page by the start's pass: bounded memory on a large table. */
const PAGE = 200;

export const ALERT_TARGETS_HOLDER = 'alerts:alerts';

/** What the sealed list is bound to: copied to another alert or account, it no longer opens. */
export function targetsBinding(accountId: string, alertId: string): string {
  return `alert-targets:${accountId}:${alertId}`;
}

/** The columns a rule's targets are written to. */
export interface SealedTargetColumns {
  notify: string;
  notify_ciphertext: string;
  notify_backend: string;
  notify_key_version: number;
}

interface OpenedTargets extends RuleTargets {
  /** The ciphertext they were opened from; undefined for a plaintext list (or none). */
  sealed?: string;
}

/** The sealed target lists for master-key rotation and the start's check of the versions in use. */
export function alertTargetsHolder(services: Pick<Services, 'store'>): CiphertextHolder {
  return tableCiphertextHolder(services, {
    name: ALERT_TARGETS_HOLDER,
    table: 'alerts',
    idColumn: 'id',
    ciphertextColumn: 'notify_ciphertext',
    backendColumn: 'notify_backend',
    keyVersionColumn: 'notify_key_version',
    bindingColumns: ['account_id'],
    binding: (row) => targetsBinding(String(row.account_id), String(row.id)),
  });
}

/** The plaintext list a row still holds (an earlier release wrote it), or undefined once sealed. */
function plaintextOf(row: Row): string[] | undefined {
  try {
    const parsed = JSON.parse(String(row.notify)) as unknown;
    return Array.isArray(parsed) && parsed.length > 0 ? parsed.filter((target): target is string => typeof target === 'string') : undefined;
  } catch {
    return undefined;
  }
}

function textOrUndefined(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

export class AlertTargets {
  /**
   * Target lists by ciphertext, as sealed or opened by this process: a snapshot reload opens only the
   * lists that changed (with a key service, each opening is a round trip). Rebuilt at every reload.
   */
  private opened = new Map<string, string[]>();

  constructor(private readonly services: Services) {}

  async seal(accountId: string, alertId: string, targets: readonly string[]): Promise<SealedTargetColumns> {
    const sealed: SealedSecret = await this.services.secrets.seal(JSON.stringify(targets), targetsBinding(accountId, alertId));
    this.opened.set(sealed.ciphertext, [...targets]);
    return { notify: SEALED_NOTIFY, notify_ciphertext: sealed.ciphertext, notify_backend: sealed.backend, notify_key_version: sealed.keyVersion };
  }

  /** A stored rule with its targets opened. */
  async rule(row: Row): Promise<AlertRule> {
    return ruleOf(row, await this.open(row));
  }

  /** The snapshot's rules: every list opened, each ciphertext at most once while it stays stored. */
  async rules(rows: readonly Row[]): Promise<AlertRule[]> {
    const opened = await Promise.all(rows.map((row) => this.open(row)));
    // Only the lists stored now stay known: a replaced or deleted one is forgotten.
    this.opened = new Map(opened.flatMap((entry) => (entry.sealed === undefined ? [] : [[entry.sealed, entry.targets] as const])));
    return rows.map((row, index) => ruleOf(row, opened[index] as OpenedTargets));
  }

  /**
   * A row's targets: its plaintext list while it has one (a rule no start has sealed yet, or one an
   * earlier release changed since), else its sealed list opened. A list that does not open (sealed
   * under a master key version this instance lacks, or altered) gives no targets and is logged, so the
   * other rules still load; setting `notify` again (PATCH) stores it anew.
   */
  private async open(row: Row): Promise<OpenedTargets> {
    const plaintext = plaintextOf(row);
    if (plaintext !== undefined) return { targets: plaintext, unreadable: false };
    const ciphertext = textOrUndefined(row.notify_ciphertext);
    const backend = textOrUndefined(row.notify_backend);
    if (ciphertext === undefined || backend === undefined) return { targets: [], unreadable: false };
    const known = this.opened.get(ciphertext);
    if (known !== undefined) return { targets: known, unreadable: false, sealed: ciphertext };
    const alertId = String(row.id);
    try {
      // Not remembered for log redaction as a secret is: the list's JSON never appears whole, and the
      // targets are masked in answers and cut out of delivery errors already.
      const sealer = this.services.secrets;
      const binding = targetsBinding(String(row.account_id), alertId);
      const text =
        sealer.openContent === undefined ? await sealer.open({ ciphertext, backend }, binding) : await sealer.openContent({ ciphertext, backend }, binding);
      return { targets: JSON.parse(text) as string[], unreadable: false, sealed: ciphertext };
    } catch (error) {
      const message = this.services.errors.redact(error instanceof Error ? error.message : String(error));
      this.services.logger.error({ alertId, error: message }, 'the targets of an alert could not be opened: it fires to no one until notify is set again');
      return { targets: [], unreadable: true };
    }
  }

  /**
   * Seals every list still in plaintext (rows from before sealing, or written by an earlier release
   * since), each only if it is still what was read; then has the store drop the plaintext copies
   * from its files (SQLite: WAL checkpoint and VACUUM; PostgreSQL: VACUUM of the table). Answers how many.
   */
  async sealPlaintext(): Promise<number> {
    let sealed = 0;
    let cursor = '';
    for (;;) {
      const rows = await this.services.store.query('SELECT id, account_id, notify FROM alerts WHERE notify <> ? AND id > ? ORDER BY id LIMIT ?', [
        SEALED_NOTIFY,
        cursor,
        PAGE,
      ]);
      for (const row of rows) if (await this.sealRow(row)) sealed += 1;
      if (rows.length < PAGE) break;
      cursor = String(rows.at(-1)?.id);
    }
    if (sealed > 0) {
      this.services.logger.info({ alerts: sealed }, 'alert targets an earlier release stored in plaintext are now sealed by the crypto backend');
      await this.services.store.reclaimReplacedRows?.(['alerts'], { rebuild: true })?.catch((error: unknown) => {
        this.services.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'the plaintext alert targets just sealed are left in the database files until the next WAL checkpoint and VACUUM',
        );
      });
    }
    return sealed;
  }

  private async sealRow(row: Row): Promise<boolean> {
    const targets = plaintextOf(row);
    if (targets === undefined) return false;
    const columns = await this.seal(String(row.account_id), String(row.id), targets);
    const updated = await this.services.store.query(
      'UPDATE alerts SET notify = ?, notify_ciphertext = ?, notify_backend = ?, notify_key_version = ? WHERE id = ? AND notify = ? RETURNING id',
      [columns.notify, columns.notify_ciphertext, columns.notify_backend, columns.notify_key_version, String(row.id), String(row.notify)],
    );
    return updated.length > 0;
  }
}
