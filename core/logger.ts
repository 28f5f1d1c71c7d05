import pino from 'pino';
import { redactSecrets, redactStrings } from './credentials/secret-shapes.ts';

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

/** Free text scrubbed of key shapes and of the secret values in play (core/credentials/secret-shapes.ts). */
export { redactSecrets };

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
          const scrubbed = args.map((argument) => redactStrings(argument, 4));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

interface LogStream {
  flushSync?: () => void;
  once?: (event: 'drain', listener: () => void) => void;
  _writing?: boolean;
}

/**
 * Writes out everything the logger holds before the process exits. pino's asynchronous destination
 * (sonic-boom) answers `flush(callback)` at once when nothing waits in its buffer, even while the
 * last line is still being written by an asynchronous write that `process.exit` would cut short;
 * and `flushSync` skips that same line. So: wait for the write in progress to end ('drain'), then
 * write what is left synchronously. A destination that never confirms is given up after `timeoutMs`.
 */
export async function flushLogs(logger: Logger, timeoutMs = 1_000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, LogStream | undefined>)[pino.symbols.streamSym];
  if (stream === undefined || typeof stream.flushSync !== 'function') {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return;
  }
  if (stream._writing === true && typeof stream.once === 'function') {
    const once = stream.once.bind(stream);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      once('drain', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  try {
    stream.flushSync();
  } catch {
    // Not ready, or the write failed: nothing more can be saved.
  }
}
