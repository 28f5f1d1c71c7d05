// The usage journal's in-flight marks (usage-journal.ts, "In flight"): lines that are no usage row but
// say which requests had an upstream call under way, so a process that dies leaves enough on disk to
// book each of them once. A mark is a JSON array led by a one-letter tag (usage rows lead with their
// version number, journal-line.ts):
//
//   ["o", id, requestId, accountId, gatewayKeyId, teamId, projectTag, endpoint, provider, model,
//    requestedModel, providerKeyId, byok, streamed, createdAt, inputTokens, attempts, audit, leases]
//        an upstream call started; written again when a fallback starts another (the last one counts).
//        `requestedModel` null when it is `model`, `createdAt` in epoch milliseconds (a number is
//        cheaper to write than a date), `inputTokens` the prompt's byte bound (prompt-bound.ts) or a budget's tokenizer count of it,
//        `audit` null or [clientIp, actorRole, requestSha256] when an audit marked the request before its call,
//        `leases` (absent in marks of releases before QA18) null or [[provider, counterKey, leaseId, expiresAt], …]:
//        the budget reservations it holds on the shared counters, settled to its estimate by the replay.
//   ["p", id, outputTokens, elapsedMs, inputTokens, cachedInputTokens, cacheWriteTokens, cacheWrite1hTokens]
//        a stream's progress: its output estimate so far, and its prompt as the provider stated it up
//        front (null when it did not).
//   ["c", id]
//        the request was booked: its usage row is the line before.
//   ["s"]
//        the segment was sealed: every request still open then was carried into the next segment.
//
// `id` numbers a request within one journal (a process's run). Replay reads each file on its own: a
// sealed file's opens were all either closed in it or carried on, so only an unsealed file (a dead
// process's last segment) can hold requests that never ended, and those without a close mark are
// booked once each, as the usage row `estimatedRow` builds.

import { ERROR_TABLE } from '../errors.ts';
import type { HeldLease } from '../spec/lifecycle.ts';
import type { RequestIdentity, UsageRecord } from '../spec/store.ts';
import type { Usage } from '../spec/vocabulary.ts';

/** The request's part of an open mark, as the in-flight registry (in-flight.ts) hands it over. */
export interface OpenRequest extends RequestIdentity {
  id: number;
  provider: string;
  model: string;
  requestedModel: string;
  providerKeyId: string | null;
  byok: boolean;
  streamed: boolean;
  /** When the first upstream call started, in epoch milliseconds: the estimated row's creation time. */
  createdAt: number;
  /** The prompt's figure as the budget reserved it: its byte bound, or its count by the provider's tokenizer when a budget counted it. */
  inputTokens: number;
  /** Upstream attempts so far, this one included. */
  attempts: number;
  audit: { clientIp: string | null; actorRole: string | null; requestSha256: string | null } | undefined;
  /** The budget leases the request holds (RequestContext.leases), if any. */
  leases: HeldLease[] | undefined;
}

/** A stream's progress as a mark records it. */
export interface StreamProgress {
  outputTokens: number;
  elapsedMs: number;
  /** The prompt as the provider stated it before any output (Anthropic's message_start, Gemini's first chunk). */
  prompt: Pick<Usage, 'inputTokens' | 'cachedInputTokens' | 'cacheWriteInputTokens' | 'cacheWrite1hInputTokens'> | undefined;
}

/** An open mark read back, with its stream's last progress. */
export interface UnfinishedRequest extends OpenRequest {
  progress: StreamProgress | undefined;
}

/** The identity fields alone, of a mark read back (which holds more). */
function identityOf(request: RequestIdentity): RequestIdentity {
  const { requestId, accountId, gatewayKeyId, teamId, projectTag, endpoint } = request;
  return { requestId, accountId, gatewayKeyId, teamId, projectTag, endpoint };
}

export const SEALED_MARK = '["s"]\n';

/** The open mark's line, with its newline. */
export function openMark(open: OpenRequest): string {
  const audit = open.audit === undefined ? null : [open.audit.clientIp, open.audit.actorRole, open.audit.requestSha256];
  return `${JSON.stringify([
    'o',
    open.id,
    open.requestId,
    open.accountId,
    open.gatewayKeyId,
    open.teamId,
    open.projectTag,
    open.endpoint,
    open.provider,
    open.model,
    open.requestedModel === open.model ? null : open.requestedModel,
    open.providerKeyId,
    open.byok,
    open.streamed,
    open.createdAt,
    open.inputTokens,
    open.attempts,
    audit,
    open.leases === undefined ? null : open.leases.map((lease) => [lease.provider, lease.key, lease.leaseId, lease.expiresAt]),
  ])}\n`;
}

/** The progress mark's line, with its newline. */
export function progressMark(id: number, progress: StreamProgress): string {
  const prompt = progress.prompt;
  return `${JSON.stringify([
    'p',
    id,
    progress.outputTokens,
    Math.round(progress.elapsedMs),
    prompt?.inputTokens ?? null,
    prompt?.cachedInputTokens ?? 0,
    prompt?.cacheWriteInputTokens ?? 0,
    prompt?.cacheWrite1hInputTokens ?? 0,
  ])}\n`;
}

/** The close mark's line, with its newline: a number needs no JSON encoding. */
export function closeMark(id: number): string {
  return `["c",${id}]\n`;
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isText = (value: unknown): value is string => typeof value === 'string';
const textOrNull = (value: unknown): value is string | null => value === null || typeof value === 'string';

function leasesFromMark(value: unknown): HeldLease[] | undefined | false {
  if (value === null || value === undefined) return undefined;
  if (!Array.isArray(value)) return false;
  const leases: HeldLease[] = [];
  for (const lease of value) {
    if (!Array.isArray(lease) || lease.length !== 4) return false;
    const [provider, key, leaseId, expiresAt] = lease as unknown[];
    if (!isText(provider) || !isText(key) || !isText(leaseId) || !isCount(expiresAt)) return false;
    leases.push({ provider, key, leaseId, expiresAt });
  }
  return leases;
}

function openFromMark(mark: readonly unknown[]): OpenRequest | undefined {
  // 18 fields before QA18; the 19th names the budget leases.
  if (mark.length !== 18 && mark.length !== 19) return undefined;
  const leases = leasesFromMark(mark[18]);
  if (leases === false) return undefined;
  const [, id, requestId, accountId, gatewayKeyId, teamId, projectTag, endpoint, provider, model, requestedModel, providerKeyId, byok, streamed, createdAt] =
    mark;
  const [inputTokens, attempts, audit] = mark.slice(15);
  if (!isCount(id) || !isText(requestId) || !isText(accountId) || !isText(gatewayKeyId) || !textOrNull(teamId) || !textOrNull(projectTag)) return undefined;
  if (!isText(endpoint) || !isText(provider) || !isText(model) || !textOrNull(requestedModel) || !textOrNull(providerKeyId)) return undefined;
  if (typeof byok !== 'boolean' || typeof streamed !== 'boolean' || !isCount(createdAt) || !isCount(inputTokens) || !isCount(attempts)) return undefined;
  if (audit !== null && !(Array.isArray(audit) && audit.length === 3 && audit.every(textOrNull))) return undefined;
  const [clientIp, actorRole, requestSha256] = (audit ?? []) as Array<string | null>;
  return {
    id,
    requestId,
    accountId,
    gatewayKeyId,
    teamId,
    projectTag,
    endpoint,
    provider,
    model,
    requestedModel: requestedModel ?? model,
    providerKeyId,
    byok,
    streamed,
    createdAt,
    inputTokens,
    attempts,
    audit: audit === null ? undefined : { clientIp: clientIp ?? null, actorRole: actorRole ?? null, requestSha256: requestSha256 ?? null },
    leases,
  };
}

function progressFromMark(mark: readonly unknown[]): StreamProgress | undefined {
  if (mark.length !== 8) return undefined;
  const [, , outputTokens, elapsedMs, inputTokens, cached, cacheWrite, cacheWrite1h] = mark;
  if (!isCount(outputTokens) || !isCount(elapsedMs) || !(inputTokens === null || isCount(inputTokens))) return undefined;
  if (!isCount(cached) || !isCount(cacheWrite) || !isCount(cacheWrite1h)) return undefined;
  return {
    outputTokens,
    elapsedMs,
    prompt:
      inputTokens === null ? undefined : { inputTokens, cachedInputTokens: cached, cacheWriteInputTokens: cacheWrite, cacheWrite1hInputTokens: cacheWrite1h },
  };
}

/** Reads one file's marks in order; `unfinished()` then answers the requests it leaves open. */
export class MarkReader {
  private readonly open = new Map<number, UnfinishedRequest>();
  private sealed = false;

  /** False when the mark is none this release reads (a damaged line). */
  read(mark: readonly unknown[]): boolean {
    const id = mark[1];
    switch (mark[0]) {
      case 'o': {
        const open = openFromMark(mark);
        if (open === undefined) return false;
        // A fallback's mark replaces the earlier attempt's; the stream's progress stays.
        this.open.set(open.id, { ...open, progress: this.open.get(open.id)?.progress });
        return true;
      }
      case 'p': {
        const progress = progressFromMark(mark);
        if (progress === undefined || !isCount(id)) return false;
        const open = this.open.get(id);
        if (open !== undefined) open.progress = progress;
        return true;
      }
      case 'c':
        if (!isCount(id) || mark.length !== 2) return false;
        this.open.delete(id);
        return true;
      case 's':
        this.sealed = true;
        return true;
      default:
        return false;
    }
  }

  /** The requests opened and never closed; none in a sealed file, whose open requests went on to the next. */
  unfinished(): UnfinishedRequest[] {
    return this.sealed ? [] : [...this.open.values()];
  }
}

/** The list price of a usage on a provider's model; undefined when it has none (booked unpriced). */
export type PriceUsage = (provider: string, model: string, usage: Usage) => number | undefined;

/**
 * The usage row of a request whose upstream call was under way when its process died: booked at
 * Keyway's estimate, as a stream cut short is (flagged `usageEstimated`), with `gateway_stopped`. The
 * prompt as the provider stated it up front when a stream's progress recorded that, else the prompt's
 * byte bound; the output a stream had delivered by its last progress mark, else none (a non-streamed
 * answer never reached Keyway). Its creation time is the call's start, as the open mark recorded it:
 * the same on every replay, so a replay checked against the store books it once.
 */
export function estimatedRow(request: UnfinishedRequest, price: PriceUsage | undefined): UsageRecord {
  const prompt = request.progress?.prompt;
  const outputTokens = request.progress?.outputTokens ?? 0;
  const usage: Usage = {
    inputTokens: prompt?.inputTokens ?? request.inputTokens,
    outputTokens,
    totalTokens: (prompt?.inputTokens ?? request.inputTokens) + outputTokens,
    cachedInputTokens: prompt?.cachedInputTokens ?? 0,
    cacheWriteInputTokens: prompt?.cacheWriteInputTokens ?? 0,
    cacheWrite1hInputTokens: prompt?.cacheWrite1hInputTokens ?? 0,
    reasoningTokens: 0,
  };
  const audit = request.audit;
  return {
    ...identityOf(request),
    provider: request.provider,
    model: request.model,
    requestedModel: request.requestedModel,
    providerKeyId: request.providerKeyId,
    byok: request.byok,
    status: ERROR_TABLE.gateway_stopped.status,
    errorCode: 'gateway_stopped',
    inputTokens: usage.inputTokens,
    outputTokens,
    cachedInputTokens: usage.cachedInputTokens,
    cacheWriteTokens: usage.cacheWriteInputTokens,
    cacheWrite1hTokens: usage.cacheWrite1hInputTokens ?? 0,
    reasoningTokens: 0,
    costUsd: price?.(request.provider, request.model, usage) ?? null,
    latencyMs: request.progress?.elapsedMs ?? 0,
    streamed: request.streamed,
    fallbackAttempts: request.attempts,
    createdAt: new Date(request.createdAt).toISOString(),
    usageEstimated: true,
    audited: audit !== undefined,
    clientIp: audit?.clientIp ?? null,
    actorRole: audit?.actorRole ?? null,
    requestSha256: audit?.requestSha256 ?? null,
  };
}
