// Failures shaped like fetch's: a TypeError carrying a system-style `code`, so the attempt loop
// (core/lifecycle/attempt-failures.ts) and networkFailure (core/wire/provider-kit.ts) classify them as the
// broken connections they are, and fall back.

export class UpstreamConnectionError extends TypeError {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }
}

/** The code a socket failure carries (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT…), or the one given. */
export function codeOf(error: unknown, fallback: string): string {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code !== '' ? code : fallback;
}

/** Any socket failure as an UpstreamConnectionError, keeping its code. */
export function asConnectionError(error: unknown, fallbackCode: string, message: string): UpstreamConnectionError {
  if (error instanceof UpstreamConnectionError) return error;
  return new UpstreamConnectionError(codeOf(error, fallbackCode), message, { cause: error });
}

/** Raised inside the client when a reused connection turned out closed before the request could count: retried once. */
export class StaleConnectionError extends Error {
  override name = 'StaleConnectionError';
}
