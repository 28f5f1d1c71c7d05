// Request events read from the usage rows the account hook marked as audited (UsageRecord.audited):
// the row already books what a `request` event says, and keeps the rest (IP, the key's role, the
// fingerprint) only when audited, so a request costs one row, not two. Answered field for field as the
// events the audit table held before (still read from there for requests logged by older releases).

import { CLIENT_PROVIDER_KEY_ID } from '../../core/spec/key-source.ts';
import type { Services } from '../../core/spec/services.ts';

/**
 * A usage event's id: this prefix and the row's id, zero-padded so that ids compare as their rows do.
 * Audit table ids start `aud_` and a base-36 time whose first digit is 0 until 2059: at one instant a
 * usage event sorts after every audit table event, as a string and in any collation.
 */
const ID_PREFIX = 'aud_u';
const ID_DIGITS = 15;

const COLUMNS =
  'id, account_id, created_at, request_id, gateway_key_id, actor_role, team_id, client_ip, endpoint, provider, model, requested_model, provider_key_id, ' +
  'byok, status, error_code, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, unpriced, latency_ms, streamed, ' +
  'fallback_attempts, project_tag, request_sha256';

/** The time and id a page ends at (events.ts Cursor). */
export interface Position {
  occurredAt: string;
  id: string;
}

/** Per account, the first instant its audit retention still keeps; `others` for every account not named. */
export interface RetentionCutoffs {
  byAccount: ReadonlyMap<string, string>;
  others: string;
}

export interface UsageEventQuery {
  accountId: string | undefined;
  from: string;
  to: string;
  limit: number;
  cursor: Position | undefined;
  retention: RetentionCutoffs;
}

/** The usage row id a usage event's id names; undefined for an audit table event's id. */
function rowIdOf(eventId: string): number | undefined {
  if (!eventId.startsWith(ID_PREFIX)) return undefined;
  const digits = eventId.slice(ID_PREFIX.length);
  return /^\d{1,15}$/.test(digits) ? Number(digits) : undefined;
}

/** Up to `limit` audited usage rows, newest first by (created_at, id), after the cursor. */
export async function readUsageEvents(services: Services, query: UsageEventQuery): Promise<Array<Record<string, unknown>>> {
  if (query.accountId !== undefined) return readAccountUsageEvents(services, query, query.accountId);
  // No index orders audited rows across accounts (each audited row would pay for one on the writer
  // thread): the operator's view reads each account's newest through usage_account_time and merges them.
  const accountIds = [...services.snapshot.current.accounts.keys()];
  const pages = await Promise.all(accountIds.map((accountId) => readAccountUsageEvents(services, query, accountId)));
  return pages
    .flat()
    .sort((left, right) => compareNewestFirst(left, right))
    .slice(0, query.limit);
}

function compareNewestFirst(left: Record<string, unknown>, right: Record<string, unknown>): number {
  const leftAt = String(left.created_at);
  const rightAt = String(right.created_at);
  if (leftAt !== rightAt) return leftAt < rightAt ? 1 : -1;
  return Number(right.id) - Number(left.id);
}

/**
 * One account's audited rows, through usage_account_time (account, time, audited): the filter is read
 * from the index. Rows past the account's audit retention are not events any more (the rows stay: they
 * follow the usage data's own retention).
 */
function readAccountUsageEvents(services: Services, query: UsageEventQuery, accountId: string): Promise<Array<Record<string, unknown>>> {
  const conditions = ['account_id = ?', 'audited = 1', 'created_at >= ?', 'created_at < ?', 'created_at >= ?'];
  const parameters: unknown[] = [accountId, query.from, query.to, query.retention.byAccount.get(accountId) ?? query.retention.others];
  const cursor = query.cursor;
  if (cursor !== undefined) {
    const rowId = rowIdOf(cursor.id);
    // After an audit table event: every usage event of its instant came before it.
    if (rowId === undefined) {
      conditions.push('created_at < ?');
      parameters.push(cursor.occurredAt);
    } else {
      conditions.push('(created_at < ? OR (created_at = ? AND id < ?))');
      parameters.push(cursor.occurredAt, cursor.occurredAt, rowId);
    }
  }
  return services.store.query(`SELECT ${COLUMNS} FROM usage_records WHERE ${conditions.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`, [
    ...parameters,
    query.limit,
  ]);
}

const textOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/** One audited usage row as the `request` event it stands for (the shape request-events.ts once stored). */
export function requestEventOf(row: Record<string, unknown>): Record<string, unknown> {
  const provider = textOrNull(row.provider);
  const model = textOrNull(row.model);
  const endpoint = String(row.endpoint);
  const requestedModel = String(row.requested_model);
  const event: Record<string, unknown> = {
    id: `${ID_PREFIX}${String(row.id).padStart(ID_DIGITS, '0')}`,
    object: 'audit_event',
    type: 'request',
    occurred_at: String(row.created_at),
    account_id: String(row.account_id),
    request_id: textOrNull(row.request_id),
    actor: { key_id: textOrNull(row.gateway_key_id), role: textOrNull(row.actor_role), team_id: textOrNull(row.team_id) },
    ip: textOrNull(row.client_ip),
    action: `request.${endpoint}`,
    target: { endpoint, model: model ?? requestedModel },
    status: Number(row.status),
    endpoint,
    requested_model: requestedModel,
    provider,
    model,
    // A served request without a stored key id was served with the client's own key (X-Provider-Key).
    provider_key_id: textOrNull(row.provider_key_id) ?? (provider === null ? null : CLIENT_PROVIDER_KEY_ID),
    byok: provider === null ? null : Number(row.byok) === 1,
    error_code: textOrNull(row.error_code),
    input_tokens: Number(row.input_tokens),
    output_tokens: Number(row.output_tokens),
    cached_input_tokens: Number(row.cached_input_tokens),
    reasoning_tokens: Number(row.reasoning_tokens),
    cost_usd: Number(row.unpriced) === 1 ? null : Number(row.cost_usd),
    latency_ms: Math.round(Number(row.latency_ms)),
    streamed: Number(row.streamed) === 1,
    fallback_attempts: Number(row.fallback_attempts),
    team_id: textOrNull(row.team_id),
    project: textOrNull(row.project_tag),
  };
  const fingerprint = textOrNull(row.request_sha256);
  if (fingerprint !== null) event.request_sha256 = fingerprint;
  return event;
}
