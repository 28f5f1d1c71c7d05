// What an attempt's throw means, apart from the candidate loop (attempts.ts) that acts on it. An
// adapter throws the core's KeywayError, or, when it cannot use it (a plugin the compiled binary
// loads from disk) or does not, a plain Error: foreignFailure reads what that says into a provider
// failure or Keyway's own bug. Whichever it is, the key the call used is scrubbed from its message and
// from a logged stack, since upstreams and adapters can echo it in any shape. When every candidate
// failed, finalFailure makes the answer of the last failure and the attempts.

import { KeywayError } from '../errors.ts';
import { redactEchoedKeyForms } from '../credentials/echoed-key-forms.ts';
import type { Logger } from '../logger.ts';
import type { AttemptRecord, RequestContext, RouteCandidate } from '../spec/plugin.ts';
import { FAILURE_REASONS, type ErrorDescriptor, type FailureReason } from '../spec/vocabulary.ts';
import { reasonFromStatus, upstreamFailure } from '../wire/provider-kit.ts';

/** An adapter's own bug is logged with its stack, so it can be fixed; the client is told only its name. */
export function logAdapterBug(
  logger: Logger | undefined,
  context: RequestContext,
  candidate: RouteCandidate,
  error: unknown,
  secret: string | undefined,
): void {
  if (logger === undefined) return;
  let stack = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  if (secret !== undefined && secret.length >= 8) stack = stack.replaceAll(secret, '[REDACTED]');
  logger.error(
    { requestId: context.requestId, provider: candidate.provider, keyId: candidate.key.id, error: stack.slice(0, 4000) },
    'provider adapter failed inside Keyway (not counted against the provider)',
  );
}

const KNOWN_REASONS: ReadonlySet<string> = new Set<FailureReason>(FAILURE_REASONS);

/** What an out-of-tree adapter may set on the Error it throws; every field is checked, none trusted. */
interface ForeignFailureFields {
  reason?: unknown;
  keywayReason?: unknown;
  status?: unknown;
  retryAfterSeconds?: unknown;
}

/**
 * A failure thrown by an adapter that could not use the core's KeywayError (a plugin loaded from disk
 * by the compiled binary, or one that threw a plain Error). What it means depends on what it says:
 *
 * - a `reason` (or `keywayReason`) naming a failure class, or an HTTP `status` (400–599), is the
 *   upstream's answer: a provider failure that keeps its fallback meaning (an unknown reason is a
 *   `server_error`);
 * - a network error (fetch's rejection with a system `code` such as ECONNREFUSED, a TimeoutError) is
 *   a provider failure too: `server_error`, or `timeout`;
 * - anything else (a TypeError, RangeError or SyntaxError from translation code, a stack overflow) is
 *   Keyway's own bug: a 500 `internal_error`, never recorded against the provider's health.
 *
 * The message is scrubbed of secrets like any upstream text; an internal error shows only its name.
 */
export function foreignFailure(provider: string, error: unknown, requestId?: string): KeywayError {
  const fields = (error !== null && typeof error === 'object' ? error : {}) as ForeignFailureFields;
  const claimed = typeof fields.keywayReason === 'string' ? fields.keywayReason : fields.reason;
  const status =
    typeof fields.status === 'number' && Number.isInteger(fields.status) && fields.status >= 400 && fields.status <= 599 ? fields.status : undefined;
  const retryAfterSeconds =
    typeof fields.retryAfterSeconds === 'number' && Number.isFinite(fields.retryAfterSeconds) && fields.retryAfterSeconds >= 0
      ? fields.retryAfterSeconds
      : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof claimed === 'string' || status !== undefined) {
    const reason: FailureReason =
      typeof claimed === 'string' ? (KNOWN_REASONS.has(claimed) ? (claimed as FailureReason) : 'server_error') : reasonFromStatus(status as number);
    return upstreamFailure({ provider, status, reason, message, retryAfterSeconds });
  }
  const network = networkErrorName(error);
  if (network !== undefined) {
    const reason: FailureReason = network === 'TimeoutError' ? 'timeout' : 'server_error';
    return upstreamFailure({ provider, status: undefined, reason, message: `connection failed (${network})` });
  }
  const name = error instanceof Error ? error.name : typeof error;
  return new KeywayError('internal_error', { detail: `${name} in the ${provider} adapter`, requestId }, { extra: { provider } });
}

/** Codes Node, Bun and undici put on a failed connection (fetch rejects with a TypeError carrying one). */
const NETWORK_CODE =
  /^(E[A-Z0-9_]{2,}|UND_ERR_[A-Z_]+|ConnectionRefused|ConnectionClosed|ConnectionReset|FailedToOpenSocket|ConnectionTimeout|TLS\w*|CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/;

function networkErrorName(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'TimeoutError') return 'TimeoutError';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && NETWORK_CODE.test(code) ? `${error.name} ${code}` : undefined;
}

/**
 * Upstreams and adapters can echo the key they were called with, in any shape (keys without a known
 * prefix slip past pattern redaction): the value in play, a short start of it cut with a mask, and
 * base64 of it or of the credential that carried it (echoed-key-forms.ts) are removed from the message,
 * the param and the extra strings (`upstream_code`…). Only a failed attempt pays for the search.
 */
export function withoutSecret(failure: KeywayError, secret: string | undefined): KeywayError {
  const scrubbed = fieldsWithoutSecret(failure, secret);
  if (scrubbed === undefined) return failure;
  const { message, param, extra } = scrubbed;
  return new KeywayError(
    failure.code,
    {},
    { message, param: param ?? null, reason: failure.reason, retryAfterSeconds: failure.retryAfterSeconds, extra, headers: failure.headers },
  );
}

/** An error that travelled as a descriptor (a stream's error event), scrubbed as withoutSecret does; the same object when nothing held the key. */
export function descriptorWithoutSecret(descriptor: ErrorDescriptor, secret: string | undefined): ErrorDescriptor {
  const scrubbed = fieldsWithoutSecret(descriptor, secret);
  if (scrubbed === undefined) return descriptor;
  const result: ErrorDescriptor = { ...descriptor, message: scrubbed.message };
  if (scrubbed.param !== undefined) result.param = scrubbed.param;
  if (scrubbed.extra !== undefined) result.extra = scrubbed.extra;
  return result;
}

/** The texts of an error that can quote the upstream. */
interface EchoingFields {
  message: string;
  param?: string | null | undefined;
  extra?: Record<string, unknown> | undefined;
}

/** The fields without the key's forms; undefined when none held one (the common case allocates nothing). */
function fieldsWithoutSecret(fields: EchoingFields, secret: string | undefined): EchoingFields | undefined {
  if (secret === undefined || secret.length < 8) return undefined;
  const message = redactEchoedKeyForms(fields.message, secret);
  const param = typeof fields.param === 'string' ? redactEchoedKeyForms(fields.param, secret) : fields.param;
  const extra = extraWithoutSecret(fields.extra, secret);
  if (message === fields.message && param === fields.param && extra === fields.extra) return undefined;
  return { message, param, extra };
}

/** The extras with their strings scrubbed; the same object when none held the key. */
function extraWithoutSecret(extra: Record<string, unknown> | undefined, secret: string): Record<string, unknown> | undefined {
  if (extra === undefined) return undefined;
  let scrubbed: Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(extra)) {
    if (typeof value !== 'string') continue;
    const redacted = redactEchoedKeyForms(value, secret);
    if (redacted === value) continue;
    scrubbed ??= { ...extra };
    scrubbed[name] = redacted;
  }
  return scrubbed ?? extra;
}

/**
 * Whether a last "model not found" may stand as the answer's 404: only when every attempt failed so
 * for the very model the client named. Then its name is what is wrong (a typo, a model its providers
 * lack). A substitute routing chose, or a chain that met other failures first, says nothing against
 * the client's model: that is an upstream failure like any other (PRODUCT.md: 502 when the last
 * failure is neither a rate limit nor a timeout).
 */
function clientModelNotFound(attempts: readonly AttemptRecord[], requestedModel: string): boolean {
  // A skipped candidate never asked its provider for the model: it says nothing either way.
  return attempts.every((attempt) => attempt.skipped === true || (attempt.reason === 'model_not_available' && attempt.model === requestedModel));
}

/** How an attempt reads in the answer's message: a skipped candidate says so. */
function attemptSummary(attempt: AttemptRecord): string {
  return `${attempt.provider}/${attempt.model} (${attempt.skipped === true ? `skipped: ${attempt.reason}` : attempt.reason})`;
}

/** When every candidate failed, the answer follows the last failure and lists every attempt. */
export function finalFailure(lastError: KeywayError | undefined, attempts: AttemptRecord[], requestedModel: string, requestId?: string): KeywayError {
  if (lastError === undefined)
    return new KeywayError('no_provider_available', { detail: 'No provider could serve this request: every candidate is unavailable.' });
  const listed = attempts.map((attempt) => ({
    provider: attempt.provider,
    model: attempt.model,
    key_id: attempt.keyId,
    owner: attempt.owner,
    reason: attempt.reason,
    status: attempt.status ?? null,
    ...(attempt.skipped === true ? { skipped: true } : {}),
  }));
  // The copy's message is fixed: it names the request id now, where the failure was raised without it (the key vault).
  const lastMessage = lastError.messageFor(requestId);
  const message =
    attempts.length <= 1 ? lastMessage : `All ${attempts.length} attempts failed: ${attempts.map(attemptSummary).join(', ')}. Last error: ${lastMessage}`;
  const notFound = lastError.code === 'model_not_found';
  const substituteMissing = notFound && !clientModelNotFound(attempts, requestedModel);
  return new KeywayError(
    substituteMissing ? 'upstream_error' : lastError.code,
    {},
    {
      message,
      // The client's model is what is wrong: `param` names it, as Keyway's own unknown-model 404 does (QA14 docs 5).
      param: substituteMissing ? null : notFound ? 'model' : lastError.param,
      reason: lastError.reason,
      retryAfterSeconds: lastError.retryAfterSeconds,
      extra: { ...lastError.extra, attempts: listed },
    },
  );
}
