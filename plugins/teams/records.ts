// The teams plugin's records: its tables (both dialects), the rows as the routes read them, the
// `teams` snapshot section built from them, and the answers' shapes. The routes and hooks are in index.ts.

import type { Store } from '../../core/spec/store.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { TeamSettings } from './schema.ts';
import type { DeletedTeam, ProviderPermission, TeamPermissions, TeamsSection, TeamView } from './types.ts';

const SQLITE_MIGRATIONS = [
  {
    id: '0001_teams',
    statements: [
      `CREATE TABLE teams (
          id TEXT PRIMARY KEY,
          account_id TEXT NOT NULL,
          name TEXT NOT NULL,
          permissions TEXT NOT NULL,
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          deleted_at TEXT
        )`,
      'CREATE INDEX teams_account ON teams (account_id)',
      `CREATE TABLE team_members (
          id TEXT PRIMARY KEY,
          team_id TEXT NOT NULL,
          account_id TEXT NOT NULL,
          email TEXT NOT NULL,
          role TEXT NOT NULL,
          byok_access INTEGER NOT NULL,
          gateway_key_id TEXT NOT NULL,
          created_at TEXT NOT NULL,
          removed_at TEXT
        )`,
      'CREATE INDEX team_members_team ON team_members (team_id)',
    ],
  },
];

// The member key's settings (allowed_ips, environment) as the member was given them, kept with the
// member so a re-issued key carries them even when the old key was revoked elsewhere.
const MEMBER_SETTINGS_MIGRATIONS = [{ id: '0003_member_settings', statements: ["ALTER TABLE team_members ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'"] }];

// Who issued the member's current key (added the member, or re-issued its key): the issuing gateway
// key, and its member when a team's admin member issued it. Four eyes reads the member: a lead never
// decides the approvals of a key it holds a copy of (policies/approvals). Null on keys issued before.
const KEY_ISSUER_MIGRATIONS = [
  {
    id: '0004_member_key_issuer',
    statements: ['ALTER TABLE team_members ADD COLUMN key_issued_by TEXT', 'ALTER TABLE team_members ADD COLUMN key_issued_by_member TEXT'],
  },
];

// Lists are read in insertion order (ORDER BY created_at, rowid): PostgreSQL gets a `rowid` identity column for it.
export const MIGRATIONS = {
  sqlite: [...SQLITE_MIGRATIONS, ...MEMBER_SETTINGS_MIGRATIONS, ...KEY_ISSUER_MIGRATIONS],
  postgres: [
    ...postgresMigrationsFromSqlite(SQLITE_MIGRATIONS),
    {
      id: '0002_postgres_rowid',
      statements: [
        'ALTER TABLE teams ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY',
        'ALTER TABLE team_members ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY',
      ],
    },
    ...postgresMigrationsFromSqlite(MEMBER_SETTINGS_MIGRATIONS),
    ...postgresMigrationsFromSqlite(KEY_ISSUER_MIGRATIONS),
  ],
};

export interface TeamRow {
  id: string;
  accountId: string;
  name: string;
  permissions: TeamPermissions;
  createdAt: string;
  updatedAt: string;
}

export interface MemberRow {
  id: string;
  teamId: string;
  accountId: string;
  email: string;
  role: string;
  byokAccess: boolean;
  gatewayKeyId: string;
  /** The member key's governance settings (`allowed_ips`, `environment`), as stored on its gateway key. */
  settings: Record<string, unknown>;
  createdAt: string;
}

function parseObject(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string') return {};
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function toTeam(row: Record<string, unknown>): TeamRow {
  return {
    id: String(row.id),
    accountId: String(row.account_id),
    name: String(row.name),
    permissions: parseObject(row.permissions) as TeamPermissions,
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}

export function toMember(row: Record<string, unknown>): MemberRow {
  return {
    id: String(row.id),
    teamId: String(row.team_id),
    accountId: String(row.account_id),
    email: String(row.email),
    role: String(row.role),
    byokAccess: row.byok_access === true || Number(row.byok_access) === 1,
    gatewayKeyId: String(row.gateway_key_id),
    settings: parseObject(row.settings),
    createdAt: String(row.created_at),
  };
}

/** Who issues a member key: the gateway key, and its member when it is a team's admin member's. */
export interface KeyIssuer {
  keyId: string;
  memberId: string | null;
}

/**
 * The live member holding this gateway key: its id, and when it was added to its team (its
 * `created_at`, which a re-issued key keeps); undefined when no live member holds it.
 */
export async function memberOfKey(store: Store, keyId: string): Promise<{ id: string; joinedAt: string } | undefined> {
  const rows = await store.query('SELECT id, created_at FROM team_members WHERE gateway_key_id = ? AND removed_at IS NULL', [keyId]);
  return rows[0] === undefined ? undefined : { id: String(rows[0].id), joinedAt: String(rows[0].created_at) };
}

/**
 * The member that issued this member key (added its member or re-issued it), when a team's admin
 * member did; null when an account admin or the operator did, or when the key predates the record.
 */
export async function keyIssuerMember(store: Store, keyId: string): Promise<string | null> {
  const rows = await store.query('SELECT key_issued_by_member FROM team_members WHERE gateway_key_id = ?', [keyId]);
  const issuer = rows[0]?.key_issued_by_member;
  return issuer === null || issuer === undefined ? null : String(issuer);
}

/** The snapshot section: every live team, by id, and the names of the deleted ones. */
export async function loadTeamsSection(store: Store): Promise<TeamsSection> {
  const rows = await store.query('SELECT id, account_id, name, permissions, created_at, updated_at, deleted_at FROM teams');
  const byId = new Map<string, TeamView>();
  const deletedById = new Map<string, DeletedTeam>();
  for (const row of rows) {
    if (row.deleted_at !== null && row.deleted_at !== undefined) {
      deletedById.set(String(row.id), { id: String(row.id), accountId: String(row.account_id), name: String(row.name), deletedAt: String(row.deleted_at) });
      continue;
    }
    const team = toTeam(row);
    byId.set(team.id, { id: team.id, accountId: team.accountId, name: team.name, permissions: team.permissions });
  }
  return { byId, deletedById };
}

/** The policy as stored from the request's settings: the seed's byok_permissions plus Keyway's own. */
export function permissionsOf(settings: Omit<TeamSettings, 'name'>): TeamPermissions {
  const permissions: TeamPermissions = {};
  if (settings.byok_permissions?.providers !== undefined) permissions.providers = withEnabledDefault(settings.byok_permissions.providers);
  if (settings.byok_permissions?.usage_controls !== undefined) permissions.usage_controls = settings.byok_permissions.usage_controls;
  if (settings.allowed_ips !== undefined) permissions.allowed_ips = settings.allowed_ips;
  if (settings.rate_limits !== undefined) permissions.rate_limits = settings.rate_limits;
  if (settings.hosted_tools !== undefined) permissions.hosted_tools = settings.hosted_tools;
  return permissions;
}

/**
 * `enabled` defaults to true, and is stored so: a provider listed only for its budget, approval
 * threshold or models is one the team uses (as LiteLLM and Portkey read such an entry). Until QA12
 * the field was required, and such an entry was refused with 400 missing_field.
 */
function withEnabledDefault(providers: NonNullable<NonNullable<TeamSettings['byok_permissions']>['providers']>): Record<string, ProviderPermission> {
  const filled: Record<string, ProviderPermission> = {};
  for (const [name, rule] of Object.entries(providers)) filled[name] = { enabled: true, ...rule };
  return filled;
}

/** The team's settings in the request's shape (what PATCH merges into). */
export function settingsOf(team: TeamRow): Record<string, unknown> {
  const { providers, usage_controls, allowed_ips, rate_limits, hosted_tools } = team.permissions;
  const byok: Record<string, unknown> = {};
  if (providers !== undefined) byok.providers = providers;
  if (usage_controls !== undefined) byok.usage_controls = usage_controls;
  const settings: Record<string, unknown> = { name: team.name, byok_permissions: byok };
  if (allowed_ips !== undefined) settings.allowed_ips = allowed_ips;
  if (rate_limits !== undefined) settings.rate_limits = rate_limits;
  if (hosted_tools !== undefined) settings.hosted_tools = hosted_tools;
  return settings;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * RFC 7386: objects merge recursively, `null` removes a field, anything else replaces. Each field is
 * defined as the result's own, never assigned: assigned, a `__proto__` field (JSON.parse makes it an
 * ordinary one) set the result's prototype instead, so the field vanished and the patch passed
 * validation with a 200, where POST refuses it as unknown.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    else {
      const merged = mergePatch(Object.hasOwn(result, name) ? result[name] : undefined, value);
      Object.defineProperty(result, name, { value: merged, enumerable: true, writable: true, configurable: true });
    }
  }
  return result;
}

/**
 * A member as answered. `maskedKey` is its key's, undefined once that key is revoked (through
 * `DELETE /v1/keys/{id}`): the member is still listed, so an admin sees it and can re-issue its key.
 */
export function memberAnswer(member: MemberRow, maskedKey: string | undefined, apiKey?: string): Record<string, unknown> {
  const answer: Record<string, unknown> = {
    id: member.id,
    team_id: member.teamId,
    email: member.email,
    role: member.role,
    byok_access: member.byokAccess,
    key_id: member.gatewayKeyId,
    key_status: maskedKey === undefined ? 'revoked' : 'active',
    masked_key: maskedKey ?? null,
    ...member.settings,
    created_at: member.createdAt,
  };
  if (apiKey !== undefined) answer.api_key = apiKey;
  return answer;
}

export function teamAnswer(team: TeamRow, members: Array<Record<string, unknown>>): Record<string, unknown> {
  const { providers, usage_controls, allowed_ips, rate_limits, hosted_tools } = team.permissions;
  const answer: Record<string, unknown> = {
    id: team.id,
    object: 'team',
    account_id: team.accountId,
    name: team.name,
    byok_permissions: { providers: providers ?? {}, usage_controls: usage_controls ?? {} },
  };
  if (allowed_ips !== undefined) answer.allowed_ips = allowed_ips;
  if (rate_limits !== undefined) answer.rate_limits = rate_limits;
  if (hosted_tools !== undefined) answer.hosted_tools = hosted_tools;
  answer.created_at = team.createdAt;
  answer.updated_at = team.updatedAt;
  answer.members = members;
  return answer;
}
