// The call stage's loop: try the route's candidates in order, fall back only on the request's
// fallback reasons, retry whole passes with backoff when asked to, and stop at the attempt and
// time caps. Every attempt is recorded for X-Fallback-Attempts, the health monitor and the 502.

import type { GatewayConfig } from '../config.ts';
import { scheduleDeadline } from './deadlines.ts';
import { KeywayError } from '../errors.ts';
import { upstreamFailure } from '../wire/provider-kit.ts';
import type { HealthMonitor } from '../routing/health/monitor.ts';
import type { KeyVault } from '../credentials/key-vault.ts';
import type { AttemptRecord, CallContext, ProviderAdapter, RequestContext, RouteCandidate } from '../spec/plugin.ts';
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

export interface AttemptDependencies {
  providers: ReadonlyMap<string, ProviderAdapter>;
  vault: KeyVault;
  health: HealthMonitor;
  config: GatewayConfig;
  random?: () => number;
  sleep?: (milliseconds: number, signal: AbortSignal | undefined) => Promise<void>;
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

/** Per-attempt deadlines: the request's, else the provider key's settings, else the configured default. */
function deadlinesFor(routing: RoutingOptions, candidate: RouteCandidate, config: GatewayConfig): { firstByteMs: number; connectMs: number | undefined } {
  const settings = candidate.key.settings;
  return {
    firstByteMs: numberSetting(routing.timeout_ms) ?? numberSetting(settings.first_byte_timeout_ms) ?? config.firstByteTimeoutMs,
    connectMs: numberSetting(routing.connect_timeout_ms) ?? numberSetting(settings.connect_timeout_ms),
  };
}

export async function runAttempts<Value>(
  dependencies: AttemptDependencies,
  context: RequestContext,
  routing: RoutingOptions,
  run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>,
  clientSignal: AbortSignal | undefined,
): Promise<AttemptSuccess<Value>> {
  const policy = retryPolicyFor(routing, dependencies.config, context.candidates.length);
  const random = dependencies.random ?? Math.random;
  const sleep = dependencies.sleep ?? defaultSleep;
  const started = performance.now();
  let lastError: KeywayError | undefined;
  let stop = false;
  for (let pass = 0; pass <= policy.retries && !stop; pass++) {
    if (pass > 0) {
      const delay = backoffDelay(pass - 1, lastError?.retryAfterSeconds, random);
      if (performance.now() - started + delay > policy.totalTimeoutMs || clientSignal?.aborted) break;
      await sleep(delay, clientSignal);
    }
    for (let position = 0; position < context.candidates.length; position++) {
      if (context.attempts.length >= policy.maxAttempts) {
        stop = true;
        break;
      }
      const candidate = context.candidates[position] as RouteCandidate;
      const adapter = dependencies.providers.get(candidate.provider);
      // Health can change during a request (an earlier attempt's auth error takes a key out).
      if (adapter === undefined || (context.attempts.length > 0 && !dependencies.health.isAvailable(candidate.key))) continue;
      const remainingMs = policy.totalTimeoutMs - (performance.now() - started);
      if (remainingMs <= 0) {
        stop = true;
        break;
      }
      const outcome = await attemptOnce(dependencies, context, routing, candidate, adapter, run, clientSignal, remainingMs);
      if (outcome.success !== undefined) return outcome.success;
      const failure = outcome.failure as KeywayError;
      if (clientSignal?.aborted) throw failure;
      lastError = failure;
      const isLast = position === context.candidates.length - 1 && pass === policy.retries;
      if (failure.reason === undefined || !policy.reasons.includes(failure.reason) || isLast) {
        stop = true;
        break;
      }
    }
  }
  throw finalFailure(lastError, context.attempts);
}

interface AttemptOutcome<Value> {
  success?: AttemptSuccess<Value>;
  failure?: KeywayError;
}

async function attemptOnce<Value>(
  dependencies: AttemptDependencies,
  context: RequestContext,
  routing: RoutingOptions,
  candidate: RouteCandidate,
  adapter: ProviderAdapter,
  run: (adapter: ProviderAdapter, call: CallContext) => Promise<Value>,
  clientSignal: AbortSignal | undefined,
  remainingMs: number,
): Promise<AttemptOutcome<Value>> {
  const { firstByteMs, connectMs } = deadlinesFor(routing, candidate, dependencies.config);
  const started = performance.now();
  const abort = new AbortController();
  const onClientGone = () => abort.abort(new KeywayError('upstream_error', { detail: 'the client closed the connection' }, { reason: 'server_error' }));
  clientSignal?.addEventListener('abort', onClientGone, { once: true });
  const firstByteDeadline = Math.min(firstByteMs, remainingMs);
  const firstByteTimer = scheduleDeadline(firstByteDeadline, () =>
    abort.abort(
      new KeywayError(
        'upstream_timeout',
        { detail: `${candidate.provider} sent no first byte within ${Math.round(firstByteDeadline)} ms` },
        { reason: 'timeout', extra: { provider: candidate.provider } },
      ),
    ),
  );
  let call: CallContext | undefined;
  try {
    const credential = dependencies.vault.credential(candidate.key);
    call = {
      requestId: context.requestId,
      credential: credential instanceof Promise ? await credential : credential,
      model: candidate.model,
      signal: abort.signal,
      warnings: context.warnings,
      upstream: {},
      connectTimeoutMs: connectMs,
    };
    const value = await run(adapter, call);
    firstByteTimer.cancel();
    const latencyMs = performance.now() - started;
    dependencies.health.record(candidate.key, { ok: true, latencyMs, rateLimitRemaining: call.upstream.rateLimitRemaining });
    const totalTimer = scheduleDeadline(Math.max(1, remainingMs - latencyMs), () =>
      abort.abort(new KeywayError('upstream_timeout', { detail: `${candidate.provider} did not finish in time` }, { reason: 'timeout' })),
    );
    context.served = { provider: candidate.provider, model: candidate.model, keyId: candidate.key.id, owner: candidate.key.owner };
    return {
      success: {
        value,
        candidate,
        call,
        abort,
        done: () => {
          totalTimer.cancel();
          clientSignal?.removeEventListener('abort', onClientGone);
        },
      },
    };
  } catch (error) {
    firstByteTimer.cancel();
    clientSignal?.removeEventListener('abort', onClientGone);
    if (!abort.signal.aborted) abort.abort();
    const failure = withoutSecret(error instanceof KeywayError ? error : foreignFailure(candidate.provider, error), call?.credential.apiKey);
    const durationMs = performance.now() - started;
    // An adapter that refuses to translate a request (invalid_field, unsupported_feature: a 4xx with no
    // failure reason) never reached the provider, so the refusal says nothing about its health.
    const reachedProvider = failure.reason !== undefined || failure.status >= 500;
    if (!clientSignal?.aborted && reachedProvider) {
      dependencies.health.record(candidate.key, {
        ok: false,
        reason: failure.reason,
        latencyMs: durationMs,
        retryAfterSeconds: failure.retryAfterSeconds,
        rateLimitRemaining: call?.upstream.rateLimitRemaining,
      });
    }
    if (!clientSignal?.aborted) context.attempts.push(attemptRecord(candidate, failure, durationMs));
    return { failure };
  }
}

const FAILURE_REASONS: ReadonlySet<string> = new Set<FailureReason>([
  'rate_limit',
  'timeout',
  'server_error',
  'model_not_available',
  'quota_exceeded',
  'auth_error',
  'context_length_exceeded',
  'content_filtered',
  'invalid_request',
]);

/** What an out-of-tree adapter may set on the Error it throws; every field is checked, none trusted. */
interface ForeignFailureFields {
  reason?: unknown;
  keywayReason?: unknown;
  status?: unknown;
  retryAfterSeconds?: unknown;
}

/**
 * A failure thrown by an adapter that could not use the core's KeywayError (a plugin loaded from disk
 * by the compiled binary, or one that threw a plain Error). A `reason` (or `keywayReason`) naming a
 * failure class keeps its fallback meaning; the message is scrubbed of secrets like any upstream text.
 */
export function foreignFailure(provider: string, error: unknown): KeywayError {
  const fields = (error !== null && typeof error === 'object' ? error : {}) as ForeignFailureFields;
  const claimed = typeof fields.keywayReason === 'string' ? fields.keywayReason : fields.reason;
  const reason = typeof claimed === 'string' && FAILURE_REASONS.has(claimed) ? (claimed as FailureReason) : 'server_error';
  const status =
    typeof fields.status === 'number' && Number.isInteger(fields.status) && fields.status >= 100 && fields.status <= 599 ? fields.status : undefined;
  const retryAfterSeconds =
    typeof fields.retryAfterSeconds === 'number' && Number.isFinite(fields.retryAfterSeconds) && fields.retryAfterSeconds >= 0
      ? fields.retryAfterSeconds
      : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return upstreamFailure({ provider, status, reason, message, retryAfterSeconds });
}

/**
 * Upstreams and adapters can echo the key they were called with, in any shape (keys without a known
 * prefix slip past pattern redaction): the exact value in play is removed from the message.
 */
function withoutSecret(failure: KeywayError, secret: string | undefined): KeywayError {
  if (secret === undefined || secret.length < 8 || !failure.message.includes(secret)) return failure;
  return new KeywayError(
    failure.code,
    {},
    {
      message: failure.message.replaceAll(secret, '[REDACTED]'),
      param: failure.param,
      reason: failure.reason,
      retryAfterSeconds: failure.retryAfterSeconds,
      extra: failure.extra,
      headers: failure.headers,
    },
  );
}

function attemptRecord(candidate: RouteCandidate, failure: KeywayError, durationMs: number): AttemptRecord {
  const upstreamStatus = failure.extra?.upstream_status;
  return {
    provider: candidate.provider,
    model: candidate.model,
    keyId: candidate.key.id,
    owner: candidate.key.owner,
    reason: failure.reason ?? failure.code,
    status: typeof upstreamStatus === 'number' ? upstreamStatus : undefined,
    durationMs: Math.round(durationMs * 1000) / 1000,
  };
}

/** When every candidate failed, the answer follows the last failure and lists every attempt. */
export function finalFailure(lastError: KeywayError | undefined, attempts: AttemptRecord[]): KeywayError {
  if (lastError === undefined)
    return new KeywayError('no_provider_available', { detail: 'No provider could serve this request: every candidate is unavailable.' });
  const listed = attempts.map((attempt) => ({
    provider: attempt.provider,
    model: attempt.model,
    key_id: attempt.keyId,
    owner: attempt.owner,
    reason: attempt.reason,
    status: attempt.status ?? null,
  }));
  const message =
    attempts.length <= 1
      ? lastError.message
      : `All ${attempts.length} attempts failed: ${attempts.map((attempt) => `${attempt.provider}/${attempt.model} (${attempt.reason})`).join(', ')}. Last error: ${lastError.message}`;
  return new KeywayError(
    lastError.code,
    {},
    {
      message,
      param: lastError.param,
      reason: lastError.reason,
      retryAfterSeconds: lastError.retryAfterSeconds,
      extra: { ...lastError.extra, attempts: listed },
    },
  );
}
