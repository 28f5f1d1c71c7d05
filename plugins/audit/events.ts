// Reading the audit log: `GET /v1/audit-logs` with `type`, a period, `account_id` (operator) and an
// opaque cursor. Events come newest first, ordered by (occurred_at, id): a cursor is the last event's
// pair, so pages never repeat or skip an event, even while new events arrive. Two sources: the audit
// table, and the usage rows marked audited, read as request events (usage-events.ts).

import { parsePeriod } from '../../core/http/kit/period.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { AUDIT_TYPES, type AuditType } from './schema.ts';
import { readUsageEvents, requestEventOf, type RetentionCutoffs } from './usage-events.ts';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 500;
const COLUMNS = 'id, account_id, type, occurred_at, request_id, actor_key_id, actor_role, actor_team_id, client_ip, action, target, status, details';

interface Cursor {
  occurredAt: string;
  id: string;
}

export interface AuditQuery {
  accountId: string | undefined;
  type: AuditType | undefined;
  from: string;
  to: string;
  limit: number;
  cursor: Cursor | undefined;
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.occurredAt, cursor.id])).toString('base64url');
}

function decodeCursor(text: string): Cursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [occurredAt, id] = value as unknown[];
    if (typeof occurredAt !== 'string' || typeof id !== 'string' || !/^aud_\w{1,64}$/.test(id)) return undefined;
    return { occurredAt, id };
  } catch {
    return undefined;
  }
}

/** The query parameters of GET /v1/audit-logs. */
export const AUDIT_LOG_PARAMETERS = ['type', ...PERIOD_PARAMETERS, 'account_id', 'limit', 'cursor'] as const;

/** The query a request asks for, for this caller; throws the spec's 400/403 when it is wrong. */
export function auditQueryOf(services: Services, principal: Principal, url: URL, platformScope: string): AuditQuery {
  const { errors } = services;
  const invalid = (param: string, detail: string) => errors.create('invalid_field', { param, detail }, { param });
  if (principal.teamId !== undefined) {
    throw errors.create('permission_denied', { detail: 'The audit log is read with an account admin key or the operator key, not a team member key.' });
  }
  const query = url.searchParams;
  refuseUnknownParameters(query, AUDIT_LOG_PARAMETERS);
  const type = query.get('type');
  if (type !== null && !AUDIT_TYPES.includes(type as AuditType)) throw invalid('type', `expected one of: ${AUDIT_TYPES.join(', ')}`);
  const period = parsePeriod(query, services.clock.now());
  if ('error' in period) throw invalid(period.param, period.error);
  const limitText = query.get('limit');
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalid('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  const cursorText = query.get('cursor');
  const cursor = cursorText === null || cursorText === '' ? undefined : decodeCursor(cursorText);
  if (cursorText !== null && cursorText !== '' && cursor === undefined)
    throw invalid('cursor', 'is not a cursor this endpoint answered (use next_cursor as given)');
  return {
    accountId: accountScope(services, principal, query.get('account_id'), platformScope),
    type: (type ?? undefined) as AuditType | undefined,
    from: period.from.toISOString(),
    to: period.to.toISOString(),
    limit,
    cursor,
  };
}

/**
 * An account admin reads its own account; the operator reads every account, one with `account_id`, or
 * the platform's own actions with `account_id=platform`.
 */
function accountScope(services: Services, principal: Principal, requested: string | null, platformScope: string): string | undefined {
  if (principal.role === 'operator') {
    if (requested === null || requested === '') return undefined;
    if (requested === platformScope) return requested;
    if (!services.snapshot.current.accounts.has(requested)) throw services.errors.create('not_found', { detail: `No account ${requested.slice(0, 100)}.` });
    return requested;
  }
  if (requested !== null && requested !== '' && requested !== principal.accountId) {
    // Another account's existence is not confirmed to an account admin.
    throw services.errors.create('not_found', { detail: `No account ${requested.slice(0, 100)}.` });
  }
  return principal.accountId;
}

/** Reads the audit table (admin, key access, and request events of older releases) under the query's conditions. */
async function readLogged(services: Services, query: AuditQuery, limit: number): Promise<Array<Record<string, unknown>>> {
  const conditions = ['occurred_at >= ?', 'occurred_at < ?'];
  const parameters: unknown[] = [query.from, query.to];
  if (query.accountId !== undefined) {
    conditions.push('account_id = ?');
    parameters.push(query.accountId);
  }
  if (query.type !== undefined) {
    conditions.push('type = ?');
    parameters.push(query.type);
  }
  if (query.cursor !== undefined) {
    conditions.push('(occurred_at < ? OR (occurred_at = ? AND id < ?))');
    parameters.push(query.cursor.occurredAt, query.cursor.occurredAt, query.cursor.id);
  }
  return services.store.query(`SELECT ${COLUMNS} FROM audit_events WHERE ${conditions.join(' AND ')} ORDER BY occurred_at DESC, id DESC LIMIT ?`, [
    ...parameters,
    limit,
  ]);
}

/**
 * One page of the log: the audit table and the audited usage rows (request events), each read newest
 * first up to one past the page, merged by (occurred_at, id). At one instant a usage event's id is above
 * every audit table id (usage-events.ts), so the merge and both sources' cursors agree on one order.
 */
export async function readAuditEvents(
  services: Services,
  query: AuditQuery,
  platformScope: string,
  retention: RetentionCutoffs,
): Promise<Record<string, unknown>> {
  const wanted = query.limit + 1;
  const logged = (await readLogged(services, query, wanted)).map(eventOf);
  const readsUsage = (query.type === undefined || query.type === 'request') && query.accountId !== platformScope;
  const booked = readsUsage ? (await readUsageEvents(services, { ...query, limit: wanted, retention })).map(requestEventOf) : [];
  const merged: Array<Record<string, unknown>> = [];
  let fromLog = 0;
  let fromUsage = 0;
  while (merged.length < wanted) {
    const left = logged[fromLog];
    const right = booked[fromUsage];
    if (left === undefined && right === undefined) break;
    if (right !== undefined && (left === undefined || String(right.occurred_at) >= String(left.occurred_at))) {
      merged.push(right);
      fromUsage++;
    } else {
      merged.push(left as Record<string, unknown>);
      fromLog++;
    }
  }
  const page = merged.slice(0, query.limit);
  const last = page.at(-1);
  const hasMore = merged.length > query.limit && last !== undefined;
  return {
    object: 'list',
    events: page,
    has_more: hasMore,
    next_cursor: hasMore ? encodeCursor({ occurredAt: String(last.occurred_at), id: String(last.id) }) : null,
  };
}

function parseJson(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string') return {};
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const textOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/** One event as answered: who (actor), from where (ip), did what (action) to what (target), when, with what result. */
function eventOf(row: Record<string, unknown>): Record<string, unknown> {
  return {
    id: String(row.id),
    object: 'audit_event',
    type: String(row.type),
    occurred_at: String(row.occurred_at),
    account_id: String(row.account_id),
    request_id: textOrNull(row.request_id),
    actor: { key_id: textOrNull(row.actor_key_id), role: textOrNull(row.actor_role), team_id: textOrNull(row.actor_team_id) },
    ip: textOrNull(row.client_ip),
    action: String(row.action),
    target: parseJson(row.target),
    status: row.status === null || row.status === undefined ? null : Number(row.status),
    ...parseJson(row.details),
  };
}
