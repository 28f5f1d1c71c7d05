// What every Keyway process does around its start, whichever entry point starts it (plugins/main.ts,
// and the bench builds in bench/entrypoints/, which must run under the same conditions as the gateway
// they are compared with): the fetch connection limit, set by a re-exec before anything else, and the
// memory start-up leaves behind, handed back once serving has begun.

import { readFileSync } from 'node:fs';
import { BUN_DEFAULT_FETCH_LIMIT, fetchCapacityReexec, parseOpenFilesLimit } from '../core/process/fetch-capacity.ts';
import { releaseRuntimeCodePages } from '../core/process/release-code-pages.ts';

function openFilesLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Runs first, before the gateway's modules load (they are imported below, once this has run): Bun
 * reads its fetch connection limit only when a process starts, so the process re-executes itself
 * once with BUN_CONFIG_MAX_HTTP_REQUESTS set (core/process/fetch-capacity.ts). execve keeps the
 * process id, its standard streams and its arguments.
 */
export function sizeFetchCapacity(): void {
  const reexec = fetchCapacityReexec({
    env: process.env,
    argv: process.argv,
    execArgv: process.execArgv,
    execPath: process.execPath,
    openFilesLimit: openFilesLimit(),
  });
  if (reexec === undefined) return;
  const fallback = `Bun's default of ${BUN_DEFAULT_FETCH_LIMIT} upstream connections applies`;
  if (typeof process.execve !== 'function') {
    process.stderr.write(`keyway: process.execve is not available on this platform; ${fallback}\n`);
    return;
  }
  try {
    process.execve(reexec.file, reexec.args, reexec.env);
  } catch (error) {
    process.stderr.write(
      `keyway: could not re-execute with ${reexec.connections} upstream connections (${error instanceof Error ? error.message : String(error)}); ${fallback}\n`,
    );
  }
}

/** Start-up work (migrations, snapshots, the first job ticks) is over by then. */
const RELEASE_AFTER_START_MS = 1000;

/**
 * Starting leaves garbage a quiet gateway would keep for a long time: module parsing, migrations,
 * the OpenAPI document's intermediate objects, the bytecode of code that ran once. Once the server
 * listens and start-up has settled, one full collection and `Bun.shrink` (which also drops compiled
 * code, recompiled on demand) hand it back; bench/RESULTS.md (2026-12-06 session 2: idle memory)
 * has the figures. The timer does not keep the process alive.
 */
export function releaseStartupMemory(): void {
  setTimeout(() => {
    Bun.gc(true);
    // Deprecated in the types but present in Bun 1.4; where it is gone the collection above still runs.
    (Bun as { shrink?: () => void }).shrink?.();
    void releaseRuntimeCodePages();
  }, RELEASE_AFTER_START_MS).unref();
}
