import pino from 'pino';
import { redactedExcerpt, redactSecrets, redactStrings } from './credentials/secret-shapes.ts';
import { LogOutput } from './log-output.ts';

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

/** Free text scrubbed so and cut to a length, at a cost bounded by that length (core/credentials/secret-shapes.ts). */
export { redactedExcerpt };

/** The process's stdout log output, shared by every logger of the process so lines keep their order. */
let stdoutOutput: LogOutput | undefined;

function stdoutLogOutput(): LogOutput {
  if (stdoutOutput === undefined) {
    const output = new LogOutput({ descriptor: 1 });
    // Paths that end with process.exit() without flushLogs (a refused start) still get their last lines out.
    process.once('exit', () => output.writeOutAtExit());
    stdoutOutput = output;
  }
  return stdoutOutput;
}

/** Log lines this process dropped (a full disk under stdout, a stuck pipe): `keyway_log_lines_dropped_total`. */
export function logLinesDropped(): number {
  return stdoutOutput?.droppedLines ?? 0;
}

export function createLogger(level: string = process.env.KEYWAY_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  // JSON to stdout: pino transports need worker files, which a single binary does not have. Not
  // pino.destination (sonic-boom): core/log-output.ts says why.
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
    destination ?? stdoutLogOutput(),
  );
}

/**
 * Writes out what the logger holds before the process exits, for at most `timeoutMs`: a stdout that
 * cannot take the lines (a full disk, a stuck pipe) must not hold the exit. Never writes synchronously.
 */
export async function flushLogs(logger: Logger, timeoutMs = 1_000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (stream instanceof LogOutput) {
    await stream.idle(timeoutMs);
    return;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
