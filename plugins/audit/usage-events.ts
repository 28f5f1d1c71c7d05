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

/**
 * Rows past their account's audit retention are not events any more (the rows stay: they follow the
 * usage data's own retention). One condition per distinct retention, so few for many accounts.
 */
function retentionCondition(retention: RetentionCutoffs, accountId: string | undefined, parameters: unknown[]): string {
  if (accountId !== undefined) {
    parameters.push(retention.byAccount.get(accountId) ?? retention.others);
    return 'created_at >= ?';
  }
  const byCutoff = new Map<string, string[]>();
  for (const [account, cutoff] of retention.byAccount) byCutoff.set(cutoff, [...(byCutoff.get(cutoff) ?? []), account]);
  const alternatives: string[] = [];
  for (const [cutoff, accounts] of byCutoff) {
    alternatives.push(`(account_id IN (${accounts.map(() => '?').join(', ')}) AND created_at >= ?)`);
    parameters.push(...accounts, cutoff);
  }
  const named = [...retention.byAccount.keys()];
  alternatives.push(named.length === 0 ? 'created_at >= ?' : `(account_id NOT IN (${named.map(() => '?').join(', ')}) AND created_at >= ?)`);
  parameters.push(...named, retention.others);
  return `(${alternatives.join(' OR ')})`;
}

/** Up to `limit` audited usage rows, newest first by (created_at, id), after the cursor. */
export async function readUsageEvents(services: Services, query: UsageEventQuery): Promise<Array<Record<string, unknown>>> {
  const conditions = ['audited = 1', 'created_at >= ?', 'created_at < ?'];
  const parameters: unknown[] = [query.from, query.to];
  if (query.accountId !== undefined) {
    conditions.push('account_id = ?');
    parameters.push(query.accountId);
  }
  conditions.push(retentionCondition(query.retention, query.accountId, parameters));
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
