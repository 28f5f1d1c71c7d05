// The alerts' tables: the rules (`alerts`) and every firing (`alert_events`). A firing is claimed by
// inserting its (account, alert, type, subject, period) row, which is unique: of two evaluations (or
// two processes, or a process before and after a restart) exactly one delivers it.

import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { Migration, PluginMigrations, Store } from '../../core/spec/store.ts';
import type { AlertRule } from './schema.ts';
import { ruleOf } from './schema.ts';

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

export async function loadRules(store: Store): Promise<AlertRule[]> {
  const rows = await store.query('SELECT id, account_id, type, config, notify, created_at FROM alerts WHERE deleted_at IS NULL ORDER BY created_at, id');
  return rows.map(ruleOf);
}

/** Inserts the firing's event unless that (alert, subject, period) already fired; true when this call claimed it. */
export async function claimFiring(store: Store, id: string, firing: Firing, firedAt: string, deliveries: DeliveryRecord[]): Promise<boolean> {
  const rows = await store.query(
    `INSERT INTO alert_events (id, account_id, alert_id, type, subject, period, message, details, fired_at, status, deliveries)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    ],
  );
  return rows.length === 1;
}

export async function recordDeliveries(store: Store, id: string, deliveries: DeliveryRecord[]): Promise<void> {
  const delivered = deliveries.filter((entry) => entry.ok).length;
  const status = deliveries.length === 0 ? 'no_targets' : delivered === deliveries.length ? 'delivered' : delivered === 0 ? 'failed' : 'partial';
  await store.execute('UPDATE alert_events SET status = ?, deliveries = ? WHERE id = ?', [status, JSON.stringify(deliveries), id]);
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
