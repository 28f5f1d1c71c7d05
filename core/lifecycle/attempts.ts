// The call stage's loop: try the route's candidates in order, fall back only on the request's
// fallback reasons, retry whole passes with backoff when asked to, and stop at the attempt and
// time caps. Every attempt is recorded for X-Fallback-Attempts, the health monitor and the 502.

import { isClientKey } from '../credentials/client-keys.ts';
import { keySearchOf } from '../credentials/key-echo.ts';
import type { GatewayConfig } from '../config.ts';
import { AttemptDeadlines } from './attempt-deadlines.ts';
import { DrainEnded, DrainStop, type DrainWatch } from './drain.ts';
import { finalFailure, foreignFailure, logAdapterBug, withoutSecret } from './attempt-failures.ts';
import type { UpstreamSlots } from './upstream-slots.ts';
import { KeywayError } from '../errors.ts';
import type { HealthMonitor } from '../routing/health/monitor.ts';
import { KeyUnusableHere, type KeyVault } from '../credentials/key-vault.ts';
import type { Logger } from '../logger.ts';
import { scopeFor, trustForKey, type UpstreamPolicy } from '../wire/upstream-policy.ts';
import type { AttemptRecord, CallContext, ModelResolution, ProviderAdapter, RequestContext, RouteCandidate, ServedBy } from '../spec/plugin.ts';
import type { FailureReason, RoutingOptions } from '../spec/vocabulary.ts';

export const DEFAULT_FALLBACK_REASONS: readonly FailureReason[] = ['rate_limit', 'timeout', 'server_error', 'model_not_available'];
/** A hard ceiling, whatever a request asks for: runaway retries cost the account money. */
const MAX_ATTEMPTS_CEILING = 20;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 8_000;

export interface RetryPolicy {
  reasons: readonly string[];
  /** Extra passes over the candidate list after every candidate failed. */
  retries: number;
  maxAttempts: number;
  totalTimeoutMs: number;
}

export interface AttemptSuccess<Value> {
  value: Value;
  candidate: RouteCandidate;
  call: CallContext;
  /** Aborts the upstream call (client gone, total deadline). */
  abort: AbortController;
  /** Clears the total-deadline timer once the response is complete. */
  done(): void;
}

/**
 * What an attempt does between its upstream's first byte and handing the answer on (a stream's opening
 * hold, core/lifecycle/opening-hold.ts). The first-byte deadline is met by then, and only the total
 * deadline bounds it; its failure is the attempt's, before anything reached the client: the request
 * may still fall back.
 */
export type AttemptConfirm<Value> = (value: Value) => Promise<Value>;

/** How each attempt calls its upstream: `run` settles at the first byte, `confirm` (when given) after it. */
interface AttemptCall<Value> {
  run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>;
  confirm: AttemptConfirm<Value> | undefined;
}

export interface AttemptDependencies {
  providers: ReadonlyMap<string, ProviderAdapter>;
  vault: KeyVault;
  health: HealthMonitor;
  config: GatewayConfig;
  /** Fair shares of the upstream connections, per account and per upstream (none: no limit). */
  slots?: UpstreamSlots;
  /** The upstream address policy every adapter call runs under (none: addresses are not checked). */
  upstream?: UpstreamPolicy;
  /** Where an adapter's own bug (a TypeError, a stack overflow) is logged with its stack. */
  logger?: Logger;
  /**
   * Called as an attempt calls its upstream (Accountant.opened: the usage journal marks the request
   * in flight, so a crash before it is booked still books it).
   */
  upstreamCalled?: (context: RequestContext, candidate: RouteCandidate) => void;
  random?: () => number;
  sleep?: (milliseconds: number, signal: AbortSignal | undefined) => Promise<void>;
  /** The shutdown drain: at its deadline, or a second signal, the attempt under way is aborted and no other starts. */
  drain?: DrainWatch;
}

function numberSetting(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

export function retryPolicyFor(routing: RoutingOptions, config: GatewayConfig, candidateCount: number): RetryPolicy {
  const retries = Math.min(5, Math.max(0, Math.floor(numberSetting(routing.retries) ?? 0)));
  return {
    reasons: routing.fallback_reasons ?? DEFAULT_FALLBACK_REASONS,
    retries,
    maxAttempts: Math.min(MAX_ATTEMPTS_CEILING, Math.floor(numberSetting(routing.max_attempts) ?? candidateCount * (retries + 1))),
    totalTimeoutMs: numberSetting(routing.total_timeout_ms) ?? config.totalTimeoutMs,
  };
}

/** Exponential backoff with jitter, never shorter than the provider's Retry-After. */
export function backoffDelay(pass: number, retryAfterSeconds: number | undefined, random: () => number): number {
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** pass);
  const jittered = exponential / 2 + (random() * exponential) / 2;
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

const defaultSleep = (milliseconds: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** What ends a backoff wait: the client leaving, or the drain ending requests (a rare path: allocates). */
function drainOrClient(stop: DrainStop, clientSignal: AbortSignal | undefined): AbortSignal {
  const drained = new AbortController();
  stop.follow(drained);
  return clientSignal === undefined ? drained.signal : AbortSignal.any([clientSignal, drained.signal]);
}

/** Per-attempt deadlines: the request's, else the provider key's settings, else the configured default. */
function deadlinesFor(routing: RoutingOptions, candidate: RouteCandidate, config: GatewayConfig): { firstByteMs: number; connectMs: number | undefined } {
  const settings = candidate.key.settings;
  return {
    firstByteMs: numberSetting(routing.timeout_ms) ?? numberSetting(settings.first_byte_timeout_ms) ?? config.firstByteTimeoutMs,
    connectMs: numberSetting(routing.connect_timeout_ms) ?? numberSetting(settings.connect_timeout_ms),
  };
}

/**
 * Tries the candidates until one answers (a non-streamed answer in full, a stream's first part, then
 * what `confirm` waits for). Ended by the shutdown drain (core/lifecycle/drain.ts) while it waits for
 * an upstream, it rejects with the drain's DrainEnded: the upstream call is aborted, and no other
 * attempt or retry starts.
 */
export async function runAttempts<Value>(
  dependencies: AttemptDependencies,
  context: RequestContext,
  routing: RoutingOptions,
  run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>,
  clientSignal: AbortSignal | undefined,
  confirm?: AttemptConfirm<Value>,
): Promise<AttemptSuccess<Value>> {
  const attempt: AttemptCall<Value> = { run, confirm };
  if (dependencies.drain === undefined) return attemptCandidates(dependencies, context, routing, attempt, clientSignal, undefined);
  const stop = new DrainStop(dependencies.drain);
  try {
    return await attemptCandidates(dependencies, context, routing, attempt, clientSignal, stop);
  } finally {
    stop.dispose();
  }
}

async function attemptCandidates<Value>(
  dependencies: AttemptDependencies,
  context: RequestContext,
  routing: RoutingOptions,
  attempt: AttemptCall<Value>,
  clientSignal: AbortSignal | undefined,
  drained: DrainStop | undefined,
): Promise<AttemptSuccess<Value>> {
  const policy = retryPolicyFor(routing, dependencies.config, context.candidates.length);
  const random = dependencies.random ?? Math.random;
  const sleep = dependencies.sleep ?? defaultSleep;
  const started = performance.now();
  let lastError: KeywayError | undefined;
  // Providers whose adapter threw a bug of its own: their other keys would fail the same way.
  let broken: Set<string> | undefined;
  // Candidates (provider and model) whose translation refused the request: the refusal is the
  // translator's, so that provider's other keys, and a later pass, would refuse it the same way.
  let refused: Set<string> | undefined;
  let refusal: KeywayError | undefined;
  let skipped = 0;
  let stop = false;
  const warningsBefore = context.warnings.length;
  for (let pass = 0; pass <= policy.retries && !stop; pass++) {
    if (pass > 0) {
      // Nothing reached an upstream (every candidate refused or unavailable): another pass would not either.
      if (lastError === undefined) break;
      const delay = backoffDelay(pass - 1, lastError.retryAfterSeconds, random);
      if (performance.now() - started + delay > policy.totalTimeoutMs || clientSignal?.aborted) break;
      await sleep(delay, drained === undefined ? clientSignal : drainOrClient(drained, clientSignal));
    }
    for (let position = 0; position < context.candidates.length; position++) {
      if (drained?.failure !== undefined) throw drained.failure;
      // The cap counts upstream attempts: a skipped candidate never reached one.
      if (context.attempts.length - skipped >= policy.maxAttempts) {
        stop = true;
        break;
      }
      const candidate = context.candidates[position] as RouteCandidate;
      const adapter = dependencies.providers.get(candidate.provider);
      // Health can change during a request (an earlier attempt's auth error takes a key out).
      if (
        adapter === undefined ||
        broken?.has(candidate.provider) ||
        refused?.has(refusalScope(candidate)) ||
        (context.attempts.length > 0 && !dependencies.health.isAvailable(candidate.key))
      )
        continue;
      const remainingMs = policy.totalTimeoutMs - (performance.now() - started);
      if (remainingMs <= 0) {
        stop = true;
        break;
      }
      // Warnings are the attempt's own: what a failed attempt's translation left out says nothing of the answer that serves.
      context.warnings.length = warningsBefore;
      const outcome = await attemptOnce(dependencies, context, routing, candidate, adapter, attempt, clientSignal, remainingMs, drained);
      if (outcome.success !== undefined) return outcome.success;
      // The drain's answer, whatever the aborted call failed with: no fallback, no retry.
      if (drained?.failure !== undefined) throw drained.failure;
      const failure = outcome.failure as KeywayError;
      if (clientSignal?.aborted) throw clientClosed();
      // A candidate that cannot serve what the request asks (n > 1 where the provider has one choice)
      // is skipped, not the end of the request: the next one may serve it, and an upstream failure
      // met before stays the answer's (QA14 migrator 7: an OpenAI 500, then Anthropic's refusal of
      // n: 2, answered a 400 that told the client its request was wrong, and Google was never tried).
      if (isCandidateRefusal(failure)) {
        (refused ??= new Set()).add(refusalScope(candidate));
        refusal ??= failure;
        skipped++;
        continue;
      }
      // A key sealed under a master key version this instance lacks (a rolling restart onto a new
      // one): that key only is skipped, and the provider's other keys may still serve (QA15 cluster #10).
      if (failure instanceof KeyUnusableHere) {
        refusal ??= failure;
        skipped++;
        continue;
      }
      // Once the request is falling back (an earlier upstream failure had a fallback reason), a
      // substitute's upstream 400 answers the translation for a provider the client did not choose,
      // not the request (QA15 F1: Anthropic refusing OpenAI's "\n\n" stop sequence ended the chain
      // after OpenAI's 500, and Google was never tried): the next candidate is tried, that provider and
      // model are not asked again, and the earlier failure stays the answer's.
      if (lastError !== undefined && isSubstituteRefusal(failure, candidate, context.resolution)) {
        setAside(context.attempts);
        (refused ??= new Set()).add(refusalScope(candidate));
        continue;
      }
      lastError = failure;
      if (outcome.adapterBug) (broken ??= new Set()).add(candidate.provider);
      const isLast = position === context.candidates.length - 1 && pass === policy.retries;
      // Keyway's own failure is no provider's: it falls back when the request falls back on server errors
      // (a key that cannot be decrypted, or whose key source failed, is one).
      const fallbackReason = failure.code === 'internal_error' || failure.code === 'no_provider_available' ? 'server_error' : failure.reason;
      if (fallbackReason === undefined || !policy.reasons.includes(fallbackReason) || isLast) {
        stop = true;
        break;
      }
    }
  }
  // A client that left during a backoff between attempts: its own doing, as above.
  if (clientSignal?.aborted) throw clientClosed();
  // The refusal is the answer only when no upstream was tried: then the request is what no candidate could serve.
  throw finalFailure(lastError ?? refusal, context.attempts, context.resolution?.model ?? context.request.model, context.requestId);
}

/**
 * The answer, for the books, of a client that left before its answer began (before the response's
 * head, while an attempt waited for its first byte, a slot or a backoff): 499 `client_closed`, as a
 * client that leaves mid-stream is booked. It was booked 502 `upstream_error` (QA18 streams F1), which
 * counted a user pressing Stop as a provider failure in the metrics, the logs and error-rate alerts.
 */
function clientClosed(): KeywayError {
  return new KeywayError('client_closed', { detail: 'The client closed the connection before the answer began.' });
}

/**
 * A provider adapter's refusal to translate the request: `unsupported_feature` (a feature the provider
 * lacks) with no failure reason, so no upstream was called. It says the candidate cannot serve this
 * request, not that the request is wrong: another provider may serve it. Other translation refusals
 * (`invalid_field`: a value the request should not have sent) still end the request.
 */
export function isCandidateRefusal(failure: KeywayError): boolean {
  return failure.code === 'unsupported_feature' && failure.reason === undefined;
}

/**
 * A failure raised before the upstream was called: a 4xx with no failure reason (every failure an
 * upstream answered, or a network error, carries one), as the adapter's translation refusals
 * (`invalid_field`, `unsupported_feature`) and `upstream_not_allowed`.
 */
function isRefusedBeforeCall(failure: KeywayError): boolean {
  return failure.reason === undefined && failure.status < 500;
}

/**
 * A candidate routing chose for the client's model: another provider (a chain's next provider, a
 * cheaper one), another model, or any member of a class the client named. The client's own
 * provider and model, on any of its keys, is not one.
 */
export function isSubstitute(candidate: Pick<RouteCandidate, 'provider' | 'model'>, resolution: ModelResolution | undefined): boolean {
  if (resolution === undefined) return false;
  if (resolution.modelClass !== undefined || candidate.model !== resolution.model) return true;
  return resolution.provider !== undefined && candidate.provider !== resolution.provider;
}

/**
 * An upstream 400/422 (`invalid_request`, never a fallback reason) from a substitute: the request
 * was valid for what the client named, and Keyway translated it for a provider the client did not
 * choose, so the refusal more likely says what the translation sent than what the client did.
 */
function isSubstituteRefusal(failure: KeywayError, candidate: RouteCandidate, resolution: ModelResolution | undefined): boolean {
  return failure.reason === 'invalid_request' && isSubstitute(candidate, resolution);
}

/** Marks the attempt just recorded (attemptOnce pushes it last) as set aside: it does not make the answer. */
function setAside(attempts: AttemptRecord[]): void {
  const record = attempts.at(-1);
  if (record !== undefined) record.setAside = true;
}

function refusalScope(candidate: RouteCandidate): string {
  return `${candidate.provider}\u0000${candidate.model}`;
}

interface AttemptOutcome<Value> {
  success?: AttemptSuccess<Value>;
  failure?: KeywayError;
  /** The adapter threw an error of Keyway's own making (not a provider failure). */
  adapterBug?: boolean;
}

async function attemptOnce<Value>(
  dependencies: AttemptDependencies,
  context: RequestContext,
  routing: RoutingOptions,
  candidate: RouteCandidate,
  adapter: ProviderAdapter,
  attempt: AttemptCall<Value>,
  clientSignal: AbortSignal | undefined,
  remainingMs: number,
  stop: DrainStop | undefined,
): Promise<AttemptOutcome<Value>> {
  const { firstByteMs, connectMs } = deadlinesFor(routing, candidate, dependencies.config);
  // A slot of the account's and of the upstream's share, held until the answer is complete. Time
  // queued for it is Keyway's, not the provider's: the latency clock and the first-byte deadline
  // start once it is held, and a refusal (gateway_busy) is no failure of the provider's.
  const entering = dependencies.slots?.enter(context.principal.accountId, candidate, adapter, Math.min(firstByteMs, remainingMs), clientSignal);
  let release: (() => void) | undefined;
  if (entering instanceof Promise) {
    const queuedAt = performance.now();
    const entered = await entering;
    if (entered instanceof KeywayError) return { failure: entered };
    release = entered;
    remainingMs -= performance.now() - queuedAt;
  } else release = entering;
  const started = performance.now();
  const abort = new AbortController();
  stop?.follow(abort);
  const onClientGone = () => abort.abort(new KeywayError('upstream_error', { detail: 'the client closed the connection' }, { reason: 'server_error' }));
  clientSignal?.addEventListener('abort', onClientGone, { once: true });
  const deadlines = new AttemptDeadlines(
    { provider: candidate.provider, firstByteMs: Math.min(firstByteMs, remainingMs), remainingMs, streamed: context.request.stream === true },
    abort,
  );
  let call: CallContext | undefined;
  /** Whether the upstream was called: a deadline or the drain may end the attempt before. */
  let calling = false;
  /** Whether the upstream had begun its answer (a stream's first part in hand) when the attempt ended. */
  let answering = false;
  try {
    const credential = dependencies.vault.credential(candidate.key, {
      requestId: context.requestId,
      principalKeyId: context.principal.keyId,
      principalAccountId: context.principal.accountId,
    });
    call = {
      requestId: context.requestId,
      credential: credential instanceof Promise ? await credential : credential,
      model: candidate.model,
      requestedModel: context.request.model,
      signal: abort.signal,
      warnings: context.warnings,
      upstream: {},
      connectTimeoutMs: connectMs,
      onResponseHead: deadlines.responseHead,
    };
    // On the call context, not in an AsyncLocalStorage scope: entering one per attempt cost ~3% of throughput.
    if (dependencies.upstream !== undefined) call.upstreamScope = scopeFor(dependencies.upstream, trustForKey(call.credential.settings));
    // Aborted while the key was produced (the drain, a deadline): no upstream call, nothing to mark in flight.
    if (abort.signal.aborted) throw abort.signal.reason;
    calling = true;
    dependencies.upstreamCalled?.(context, candidate);
    const first = await attempt.run(adapter, call);
    answering = true;
    const latencyMs = performance.now() - started;
    // The call is over at the total deadline: its slots go back even if nobody reads the answer any more.
    deadlines.answerInHand(() => release?.());
    const value = attempt.confirm === undefined ? first : await confirmed(attempt.confirm, first, abort.signal);
    // The client's own key (X-Provider-Key) is one request's: it says nothing about the health of any stored key.
    if (!isClientKey(candidate.key)) dependencies.health.record(candidate.key, { ok: true, latencyMs, rateLimitRemaining: call.upstream.rateLimitRemaining });
    const upstreamKey = keySearchOf(call.credential);
    context.served = {
      ...servedBy(candidate, started),
      firstByteAt: started + latencyMs,
      redactKey: (text) => (upstreamKey === undefined ? text : upstreamKey.redact(text)),
    };
    return {
      success: {
        value,
        candidate,
        call,
        abort,
        done: () => {
          deadlines.cancel();
          clientSignal?.removeEventListener('abort', onClientGone);
          release?.();
        },
      },
    };
  } catch (error) {
    deadlines.cancel();
    release?.();
    clientSignal?.removeEventListener('abort', onClientGone);
    // A deadline or a cancel aborts the call with its own KeywayError: an adapter that let fetch's
    // rejection through (or wrapped it) failed because of it.
    const deadline: unknown = abort.signal.aborted ? abort.signal.reason : undefined;
    if (!abort.signal.aborted) abort.abort();
    // The drain's end is the failure whatever the adapter made of the aborted call.
    const classified =
      deadline instanceof DrainEnded
        ? deadline
        : error instanceof KeywayError
          ? error
          : deadline instanceof KeywayError
            ? deadline
            : foreignFailure(candidate.provider, error, context.requestId);
    const failure = deadlines.afterHead(withoutSecret(classified, call?.credential.apiKey));
    const durationMs = performance.now() - started;
    const adapterBug = !(error instanceof KeywayError) && classified.code === 'internal_error';
    if (adapterBug) logAdapterBug(dependencies.logger, context, candidate, error, call?.credential.apiKey);
    // An adapter that refuses to translate a request (invalid_field, unsupported_feature: a 4xx with no
    // failure reason) never reached the provider, so the refusal says nothing about its health; nor
    // does Keyway's own failure (internal_error, plugin_error: a bug, a key that cannot be decrypted).
    const reachedProvider = failure.reason !== undefined || (failure.status >= 500 && !KEYWAY_FAILURES.has(failure.code));
    if (!clientSignal?.aborted && reachedProvider && !isClientKey(candidate.key)) {
      dependencies.health.record(candidate.key, {
        ok: false,
        reason: failure.reason,
        latencyMs: durationMs,
        retryAfterSeconds: failure.retryAfterSeconds,
        rateLimitRemaining: call?.upstream.rateLimitRemaining,
      });
      // A refused key is out on every worker before anyone is told (rare: one message round trip).
      if (failure.reason === 'auth_error') await dependencies.health.shared();
    }
    if (clientSignal?.aborted && answering) context.served ??= servedBy(candidate, started);
    if (!clientSignal?.aborted) {
      const record = attemptRecord(candidate, failure, durationMs, started, isCandidateRefusal(failure) || failure instanceof KeyUnusableHere);
      // No credential yet (the key vault failed), ended before the call, or a refusal of Keyway's own before it.
      if (!calling || isRefusedBeforeCall(failure)) record.upstreamCalled = false;
      context.attempts.push(record);
    }
    return { failure, adapterBug };
  }
}

/**
 * Who served a request whose client left while `confirm` held its answer (a stream's opening, held a
 * moment so an error right after it can still fall back: opening-hold.ts). The provider had begun the
 * stream and bills the prompt, so the row books it as a client leaving after the first byte is booked
 * (the runner adds the prompt's estimate), not as a request nobody answered (QA19: "no provider, $0").
 */
function servedBy(candidate: RouteCandidate, startedAt: number): ServedBy {
  return { provider: candidate.provider, model: candidate.model, keyId: candidate.key.id, owner: candidate.key.owner, startedAt };
}

/**
 * The answer once `confirm` is done with it. A call aborted meanwhile (the client left, the total
 * deadline, the drain) failed with the abort's reason, whatever its stream made of the abort.
 */
async function confirmed<Value>(confirm: AttemptConfirm<Value>, value: Value, signal: AbortSignal): Promise<Value> {
  const answer = await confirm(value);
  if (signal.aborted) throw signal.reason;
  return answer;
}

/** Failures that are Keyway's, never a provider's: they are not recorded against its health. */
// no_provider_available before a call: the key vault could not produce the key (removed, or its key source failed);
// not_ready: the shutdown drain ended the call (core/lifecycle/drain.ts).
const KEYWAY_FAILURES: ReadonlySet<string> = new Set(['internal_error', 'plugin_error', 'no_provider_available', 'not_ready']);

function attemptRecord(candidate: RouteCandidate, failure: KeywayError, durationMs: number, startedAt: number, skipped: boolean): AttemptRecord {
  const upstreamStatus = failure.extra?.upstream_status;
  const record: AttemptRecord = {
    provider: candidate.provider,
    model: candidate.model,
    keyId: candidate.key.id,
    owner: candidate.key.owner,
    reason: failure.reason ?? failure.code,
    status: typeof upstreamStatus === 'number' ? upstreamStatus : undefined,
    durationMs: Math.round(durationMs * 1000) / 1000,
    startedAt,
  };
  if (skipped) record.skipped = true;
  return record;
}
