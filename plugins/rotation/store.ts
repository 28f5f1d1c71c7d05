// The rotation plugin's tables: rotations (one row per rotation, the state every instance decides
// from with its clock) and schedules (claimed per run by a conditional update of next_run_at).

import type { KeyReference } from '../../core/spec/key-source.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { Migration, Store } from '../../core/spec/store.ts';
import type { OpenedList } from '../alerts/sealed-lists.ts';
import type { RotationWebhooks } from './webhooks.ts';

const SQLITE_ROTATION_MIGRATIONS: Migration[] = [
  {
    id: '0001_key_rotations',
    statements: [
      `CREATE TABLE key_rotations (
          id TEXT PRIMARY KEY,
          account_id TEXT,
          owner TEXT NOT NULL,
          provider TEXT NOT NULL,
          old_key_id TEXT NOT NULL,
          new_key_id TEXT NOT NULL,
          strategy TEXT NOT NULL,
          grace_period_minutes REAL NOT NULL,
          started_at INTEGER NOT NULL,
          expires_at INTEGER NOT NULL,
          status TEXT NOT NULL,
          completed_at INTEGER,
          tested INTEGER NOT NULL,
          notification_webhooks TEXT NOT NULL,
          schedule_id TEXT,
          source_reference TEXT,
          source_version TEXT,
          created_by TEXT NOT NULL
        )`,
      'CREATE INDEX key_rotations_status ON key_rotations (status, expires_at)',
      // One rotation in progress per old key, even for two requests racing (or two instances).
      "CREATE UNIQUE INDEX key_rotations_one_per_key ON key_rotations (old_key_id) WHERE status = 'in_progress'",
      `CREATE TABLE key_rotation_schedules (
          id TEXT PRIMARY KEY,
          account_id TEXT NOT NULL,
          provider TEXT NOT NULL,
          key_id TEXT,
          schedule TEXT NOT NULL,
          timezone TEXT NOT NULL,
          notification_email TEXT,
          key_source TEXT,
          options TEXT NOT NULL,
          next_run_at INTEGER NOT NULL,
          last_run_at INTEGER,
          last_status TEXT,
          last_error TEXT,
          created_at INTEGER NOT NULL,
          deleted_at INTEGER
        )`,
      'CREATE INDEX key_rotation_schedules_due ON key_rotation_schedules (deleted_at, next_run_at)',
    ],
  },
  {
    // `notification_webhooks` sealed by the crypto backend (webhooks.ts): a rotation's column keeps `[]`,
    // a schedule's `options` no longer holds them. Lists stored in plaintext before are sealed at the first start after it.
    id: '0002_sealed_webhooks',
    statements: [
      'ALTER TABLE key_rotations ADD COLUMN webhooks_ciphertext TEXT',
      'ALTER TABLE key_rotations ADD COLUMN webhooks_backend TEXT',
      'ALTER TABLE key_rotations ADD COLUMN webhooks_key_version INTEGER',
      'ALTER TABLE key_rotation_schedules ADD COLUMN webhooks_ciphertext TEXT',
      'ALTER TABLE key_rotation_schedules ADD COLUMN webhooks_backend TEXT',
      'ALTER TABLE key_rotation_schedules ADD COLUMN webhooks_key_version INTEGER',
    ],
  },
];

export const ROTATION_MIGRATIONS = { sqlite: SQLITE_ROTATION_MIGRATIONS, postgres: postgresMigrationsFromSqlite(SQLITE_ROTATION_MIGRATIONS) };

export type RotationStrategy = 'immediate' | 'gradual';

export interface RotationRow {
  id: string;
  accountId: string | null;
  owner: 'account' | 'platform';
  provider: string;
  oldKeyId: string;
  newKeyId: string;
  strategy: RotationStrategy;
  gracePeriodMinutes: number;
  startedAt: number;
  expiresAt: number;
  status: 'in_progress' | 'completed';
  completedAt: number | null;
  tested: boolean;
  /** Opened from their sealed list (webhooks.ts); none when it did not open (logged). */
  notificationWebhooks: string[];
  scheduleId: string | null;
  sourceReference: KeyReference | null;
  sourceVersion: string | null;
  createdBy: string;
}

export interface RotationOptions {
  rotation_strategy?: RotationStrategy;
  grace_period_minutes?: number;
  test_before_switch?: boolean;
  notification_webhooks?: string[];
}

export interface ScheduleRow {
  id: string;
  accountId: string;
  provider: string;
  keyId: string | null;
  schedule: string;
  timezone: string;
  notificationEmail: string | null;
  keySource: KeyReference | null;
  options: RotationOptions;
  nextRunAt: number;
  lastRunAt: number | null;
  lastStatus: string | null;
  lastError: string | null;
  createdAt: number;
}

function parseJson<Value>(text: unknown, fallback: Value): Value {
  if (typeof text !== 'string') return fallback;
  try {
    return JSON.parse(text) as Value;
  } catch {
    return fallback;
  }
}

const numberOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const textOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

function toRotation(row: Record<string, unknown>, webhooks: OpenedList): RotationRow {
  return {
    id: String(row.id),
    accountId: textOrNull(row.account_id),
    owner: row.owner === 'platform' ? 'platform' : 'account',
    provider: String(row.provider),
    oldKeyId: String(row.old_key_id),
    newKeyId: String(row.new_key_id),
    strategy: row.strategy === 'gradual' ? 'gradual' : 'immediate',
    gracePeriodMinutes: Number(row.grace_period_minutes),
    startedAt: Number(row.started_at),
    expiresAt: Number(row.expires_at),
    status: row.status === 'completed' ? 'completed' : 'in_progress',
    completedAt: numberOrNull(row.completed_at),
    tested: Number(row.tested) === 1,
    notificationWebhooks: webhooks.targets,
    scheduleId: textOrNull(row.schedule_id),
    sourceReference: parseJson<KeyReference | null>(row.source_reference, null),
    sourceVersion: textOrNull(row.source_version),
    createdBy: String(row.created_by),
  };
}

/** The rotation rows with their webhooks opened. */
async function rotationsFrom(rows: Array<Record<string, unknown>>, webhooks: RotationWebhooks): Promise<RotationRow[]> {
  const opened = await webhooks.ofRotations(rows);
  return rows.map((row, index) => toRotation(row, opened[index] ?? { targets: [], unreadable: false }));
}

export async function insertRotation(store: Store, webhooks: RotationWebhooks, rotation: RotationRow): Promise<void> {
  const sealed = await webhooks.sealRotation(rotation, rotation.notificationWebhooks);
  await store.execute(
    `INSERT INTO key_rotations (id, account_id, owner, provider, old_key_id, new_key_id, strategy, grace_period_minutes, started_at, expires_at,
       status, completed_at, tested, notification_webhooks, schedule_id, source_reference, source_version, created_by,
       webhooks_ciphertext, webhooks_backend, webhooks_key_version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      rotation.id,
      rotation.accountId,
      rotation.owner,
      rotation.provider,
      rotation.oldKeyId,
      rotation.newKeyId,
      rotation.strategy,
      rotation.gracePeriodMinutes,
      rotation.startedAt,
      rotation.expiresAt,
      rotation.status,
      rotation.completedAt,
      rotation.tested ? 1 : 0,
      '[]',
      rotation.scheduleId,
      rotation.sourceReference === null ? null : JSON.stringify(rotation.sourceReference),
      rotation.sourceVersion,
      rotation.createdBy,
      sealed.ciphertext,
      sealed.backend,
      sealed.keyVersion,
    ],
  );
}

export async function rotationsInProgress(store: Store, webhooks: RotationWebhooks): Promise<RotationRow[]> {
  return rotationsFrom(await store.query("SELECT * FROM key_rotations WHERE status = 'in_progress' ORDER BY started_at"), webhooks);
}

/** An account's rotations, or the operator's platform-key rotations with `null`; newest first. */
export async function rotationsOf(store: Store, webhooks: RotationWebhooks, accountId: string | null, limit = 100): Promise<RotationRow[]> {
  const rows =
    accountId === null
      ? await store.query("SELECT * FROM key_rotations WHERE owner = 'platform' ORDER BY started_at DESC LIMIT ?", [limit])
      : await store.query("SELECT * FROM key_rotations WHERE account_id = ? AND owner = 'account' ORDER BY started_at DESC LIMIT ?", [accountId, limit]);
  return rotationsFrom(rows, webhooks);
}

export async function rotationById(store: Store, webhooks: RotationWebhooks, id: string): Promise<RotationRow | undefined> {
  return (await rotationsFrom(await store.query('SELECT * FROM key_rotations WHERE id = ?', [id]), webhooks))[0];
}

/** Marks a rotation completed; true only for the one caller (of any instance) whose update changed it. */
export async function claimCompletion(store: Store, id: string, now: number): Promise<boolean> {
  const rows = await store.query("UPDATE key_rotations SET status = 'completed', completed_at = ? WHERE id = ? AND status = 'in_progress' RETURNING id", [
    now,
    id,
  ]);
  return rows.length === 1;
}

function toSchedule(row: Record<string, unknown>, webhooks: OpenedList): ScheduleRow {
  const options = parseJson<RotationOptions>(row.options, {});
  // In memory as the route built them: absent when there are none.
  const { notification_webhooks: _plaintext, ...unsealed } = options;
  return {
    id: String(row.id),
    accountId: String(row.account_id),
    provider: String(row.provider),
    keyId: textOrNull(row.key_id),
    schedule: String(row.schedule),
    timezone: String(row.timezone),
    notificationEmail: textOrNull(row.notification_email),
    keySource: parseJson<KeyReference | null>(row.key_source, null),
    options: webhooks.targets.length === 0 ? unsealed : { ...unsealed, notification_webhooks: webhooks.targets },
    nextRunAt: Number(row.next_run_at),
    lastRunAt: numberOrNull(row.last_run_at),
    lastStatus: textOrNull(row.last_status),
    lastError: textOrNull(row.last_error),
    createdAt: Number(row.created_at),
  };
}

async function schedulesFrom(rows: Array<Record<string, unknown>>, webhooks: RotationWebhooks): Promise<ScheduleRow[]> {
  const opened = await webhooks.ofSchedules(rows);
  return rows.map((row, index) => toSchedule(row, opened[index] ?? { targets: [], unreadable: false }));
}

export async function insertSchedule(store: Store, webhooks: RotationWebhooks, schedule: ScheduleRow): Promise<void> {
  const { notification_webhooks: notificationWebhooks, ...options } = schedule.options;
  const sealed = await webhooks.sealSchedule(schedule, notificationWebhooks ?? []);
  await store.execute(
    `INSERT INTO key_rotation_schedules (id, account_id, provider, key_id, schedule, timezone, notification_email, key_source, options, next_run_at,
       last_run_at, last_status, last_error, created_at, webhooks_ciphertext, webhooks_backend, webhooks_key_version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      schedule.id,
      schedule.accountId,
      schedule.provider,
      schedule.keyId,
      schedule.schedule,
      schedule.timezone,
      schedule.notificationEmail,
      schedule.keySource === null ? null : JSON.stringify(schedule.keySource),
      JSON.stringify(options),
      schedule.nextRunAt,
      schedule.lastRunAt,
      schedule.lastStatus,
      schedule.lastError,
      schedule.createdAt,
      sealed.ciphertext,
      sealed.backend,
      sealed.keyVersion,
    ],
  );
}

export async function schedulesOf(store: Store, webhooks: RotationWebhooks, accountId: string): Promise<ScheduleRow[]> {
  return schedulesFrom(
    await store.query('SELECT * FROM key_rotation_schedules WHERE account_id = ? AND deleted_at IS NULL ORDER BY created_at', [accountId]),
    webhooks,
  );
}

export async function scheduleById(store: Store, webhooks: RotationWebhooks, id: string, accountId: string): Promise<ScheduleRow | undefined> {
  const rows = await store.query('SELECT * FROM key_rotation_schedules WHERE id = ? AND account_id = ? AND deleted_at IS NULL', [id, accountId]);
  return (await schedulesFrom(rows, webhooks))[0];
}

export async function deleteSchedule(store: Store, id: string, accountId: string, now: number): Promise<boolean> {
  const rows = await store.query('UPDATE key_rotation_schedules SET deleted_at = ? WHERE id = ? AND account_id = ? AND deleted_at IS NULL RETURNING id', [
    now,
    id,
    accountId,
  ]);
  return rows.length === 1;
}

export async function dueSchedules(store: Store, webhooks: RotationWebhooks, now: number): Promise<ScheduleRow[]> {
  return schedulesFrom(
    await store.query('SELECT * FROM key_rotation_schedules WHERE deleted_at IS NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT 100', [now]),
    webhooks,
  );
}

/**
 * Claims one due run: moves next_run_at on only if it still holds the value this instance read.
 * Of two instances reading the same due schedule, exactly one update changes a row.
 */
export async function claimRun(store: Store, schedule: ScheduleRow, nextRunAt: number, now: number): Promise<boolean> {
  const rows = await store.query(
    'UPDATE key_rotation_schedules SET next_run_at = ?, last_run_at = ? WHERE id = ? AND next_run_at = ? AND deleted_at IS NULL RETURNING id',
    [nextRunAt, now, schedule.id, schedule.nextRunAt],
  );
  return rows.length === 1;
}

export async function recordRun(store: Store, id: string, status: string, error: string | null): Promise<void> {
  await store.execute('UPDATE key_rotation_schedules SET last_status = ?, last_error = ? WHERE id = ?', [status, error, id]);
}
