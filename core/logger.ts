import pino from 'pino';

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

/** Replaces anything shaped like a provider or gateway key with a marker. */
export function redactSecrets(text: string): string {
  let result = text;
  for (const pattern of SECRET_PATTERNS) result = result.replace(pattern, '[REDACTED]');
  return result;
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
          const scrubbed = args.map((argument) => (typeof argument === 'string' ? redactSecrets(argument) : argument));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
