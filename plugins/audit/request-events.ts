// What the account hook queues, per request, by the account's compliance block: one `key_access` event
// per use of a provider key (each attempt, failed or served) when `key_access_logs` is on, and one
// `request` event of metadata under `audit_logging: all_requests` (or for a team whose
// `usage_controls.log_all_requests` is on). In-memory work only: the details
// are built when the batch is written, except a request event's, serialised at once so that nothing of
// the request is held. Prompts and completions are never stored; a request event's fingerprint hashes them.

import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import type { KeyDecryption } from '../../core/spec/key-source.ts';
import type { AuditQueue } from './queue.ts';

/** What to log for one request, from the account's compliance block and the request's team. */
export interface RequestLogging {
  keyAccess: boolean;
  requests: boolean;
  /** Add a SHA-256 fingerprint of the request body to its request event. */
  fingerprint: boolean;
}

export function queueRequestEvents(queue: AuditQueue, logging: RequestLogging, context: RequestContext, outcome: RequestOutcome, now: string): void {
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
  if (logging.keyAccess) {
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
        status: outcome.status,
        details: () => ({ principal_key_id: base.actorKeyId, provider: served.provider, model: served.model, owner: served.owner, outcome: 'served' }),
      });
    }
  }
  if (logging.requests) {
    // Serialised now, to one flat string: the queue then holds no reference to the request (its
    // messages) nor any object for the collector to trace until the batch is written (at 6,000
    // requests a second, a second of held requests and closures cost more than this serialisation).
    const metadata = requestMetadata(context, outcome);
    if (logging.fingerprint) metadata.request_sha256 = Bun.SHA256.hash(JSON.stringify(context.request), 'hex');
    queue.push({
      ...base,
      type: 'request',
      action: `request.${context.endpoint}`,
      target: JSON.stringify({ endpoint: context.endpoint, model: context.served?.model ?? context.request.model }),
      status: outcome.status,
      details: JSON.stringify(metadata),
    });
  }
}

/** The metadata of one request, as the usage row books it. */
function requestMetadata(context: RequestContext, outcome: RequestOutcome): Record<string, unknown> {
  const usage = outcome.usage;
  const metadata: Record<string, unknown> = {
    endpoint: context.endpoint,
    requested_model: context.request.model,
    provider: context.served?.provider ?? null,
    model: context.served?.model ?? null,
    provider_key_id: context.served?.keyId ?? null,
    byok: context.served === undefined ? null : context.served.owner === 'account',
    error_code: outcome.error?.code ?? null,
    input_tokens: usage?.inputTokens ?? 0,
    output_tokens: usage?.outputTokens ?? 0,
    cached_input_tokens: usage?.cachedInputTokens ?? 0,
    reasoning_tokens: usage?.reasoningTokens ?? 0,
    cost_usd: outcome.costUsd ?? null,
    latency_ms: Math.round(outcome.latencyMs),
    streamed: outcome.streamed,
    fallback_attempts: context.attempts.length,
    team_id: context.teamId ?? null,
    project: context.projectTag ?? null,
  };
  return metadata;
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
