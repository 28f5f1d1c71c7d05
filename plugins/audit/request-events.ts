// What the audit hooks do, per request, by the account's compliance block: the account hook queues one
// `key_access` event per use of a provider key (each attempt, failed or served) when `key_access_logs`
// is on, their details built when the batch is written; and under `audit_logging: all_requests` (or for
// a team whose `usage_controls.log_all_requests` is on) the call hook (or, for a request refused before
// it, the account hook) marks the request's usage row as audited (RequestContext.usageAudit), which the
// log then reads as the request's `request` event: no second row per request. Prompts and completions are never stored; a request event's fingerprint hashes the
// body as received.

import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { KeyDecryption } from '../../core/spec/key-source.ts';
import type { AuditQueue } from './queue.ts';

/** What to log for one request, from the account's compliance block and the request's team. */
export interface RequestLogging {
  keyAccess: boolean;
  requests: boolean;
  /** Add a SHA-256 fingerprint of the request body to its request event. */
  fingerprint: boolean;
}

/**
 * Marks the request's usage row as audited: the row keeps what its `request` event has beyond the
 * booking (usage-events.ts reads it back), so the event costs no row of its own. The fingerprint is
 * the SHA-256 of the body as the client sent it, which the client can compute from what it sent (no
 * re-serialisation of the parsed request, whose key order and number format a client cannot know).
 */
export function markAudited(context: RequestContext, fingerprint: boolean): void {
  const body = context.bodyText;
  context.usageAudit = { requestSha256: fingerprint && body !== undefined ? Bun.SHA256.hash(body, 'hex') : null };
}

/** One `key_access` event per use of a provider key: each attempt, failed or served. */
export function queueKeyUseEvents(queue: AuditQueue, context: RequestContext, status: number, now: string): void {
  const { principal } = context;
  const base = {
    accountId: principal.accountId,
    occurredAt: now,
    requestId: context.requestId,
    actorKeyId: principal.keyId,
    actorRole: principal.role,
    actorTeamId: context.teamId ?? principal.teamId ?? null,
    clientIp: context.clientIp ?? null,
  };
  for (const attempt of context.attempts) {
    queue.push({
      ...base,
      type: 'key_access',
      action: 'provider_key.use',
      target: { key_id: attempt.keyId, provider: attempt.provider },
      status: attempt.status ?? null,
      details: () => ({ principal_key_id: base.actorKeyId, provider: attempt.provider, model: attempt.model, owner: attempt.owner, outcome: attempt.reason }),
    });
  }
  const served = context.served;
  if (served !== undefined) {
    queue.push({
      ...base,
      type: 'key_access',
      action: 'provider_key.use',
      target: { key_id: served.keyId, provider: served.provider },
      status,
      details: () => ({ principal_key_id: base.actorKeyId, provider: served.provider, model: served.model, owner: served.owner, outcome: 'served' }),
    });
  }
}

/**
 * One `key_access` event per decryption (a key-vault cache miss: a ciphertext opened, or a reference
 * resolved by its key source), filed under the key's account, or under the requester's account for a
 * platform key. Background decryptions of platform keys (model listing) belong to no account.
 */
export function queueDecryptionEvent(queue: AuditQueue, event: KeyDecryption, logsKeyAccess: (accountId: string) => boolean): void {
  const accountId = event.keyAccountId ?? event.principalAccountId;
  if (accountId === undefined || !logsKeyAccess(accountId)) return;
  queue.push({
    accountId,
    type: 'key_access',
    occurredAt: event.occurredAt,
    requestId: event.requestId ?? null,
    actorKeyId: event.principalKeyId ?? null,
    actorRole: null,
    actorTeamId: null,
    clientIp: null,
    action: event.kind === 'fetch' ? 'provider_key.fetch' : 'provider_key.decrypt',
    target: { key_id: event.keyId, provider: event.provider },
    status: null,
    details: () => ({
      principal_key_id: event.principalKeyId ?? null,
      provider: event.provider,
      via: event.via,
      outcome: event.ok ? 'ok' : 'failed',
      cause: event.requestId === undefined ? 'background' : 'request',
    }),
  });
}
