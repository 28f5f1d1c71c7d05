// The usage row a finished request leaves behind.

import type { AttemptRecord, RequestContext, RequestOutcome, ServedBy } from '../spec/lifecycle.ts';
import type { RequestIdentity, UsageRecord } from '../spec/store.ts';
import { CLIENT_PROVIDER_KEY_ID } from '../spec/key-source.ts';
import { holdsClientKey, REDACTED, shownValue } from '../credentials/secret-shapes.ts';
import { projectTagProblem } from '../wire/project-tag.ts';

/**
 * The creation time, formatted once per millisecond: under load many rows share a millisecond, and
 * `toISOString` for each was about 1 % of the gateway thread (a CPU profile at 10,000 requests a second).
 */
let formattedAt = -1;
let formatted = '';
function bookingTime(): string {
  const milliseconds = Date.now();
  if (milliseconds !== formattedAt) {
    formatted = new Date(milliseconds).toISOString();
    formattedAt = milliseconds;
  }
  return formatted;
}

/**
 * Names the client sent are kept (exports, analytics, audit events) only if they hold no key: a
 * request refused for sending one is still booked, and other refusals come before that check. A tag
 * outside the grammar is not kept at all: it was (or would have been) refused as invalid.
 */
export function bookedProjectTag(tag: string | undefined, headers: Headers): string | null {
  if (tag === undefined || projectTagProblem(tag) !== undefined) return null;
  // The request's own X-Provider-Key, whatever its shape, is never booked.
  return holdsClientKey(tag, headers) ? REDACTED : shownValue(tag);
}

/**
 * Who the row books: the attempt that served, else a last attempt whose provider had begun to answer
 * (a non-streamed answer whose 2xx head arrived before its body failed: its status is that head's,
 * core/lifecycle/attempt-deadlines.ts). That provider took the call and may bill it, and the row says
 * whose key it was, as `X-Provider-Used` does; it costs nothing here, like any failed call. Any
 * other failed request was served by nobody.
 */
function bookedAttempt(context: RequestContext): ServedBy | AttemptRecord | undefined {
  if (context.served !== undefined) return context.served;
  // A candidate skipped after it (its translation refused the request) reached no upstream and changes
  // nothing; nor does a substitute's 400 set aside after it (core/lifecycle/attempts.ts).
  const last = context.attempts.findLast((attempt) => attempt.skipped !== true && attempt.setAside !== true);
  return last?.status !== undefined && last.status >= 200 && last.status < 300 ? last : undefined;
}

/** Which request, and whose, as its usage row and its in-flight mark (in-flight.ts) name it. */
export function requestIdentity(context: RequestContext): RequestIdentity {
  return {
    requestId: context.requestId,
    accountId: context.principal.accountId,
    gatewayKeyId: context.principal.keyId,
    teamId: context.teamId ?? null,
    projectTag: bookedProjectTag(context.projectTag, context.headers),
    endpoint: context.endpoint,
  };
}

export function usageRow(context: RequestContext, outcome: RequestOutcome): UsageRecord {
  const usage = outcome.usage;
  const audit = context.usageAudit;
  const booked = bookedAttempt(context);
  return {
    ...requestIdentity(context),
    provider: booked?.provider ?? null,
    // The model the provider said it served (a dated name for an alias), as its reports name it; else the routed one.
    model: booked === undefined ? null : (outcome.servedModel ?? booked.model),
    // Set only once the runner's refuseSecretFields passed the body: a key sent as the model never gets here.
    requestedModel: typeof context.request.model === 'string' ? context.request.model.slice(0, 200) : '',
    // The client's own key (X-Provider-Key) is booked as byok with no key id: it was never stored.
    providerKeyId: booked === undefined || booked.keyId === CLIENT_PROVIDER_KEY_ID ? null : booked.keyId,
    byok: booked !== undefined && booked.owner === 'account',
    status: outcome.status,
    errorCode: outcome.error?.code ?? null,
    inputTokens: usage?.inputTokens ?? 0,
    outputTokens: usage?.outputTokens ?? 0,
    cachedInputTokens: usage?.cachedInputTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteInputTokens ?? 0,
    cacheWrite1hTokens: usage?.cacheWrite1hInputTokens ?? 0,
    reasoningTokens: usage?.reasoningTokens ?? 0,
    costUsd: outcome.costUsd ?? null,
    latencyMs: Math.round(outcome.latencyMs * 1000) / 1000,
    streamed: outcome.streamed,
    fallbackAttempts: context.attempts.length,
    createdAt: bookingTime(),
    usageEstimated: outcome.usageEstimated === true,
    audited: audit !== undefined,
    clientIp: audit === undefined ? null : (context.clientIp ?? null),
    actorRole: audit === undefined ? null : context.principal.role,
    requestSha256: audit === undefined ? null : audit.requestSha256,
  };
}
