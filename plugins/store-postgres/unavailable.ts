// Which failures of Bun's PostgreSQL client mean "the server cannot answer now" (Store.isUnavailable):
// the core answers them 503 storage_unavailable instead of 500 internal_error (core/storage-availability.ts).
// Anything else (a constraint, a syntax error) is a fault a retry would meet again.

/** The client's own codes for a connection it could not make or lost. */
const CLIENT_CODES: ReadonlySet<string> = new Set([
  'ERR_POSTGRES_CONNECTION_CLOSED',
  'ERR_POSTGRES_CONNECTION_FAILED',
  'ERR_POSTGRES_CONNECTION_REFUSED',
  'ERR_POSTGRES_CONNECTION_TIMEOUT',
  'ERR_POSTGRES_IDLE_TIMEOUT',
  'ERR_POSTGRES_LIFETIME_TIMEOUT',
]);

/** The operating system's, should one come through unwrapped. */
const SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

/**
 * The server's SQLSTATE classes and codes: 08 connection exception, 57P01–57P03 shut down or
 * starting, 53300 too many connections. A FATAL or PANIC error ends its session whatever its code
 * (`database … is not currently accepting connections` is 55000, FATAL).
 */
const SERVER_STATES = /^(08|57P0[123]$|53300$)/;

function unavailableItself(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { code, errno, severity } = error as { code?: unknown; errno?: unknown; severity?: unknown };
  if (typeof code === 'string' && (CLIENT_CODES.has(code) || SOCKET_CODES.has(code))) return true;
  if (severity === 'FATAL' || severity === 'PANIC') return true;
  return typeof errno === 'string' && SERVER_STATES.test(errno);
}

/** The error, or one it was raised from (a few causes deep). */
export function postgresUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (unavailableItself(current)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
