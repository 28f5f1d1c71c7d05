// Starts the real Keyway entrypoint against the stub and registers the stub's key, exactly as an
// operator would, so the benchmark measures the shipped request path and nothing bench-specific.

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PinnedProcess } from './processes.ts';
import { PROXY_CORE, logTail, startPinned, stopProcess, waitForHttp } from './processes.ts';
import { ADMIN_API_KEY, UPSTREAM_API_KEY } from './requests.ts';

export const KEYWAY_ENTRYPOINT = resolve(import.meta.dir, '..', '..', 'plugins', 'main.ts');

/**
 * KEYWAY_BENCH_ENTRYPOINT swaps in another build (the single binary from build:binary, a branch's
 * checkout): a .ts/.js file runs under this Bun, anything else is executed as it is. A source entry
 * runs with Bun's flags as `npm start` runs it (`--smol`); KEYWAY_BENCH_BUN_FLAGS replaces them
 * (empty: none).
 */
function keywayCommand(): { command: string[]; path: string } {
  const path = resolve(process.env.KEYWAY_BENCH_ENTRYPOINT ?? KEYWAY_ENTRYPOINT);
  const flags = (process.env.KEYWAY_BENCH_BUN_FLAGS ?? '--smol').split(' ').filter((flag) => flag !== '');
  return { command: /\.(ts|js|mjs)$/.test(path) ? [process.execPath, ...flags, path] : [path], path };
}
const READY_TIMEOUT_MS = 30_000;

export type KeywayStart = { ok: true; process: PinnedProcess; baseUrl: string } | { ok: false; reason: string };

/**
 * `upstreams` maps each provider to the port of the stub standing in for it: each gets its
 * KEYWAY_<PROVIDER>_BASE_URL and a registered key. `logLevel` debug logs every request's attempts.
 */
export async function startKeyway(
  dataDirectory: string,
  port: number,
  upstreams: Record<string, number>,
  logLevel = 'warn',
  overrides: Record<string, string> = {},
): Promise<KeywayStart> {
  const { command, path } = keywayCommand();
  if (!existsSync(path)) return { ok: false, reason: `entrypoint ${path} does not exist` };
  mkdirSync(dataDirectory, { recursive: true });
  const environment: Record<string, string> = {
    KEYWAY_HOST: '127.0.0.1',
    KEYWAY_PORT: String(port),
    KEYWAY_DATA_DIR: dataDirectory,
    KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
    KEYWAY_ADMIN_KEY: ADMIN_API_KEY,
    KEYWAY_LOG_LEVEL: logLevel,
  };
  for (const [provider, stubPort] of Object.entries(upstreams)) environment[`KEYWAY_${provider.toUpperCase()}_BASE_URL`] = `http://127.0.0.1:${stubPort}/v1`;
  // Other KEYWAY_ settings of the bench's own environment reach Keyway (KEYWAY_USAGE_JOURNAL=off for
  // an ablation, say); the bench's own settings above win.
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('KEYWAY_') && !name.startsWith('KEYWAY_BENCH_') && environment[name] === undefined && value !== undefined) environment[name] = value;
  }
  Object.assign(environment, overrides);
  const child = startPinned('keyway', PROXY_CORE, command, environment, join(dataDirectory, 'keyway.out'));
  const baseUrl = `http://127.0.0.1:${port}`;
  const notReady = await waitForHttp(`${baseUrl}/ready`, child, READY_TIMEOUT_MS);
  if (notReady !== undefined) {
    const tail = logTail(child);
    await stopProcess(child);
    return { ok: false, reason: `${notReady}${tail ? `\n--- keyway output ---\n${tail}` : ''}` };
  }
  const providers = Object.keys(upstreams).map((name) => ({ name, api_key: UPSTREAM_API_KEY }));
  const registered = await adminRequest(baseUrl, 'POST', '/v1/providers/keys', { providers });
  if (registered !== undefined) {
    await stopProcess(child);
    return { ok: false, reason: registered };
  }
  return { ok: true, process: child, baseUrl };
}

/** One admin API call with the bench's admin key; returns what went wrong, or undefined. */
export async function adminRequest(baseUrl: string, method: string, path: string, body: unknown): Promise<string | undefined> {
  try {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) return `${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`;
    return undefined;
  } catch (error) {
    return `${method} ${path} failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}
