// Starts a real gateway (HTTP on a free port) with its own temporary data directory, capturing every
// log line so tests can assert that no secret ever reaches one.

import { expect } from 'bun:test';
import { ssePayloads } from './sse.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.ts';
import { createLogger } from '../../core/logger.ts';
import type { PluginSource } from '../../core/registry.ts';
import { createRuntime, type Runtime } from '../../core/runtime.ts';
import { startServer, type RunningServer } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';
import { createTestDatabase, type TestDatabase } from '../store-postgres/database.ts';
import type { ClusterBus } from '../../core/spec/cluster.ts';

export const OPERATOR_KEY = 'kw_op_TestOperatorKey0123456789abcdefghij';

export interface TestGateway {
  url: string;
  runtime: Runtime;
  server: RunningServer;
  dataDirectory: string;
  /** Every log line and every first-start announcement, as written. */
  output: string[];
  /** The `default` account's admin key, printed at first start. */
  defaultAdminKey: string;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  env?: Record<string, string>;
  extraPlugins?: PluginSource[];
  fetch?: typeof fetch;
  /** The resolver the upstream address rules use (webhook targets too): the names an injected fetch serves need answers. */
  resolve?: (host: string) => Promise<string[]>;
  clock?: Clock;
  /** Background health probes (on by default, as in production). */
  probes?: boolean;
  logLevel?: string;
  /** A member of a LocalClusterHub, to run several gateways as the members of one cluster. */
  cluster?: ClusterBus;
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-test-'));
  const output: string[] = [];
  // KEYWAY_TEST_STORE=postgres runs a suite on a throwaway PostgreSQL database instead of SQLite.
  const database: TestDatabase | undefined =
    process.env.KEYWAY_TEST_STORE === 'postgres' && options.env?.KEYWAY_DATABASE_URL === undefined ? await createTestDatabase() : undefined;
  const logger = createLogger(options.logLevel ?? 'debug', { write: (line: string) => void output.push(line) } as never);
  const environment: Record<string, string | undefined> = {
    KEYWAY_HOST: '127.0.0.1',
    KEYWAY_PORT: '0',
    KEYWAY_DATA_DIR: dataDirectory,
    KEYWAY_DATABASE_URL: database?.url ?? `file:${join(dataDirectory, 'keyway.db')}`,
    KEYWAY_ADMIN_KEY: OPERATOR_KEY,
    KEYWAY_USAGE_FLUSH_MS: '50',
    // A shared database needs the master key set (every instance must use the same one).
    ...(database === undefined ? {} : { KEYWAY_MASTER_KEY: Buffer.from(Array.from({ length: 32 }, (_, index) => index * 7 + 3)).toString('base64') }),
    ...options.env,
  };
  const runtime = await createRuntime({
    builtinPlugins: [...builtinPlugins(), ...(options.extraPlugins ?? [])],
    environment,
    logger,
    fetch: options.fetch,
    resolve: options.resolve,
    announce: (text) => void output.push(text),
    clock: options.clock,
    probes: options.probes,
    cluster: options.cluster,
  }).catch(async (error: unknown) => {
    await database?.drop();
    throw error;
  });
  const server = startServer(runtime);
  const defaultAdminKey = /Admin key of the 'default' account:\s+(\S+)/.exec(output.join('\n'))?.[1] ?? '';
  return {
    url: server.url,
    runtime,
    server,
    dataDirectory,
    output,
    defaultAdminKey,
    async stop() {
      await server.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

export interface RequestOptions {
  key?: string;
  headers?: Record<string, string>;
}

/** A JSON call to the gateway, as any HTTP client would make it. */
export async function call(gateway: Pick<TestGateway, 'url'>, method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== '') headers.authorization = `Bearer ${options.key ?? OPERATOR_KEY}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${gateway.url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
}

export async function addProviderKeys(
  gateway: Pick<TestGateway, 'url'>,
  providers: Array<Record<string, unknown>>,
  key?: string,
): Promise<Array<Record<string, unknown>>> {
  const response = await call(gateway, 'POST', '/v1/providers/keys', { providers }, { key });
  const body = (await response.json()) as { providers?: Array<Record<string, unknown>>; error?: unknown };
  if (response.status !== 201) throw new Error(`adding provider keys failed: ${response.status} ${JSON.stringify(body)}`);
  return body.providers ?? [];
}

/** Reads an SSE response into its `data:` payloads, in order. */
export async function readSse(response: Response): Promise<string[]> {
  return ssePayloads(await response.text());
}

/** Waits until the usage queue has written everything queued so far. */
export async function flushUsage(gateway: TestGateway): Promise<void> {
  await gateway.runtime.usage.flush();
}

export interface SpecErrorBody {
  error: { message: string; type: string; code: string; param: string | null; attempts?: Array<Record<string, unknown>>; [extra: string]: unknown };
}

/** Asserts the spec's OpenAI-shaped error with this status and code, and returns its body. */
export async function expectSpecError(response: Response, status: number, code: string): Promise<SpecErrorBody> {
  const body = (await response.json()) as SpecErrorBody;
  expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
  expect(typeof body.error.message).toBe('string');
  expect(body.error.type.length).toBeGreaterThan(0);
  expect('param' in body.error).toBe(true);
  return body;
}
