// What an attempt's throw means, apart from the candidate loop (attempts.ts) that acts on it. An
// adapter throws the core's KeywayError, or, when it cannot use it (a plugin the compiled binary
// loads from disk) or does not, a plain Error: foreignFailure reads what that says into a provider
// failure or Keyway's own bug. Whichever it is, the key the call used is scrubbed from its message and
// from a logged stack, since upstreams and adapters can echo it in any shape.

import { KeywayError } from '../errors.ts';
import { redactEchoedKeyForms } from '../credentials/echoed-key-forms.ts';
import type { Logger } from '../logger.ts';
import type { RequestContext, RouteCandidate } from '../spec/plugin.ts';
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
