import pino from 'pino';
import { redactKnownSecrets } from './credentials/secret-values.ts';

export type Logger = pino.Logger;

/**
 * Every path that can carry a secret. pino censors them before a line is written; on top of that
 * `redactSecrets` scrubs free text (error messages from upstreams can echo a key back).
 */
export const REDACTED_PATHS = [
  'authorization',
  'apiKey',
  'api_key',
  'new_api_key',
  'masterKey',
  'previousKeys',
  '*.previousKeys',
  'token',
  'key',
  '*.authorization',
  '*.Authorization',
  '*.apiKey',
  '*.api_key',
  '*.new_api_key',
  '*.masterKey',
  '*.password',
  '*.secret',
  '*.token',
  '*["x-api-key"]',
  '*["x-goog-api-key"]',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
  '*.headers["x-goog-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-goog-api-key"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-goog-api-key"]',
  'providers[*].api_key',
];

const SECRET_PATTERNS: RegExp[] = [
  /\b(sk|pk|rk)-(?:proj-|ant-(?:api\d\d-)?|live-|test-)?[A-Za-z0-9_-]{8,}/g,
  /\bpplx-[A-Za-z0-9_-]{8,}/g,
  /\bAIza[0-9A-Za-z_-]{20,}/g,
  /\bkw_(?:op|ak|mk)_[A-Za-z0-9_-]{8,}/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

/** Replaces anything shaped like a provider or gateway key, and every secret value in play, with a marker. */
export function redactSecrets(text: string): string {
  let result = redactKnownSecrets(text);
  for (const pattern of SECRET_PATTERNS) result = result.replace(pattern, '[REDACTED]');
  return result;
}

/** Scrubs the string values of a log object, a few levels deep; other values pass unchanged. */
function redactValues(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth === 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactValues(item, depth - 1));
  if (value instanceof Error) return { name: value.name, message: redactSecrets(value.message) };
  const scrubbed: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) scrubbed[key] = redactValues(item, depth - 1);
  return scrubbed;
}

export function createLogger(level: string = process.env.KEYWAY_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  // JSON to stdout: pino transports need worker files, which a single binary does not have.
  return pino(
    {
      level,
      base: { service: 'keyway' },
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          // By value as well as by shape: a key without a known prefix, echoed in an error, is caught here.
          const scrubbed = args.map((argument) => redactValues(argument, 4));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Writes out what the logger still buffers, now, before the process exits: an asynchronous flush can
 * lose the last lines ("stopped") to `process.exit`. False when the destination cannot (a test's
 * in-memory stream, or a write that failed): the caller then waits for the asynchronous flush.
 */
export function flushLogsNow(logger: Logger): boolean {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
  if (typeof stream?.flushSync !== 'function') return false;
  try {
    stream.flushSync();
    return true;
  } catch {
    return false;
  }
}
