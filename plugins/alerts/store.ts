// The alerts' tables: the rules (`alerts`) and every firing (`alert_events`). A firing is claimed by
// inserting its (account, alert, type, subject, period) row, which is unique: of two evaluations (or
// two processes, or a process before and after a restart) exactly one delivers it.

import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { Migration, PluginMigrations, Store } from '../../core/spec/store.ts';
import type { AlertRule } from './schema.ts';
import type { AlertTargets } from './targets.ts';

const SQLITE_ALERTS_MIGRATIONS: Migration[] = [
  {
    id: '0001_alerts',
    statements: [
      `CREATE TABLE alerts (
          id TEXT PRIMARY KEY,
          account_id TEXT NOT NULL,
          type TEXT NOT NULL,
          config TEXT NOT NULL,
          notify TEXT NOT NULL,
          created_at TEXT NOT NULL,
          created_by TEXT NOT NULL,
          deleted_at TEXT
        )`,
      'CREATE INDEX alerts_account ON alerts (account_id, deleted_at)',
      `CREATE TABLE alert_events (
          id TEXT PRIMARY KEY,
          account_id TEXT NOT NULL,
          alert_id TEXT NOT NULL,
          type TEXT NOT NULL,
          subject TEXT NOT NULL,
          period TEXT NOT NULL,
          message TEXT NOT NULL,
          details TEXT NOT NULL,
          fired_at TEXT NOT NULL,
          status TEXT NOT NULL,
          deliveries TEXT NOT NULL,
          UNIQUE (account_id, alert_id, type, subject, period)
        )`,
      'CREATE INDEX alert_events_account ON alert_events (account_id, fired_at)',
    ],
  },
  {
    // `owner`: the cluster member delivering an event, so a later start (or the alert job) can tell a
    // delivery a crash left `delivering` from one a live process is still retrying (deliver.ts,
    // `recoverInterrupted`); the partial index finds those rows without reading the history.
    // `updated_at`: when PATCH /v1/alerts/{id} last changed a rule.
    id: '0002_delivery_owner',
    statements: [
      'ALTER TABLE alert_events ADD COLUMN owner TEXT',
      "CREATE INDEX alert_events_delivering ON alert_events (status) WHERE status = 'delivering'",
      'ALTER TABLE alerts ADD COLUMN updated_at TEXT',
    ],
  },
  {
    // A rule's targets sealed by the crypto backend (targets.ts); `notify` keeps `[]` beside them. The
    // lists stored in plaintext before are sealed by the first start after this migration.
    id: '0003_sealed_targets',
    statements: [
      'ALTER TABLE alerts ADD COLUMN notify_ciphertext TEXT',
      'ALTER TABLE alerts ADD COLUMN notify_backend TEXT',
      'ALTER TABLE alerts ADD COLUMN notify_key_version INTEGER',
    ],
  },
];

export const ALERTS_MIGRATIONS: PluginMigrations = { sqlite: SQLITE_ALERTS_MIGRATIONS, postgres: postgresMigrationsFromSqlite(SQLITE_ALERTS_MIGRATIONS) };

export interface DeliveryRecord {
  /** The target as answers show it: e-mail addresses whole, URLs masked (they can hold tokens). */
  target: string;
  channel: string | null;
  attempts: number;
  ok: boolean;
  error?: string;
  delivered_at?: string;
  /** Set while the target is still to be tried (first try: the firing's time): its result is not final yet. */
  next_attempt_at?: string;
}

export interface Firing {
  accountId: string;
  /** The rule that fired, or '' for an alert raised by another plugin with no rule of its own. */
  alertId: string;
  type: string;
  subject: string;
  period: string;
  message: string;
  details: Record<string, unknown>;
  targets: string[];
}

export interface StoredEvent {
  id: string;
  alert_id: string | null;
  type: string;
  subject: string;
  period: string;
  message: string;
  details: Record<string, unknown>;
  fired_at: string;
  status: string;
  deliveries: DeliveryRecord[];
}

/** The columns a rule is read from (schema.ts, `ruleOf`; its targets: targets.ts). */
export const RULE_COLUMNS = 'id, account_id, type, config, notify, notify_ciphertext, notify_backend, created_at, updated_at';

export async function loadRules(store: Store, targets: Pick<AlertTargets, 'rules'>): Promise<AlertRule[]> {
  return targets.rules(await store.query(`SELECT ${RULE_COLUMNS} FROM alerts WHERE deleted_at IS NULL ORDER BY created_at, id`));
}

/**
 * Inserts the firing's event unless that (alert, subject, period) already fired; true when this call
 * claimed it. `owner` is the cluster member that delivers it.
 */
export async function claimFiring(store: Store, id: string, firing: Firing, firedAt: string, deliveries: DeliveryRecord[], owner: string): Promise<boolean> {
  const rows = await store.query(
    `INSERT INTO alert_events (id, account_id, alert_id, type, subject, period, message, details, fired_at, status, deliveries, owner)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (account_id, alert_id, type, subject, period) DO NOTHING RETURNING id`,
    [
      id,
      firing.accountId,
      firing.alertId,
      firing.type,
      firing.subject,
      firing.period,
      firing.message,
      JSON.stringify(firing.details),
      firedAt,
      firing.targets.length === 0 ? 'no_targets' : 'delivering',
      JSON.stringify(deliveries),
      owner,
    ],
  );
  return rows.length === 1;
}

/** Whether a target's result is final: delivered, or failed with no try left to make. */
export function isFinal(delivery: DeliveryRecord): boolean {
  return delivery.ok || delivery.next_attempt_at === undefined;
}

/** The event's status: `delivering` while any target is still to be tried, else what its final results add up to. */
export function statusOf(deliveries: readonly DeliveryRecord[]): string {
  if (deliveries.length === 0) return 'no_targets';
  if (!deliveries.every(isFinal)) return 'delivering';
  const delivered = deliveries.filter((entry) => entry.ok).length;
  return delivered === deliveries.length ? 'delivered' : delivered === 0 ? 'failed' : 'partial';
}

/** Writes every target's result as it stands (written after each try, so the event shows each target's progress). */
export async function recordDeliveries(store: Store, id: string, deliveries: readonly DeliveryRecord[]): Promise<void> {
  await store.execute('UPDATE alert_events SET status = ?, deliveries = ? WHERE id = ?', [statusOf(deliveries), JSON.stringify(deliveries), id]);
}

/** Events some process was still delivering, with who: read by the recovery pass (deliver.ts). */
export async function deliveringEvents(store: Store): Promise<Array<{ id: string; owner: string | null; deliveries: DeliveryRecord[] }>> {
  const rows = await store.query("SELECT id, owner, deliveries FROM alert_events WHERE status = 'delivering'");
  return rows.map((row) => ({
    id: String(row.id),
    owner: row.owner === null || row.owner === undefined ? null : String(row.owner),
    deliveries: JSON.parse(String(row.deliveries)) as DeliveryRecord[],
  }));
}

/** Writes the final results of an event no live process delivers any more, unless its owner finished it meanwhile. */
export async function closeInterrupted(store: Store, id: string, deliveries: readonly DeliveryRecord[]): Promise<boolean> {
  const rows = await store.query("UPDATE alert_events SET status = ?, deliveries = ? WHERE id = ? AND status = 'delivering' RETURNING id", [
    statusOf(deliveries),
    JSON.stringify(deliveries),
    id,
  ]);
  return rows.length === 1;
}

export function eventOf(row: Record<string, unknown>): StoredEvent {
  return {
    id: String(row.id),
    alert_id: row.alert_id === '' ? null : String(row.alert_id),
    type: String(row.type),
    subject: String(row.subject),
    period: String(row.period),
    message: String(row.message),
    details: JSON.parse(String(row.details)) as Record<string, unknown>,
    fired_at: String(row.fired_at),
    status: String(row.status),
    deliveries: JSON.parse(String(row.deliveries)) as DeliveryRecord[],
  };
}
