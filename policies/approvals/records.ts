// The approvals table: its rows, how a row reads (ApprovalView), its migrations, and the hash that
// binds an approval to one request body. Shared by the request path (index.ts: judge, redeem) and
// the admin routes (list, decide), which read and write the same rows.

import { createHash } from 'node:crypto';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Migration } from '../../core/spec/store.ts';

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'used', 'expired', 'cancelled'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** Why an approval was cancelled: its team was deleted (by the key in `decided_by`, at `decided_at`). */
export const TEAM_DELETED = 'team_deleted';

/** Every column, in the order ApprovalView reads them. */
export const APPROVAL_COLUMNS =
  'id, account_id, team_id, gateway_key_id, body_hash, provider, model, worst_case_usd, status, reason, created_at, expires_at, decided_by, decided_at, used_at';

export interface ApprovalView {
  id: string;
  account_id: string;
  team_id: string;
  gateway_key_id: string;
  body_hash: string;
  provider: string;
  model: string;
  worst_case_usd: number;
  status: ApprovalStatus;
  /** Why a cancelled approval was (`team_deleted`); null for every other status. */
  reason: string | null;
  created_at: string;
  expires_at: string;
  decided_by: string | null;
  decided_at: string | null;
  used_at: string | null;
}

export function viewOf(row: Record<string, unknown>, now: string): ApprovalView {
  const status = String(row.status) as ApprovalStatus;
  const expiresAt = String(row.expires_at);
  return {
    id: String(row.id),
    account_id: String(row.account_id),
    team_id: String(row.team_id),
    gateway_key_id: String(row.gateway_key_id),
    body_hash: String(row.body_hash),
    provider: String(row.provider),
    model: String(row.model),
    worst_case_usd: Number(row.worst_case_usd),
    // A pending or approved approval past its expiry reads as expired, whether or not a sweep wrote it yet.
    status: (status === 'pending' || status === 'approved') && expiresAt <= now ? 'expired' : status,
    reason: row.reason === null || row.reason === undefined ? null : String(row.reason),
    created_at: String(row.created_at),
    expires_at: expiresAt,
    decided_by: row.decided_by === null || row.decided_by === undefined ? null : String(row.decided_by),
    decided_at: row.decided_at === null || row.decided_at === undefined ? null : String(row.decided_at),
    used_at: row.used_at === null || row.used_at === undefined ? null : String(row.used_at),
  };
}

/** JSON with object keys sorted and undefined dropped: the same request always hashes the same. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : stableJson(item))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableJson(item)}`).join(',')}}`;
}

/**
 * How the answer is delivered, not what is asked: the same request streamed or not costs the same, so
 * an approval given for one serves the other.
 */
const DELIVERY_FIELDS: ReadonlySet<string> = new Set(['stream', 'stream_options']);

/** SHA-256 of the canonical request body (model, messages, tools, max_tokens… everything the client sent but how it is delivered). */
export function bodyHash(request: RequestContext['request']): string {
  const asked: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(request)) if (!DELIVERY_FIELDS.has(field)) asked[field] = value;
  return createHash('sha256').update(stableJson(asked)).digest('hex');
}

export const APPROVAL_MIGRATIONS: Migration[] = [
  {
    id: '0001_approvals',
    statements: [
      `CREATE TABLE approvals (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                team_id TEXT NOT NULL,
                gateway_key_id TEXT NOT NULL,
                body_hash TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                worst_case_usd REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used', 'expired')),
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                decided_by TEXT,
                decided_at TEXT,
                used_at TEXT
              )`,
      'CREATE INDEX approvals_account_status ON approvals (account_id, status, created_at)',
    ],
  },
  {
    // `cancelled` (with its `reason`): a deleted team's pending approvals close with it. The status
    // CHECK changes, which SQLite alters only by building the table again; PostgreSQL runs the same.
    id: '0002_cancelled',
    statements: [
      `CREATE TABLE approvals_0002 (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                team_id TEXT NOT NULL,
                gateway_key_id TEXT NOT NULL,
                body_hash TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                worst_case_usd REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used', 'expired', 'cancelled')),
                reason TEXT,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                decided_by TEXT,
                decided_at TEXT,
                used_at TEXT
              )`,
      `INSERT INTO approvals_0002 (id, account_id, team_id, gateway_key_id, body_hash, provider, model, worst_case_usd, status, created_at, expires_at, decided_by, decided_at, used_at)
              SELECT id, account_id, team_id, gateway_key_id, body_hash, provider, model, worst_case_usd, status, created_at, expires_at, decided_by, decided_at, used_at FROM approvals`,
      'DROP TABLE approvals',
      'ALTER TABLE approvals_0002 RENAME TO approvals',
      'CREATE INDEX approvals_account_status ON approvals (account_id, status, created_at)',
    ],
  },
  {
    // One pending approval per key's request (account, team, key, body, provider, model): identical
    // requests arriving at once, in one process, in several workers or on several instances, each
    // found none pending and each stored (and paged) its own (QA18). The store now keeps it unique;
    // createPending inserts `ON CONFLICT DO NOTHING` and answers the one stored. A database written
    // before may hold such twins already: every pending copy but the earliest is marked `duplicate_of`
    // the earliest and left out of the index, so the migration cannot fail on them and nothing is
    // decided behind the admins' backs (each copy still waits in the list and can be decided).
    id: '0003_pending_once',
    statements: [
      'ALTER TABLE approvals ADD COLUMN duplicate_of TEXT',
      `UPDATE approvals SET duplicate_of = (
                SELECT earliest.id FROM approvals AS earliest
                WHERE earliest.status = 'pending' AND earliest.account_id = approvals.account_id AND earliest.team_id = approvals.team_id
                  AND earliest.gateway_key_id = approvals.gateway_key_id AND earliest.body_hash = approvals.body_hash
                  AND earliest.provider = approvals.provider AND earliest.model = approvals.model
                ORDER BY earliest.created_at, earliest.id LIMIT 1
              ) WHERE status = 'pending'`,
      'UPDATE approvals SET duplicate_of = NULL WHERE duplicate_of = id',
      `CREATE UNIQUE INDEX approvals_pending_once ON approvals (account_id, team_id, gateway_key_id, body_hash, provider, model)
              WHERE status = 'pending' AND duplicate_of IS NULL`,
    ],
  },
];
