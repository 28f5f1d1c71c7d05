// Runs the gateway as a real operating-system process (from source or as the compiled binary) and
// watches its output, so tests see exactly what an operator sees: exit codes, stdout, stderr.

import type { Subprocess } from 'bun';
import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, expect } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ssePayloads } from '../helpers/sse.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

export { ssePayloads };

export const REPOSITORY_ROOT = resolve(import.meta.dir, '../..');
export const SOURCE_ENTRY = resolve(REPOSITORY_ROOT, 'plugins/main.ts');
/** `bun plugins/main.ts`, with the Bun that runs the tests. */
export const FROM_SOURCE: string[] = [process.execPath, SOURCE_ENTRY];

/**
 * The environment of a gateway on its own data folder: the embedded database inside it, the operator
 * key, and each provider's upstream (`{ openai: simulator.url }` sets KEYWAY_OPENAI_BASE_URL to its
 * `/v1`); `extra` is added last and wins.
 */
export function dataFolderEnv(
  dataDirectory: string,
  options: { operatorKey?: string; upstreams?: Record<string, string>; extra?: Record<string, string> } = {},
): Record<string, string> {
  const env: Record<string, string> = { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}` };
  if (options.operatorKey !== undefined) env.KEYWAY_ADMIN_KEY = options.operatorKey;
  for (const [provider, url] of Object.entries(options.upstreams ?? {})) env[`KEYWAY_${provider.toUpperCase()}_BASE_URL`] = `${url}/v1`;
  return { ...env, ...options.extra };
}

export interface SpawnOptions {
  command: string[];
  cwd: string;
  /** KEYWAY_* variables; the test runner's own KEYWAY_* variables are never passed on. */
  env: Record<string, string>;
}

export interface GatewayProcess {
  process: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** The URL the gateway logged it listens on. */
  url: string;
  /** Milliseconds from spawn until GET /ready answered 200. */
  readyAfterMs: number;
  stdout(): string;
  stderr(): string;
  /** Waits for the process to exit (SIGKILL after the timeout) and for its output to drain. */
  waitForExit(timeoutMs?: number): Promise<number>;
  /** Sends the signal (unless the process is gone) and waits for the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
}

export interface FinishedProcess {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The runner's environment minus anything that would configure the gateway behind the test's back. */
export function childEnvironment(overrides: Record<string, string>): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('KEYWAY_')) inherited[name] = value;
  }
  // One process unless a test asks for workers (test/process/workers.test.ts): the default is one per core.
  return { ...inherited, KEYWAY_HOST: '127.0.0.1', KEYWAY_PORT: '0', KEYWAY_WORKERS: '1', ...overrides };
}

function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  return (async () => {
    for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
    sink.text += decoder.decode();
  })();
}

function spawnWatched(options: SpawnOptions) {
  const child = Bun.spawn(options.command, { cwd: options.cwd, env: childEnvironment(options.env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  const stdout = { text: '' };
  const stderr = { text: '' };
  const drained = Promise.all([collect(child.stdout, stdout), collect(child.stderr, stderr)]);
  return { child, stdout, stderr, drained };
}

const sleep = (milliseconds: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, milliseconds));

async function withTimeout<Value>(promise: Promise<Value>, milliseconds: number, message: () => string): Promise<Value> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), milliseconds);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const LISTENING_LINE = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"Keyway listening/;

/**
 * The URL of a gateway whose output goes somewhere other than a pipe this process reads (a file): read
 * from the listening line, once GET /ready answers 200. Rejects when `gone()` says the process died,
 * or after the timeout.
 */
export async function waitUntilListening(output: () => string, gone: () => boolean, timeoutMs = 20_000): Promise<string> {
  const started = performance.now();
  for (;;) {
    if (gone()) throw new Error(`the gateway exited before it was ready:\n${output()}`);
    if (performance.now() - started > timeoutMs) throw new Error(`the gateway was not ready within ${timeoutMs} ms:\n${output()}`);
    const url = LISTENING_LINE.exec(output())?.[1];
    if (url !== undefined) {
      const status = await fetch(`${url}/ready`).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) return url;
    }
    await sleep(20);
  }
}

/** Starts the gateway and resolves once GET /ready answers 200; rejects with its output if it dies first. */
export async function startGatewayProcess(options: SpawnOptions, timeoutMs = 20_000): Promise<GatewayProcess> {
  const started = performance.now();
  const { child, stdout, stderr, drained } = spawnWatched(options);
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  const describe = () => `exit code ${String(child.exitCode)}\n--- stdout\n${stdout.text}\n--- stderr\n${stderr.text}`;
  let url: string | undefined;
  let readyAfterMs: number | undefined;
  while (readyAfterMs === undefined) {
    if (exited) throw new Error(`the gateway exited before it was ready: ${describe()}`);
    if (performance.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`the gateway was not ready within ${timeoutMs} ms: ${describe()}`);
    }
    url ??= LISTENING_LINE.exec(stdout.text)?.[1];
    if (url !== undefined) {
      const status = await fetch(`${url}/ready`).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) readyAfterMs = performance.now() - started;
    }
    if (readyAfterMs === undefined) await sleep(url === undefined ? 5 : 10);
  }
  const waitForExit = async (exitTimeoutMs = 15_000): Promise<number> => {
    const code = await withTimeout(child.exited, exitTimeoutMs, () => `the gateway did not exit within ${exitTimeoutMs} ms: ${describe()}`).catch(
      (error: unknown) => {
        child.kill('SIGKILL');
        throw error;
      },
    );
    await drained;
    return code;
  };
  return {
    process: child,
    url: url as string,
    readyAfterMs,
    stdout: () => stdout.text,
    stderr: () => stderr.text,
    waitForExit,
    async stop(signal = 'SIGTERM', stopTimeoutMs = 15_000) {
      if (!exited) child.kill(signal);
      return waitForExit(stopTimeoutMs);
    },
  };
}

/** Runs the gateway expecting it to exit on its own (a refused start). */
export async function runUntilExit(options: SpawnOptions, timeoutMs = 20_000): Promise<FinishedProcess> {
  const { child, stdout, stderr, drained } = spawnWatched(options);
  const exitCode = await withTimeout(
    child.exited,
    timeoutMs,
    () => `the gateway was expected to exit but still runs after ${timeoutMs} ms:\n${stdout.text}\n${stderr.text}`,
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  await drained;
  return { exitCode, stdout: stdout.text, stderr: stderr.text };
}

export interface FirstStartKeys {
  operatorKey: string | undefined;
  defaultAdminKey: string | undefined;
}

/** The keys of the first-start banner, as an operator would copy them from the terminal. */
export function printedKeys(stdout: string): FirstStartKeys {
  return {
    operatorKey: /Operator key \(KEYWAY_ADMIN_KEY\):\s+(\S+)/.exec(stdout)?.[1],
    defaultAdminKey: /Admin key of the 'default' account:\s+(\S+)/.exec(stdout)?.[1],
  };
}

/** The pino JSON lines of an output, skipping anything else (the first-start banner). */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut by a crash is not a log line.
    }
  }
  return lines;
}

export function countOccurrences(text: string, needle: string): number {
  return needle.length === 0 ? 0 : text.split(needle).length - 1;
}

export async function addOpenAIKey(url: string, operatorKey: string, apiKey: string): Promise<void> {
  const response = await fetch(`${url}/v1/providers/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ providers: [{ name: 'openai', api_key: apiKey }] }),
  });
  if (response.status !== 201) throw new Error(`adding the OpenAI key failed: ${response.status} ${await response.text()}`);
}

export function chatCompletion(url: string, key: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * A test file's OpenAI simulator (holding `upstreamKey`) and its scratch data directories: the simulator
 * starts before the file's tests; both go after them. Read `simulator` inside tests.
 */
export function simulatorAndScratch(upstreamKey: string): { readonly simulator: SimulatorHandle; dataDirectory(name: string): string } {
  const scratch: string[] = [];
  const suite = {
    simulator: undefined as unknown as SimulatorHandle,
    dataDirectory(name: string): string {
      const directory = mkdtempSync(join(tmpdir(), `keyway-${name}-`));
      scratch.push(directory);
      return directory;
    },
  };
  beforeAll(() => {
    suite.simulator = startOpenAISimulator({ apiKeys: [upstreamKey] });
  });
  afterAll(async () => {
    await suite.simulator.stop();
    for (const directory of scratch) rmSync(directory, { recursive: true, force: true });
  });
  return suite;
}

/**
 * A gateway from source with `KEYWAY_WORKERS=2` in a fresh scratch folder (`<name>-…` under the
 * system's temporary folder), its operator key and upstreams set, and the admin key its first start
 * printed: what every multi-worker suite starts from.
 */
export async function startTwoWorkers(
  name: string,
  options: { operatorKey: string; upstreams: Record<string, string>; extra?: Record<string, string> },
): Promise<{ gateway: GatewayProcess; directory: string; adminKey: string }> {
  const directory = mkdtempSync(join(tmpdir(), `${name}-`));
  const gateway = await startGatewayProcess(
    {
      command: FROM_SOURCE,
      cwd: directory,
      env: dataFolderEnv(directory, {
        operatorKey: options.operatorKey,
        upstreams: options.upstreams,
        extra: { KEYWAY_WORKERS: '2', KEYWAY_LOG_LEVEL: 'info', ...options.extra },
      }),
    },
    40_000,
  );
  return { gateway, directory, adminKey: printedKeys(gateway.stdout()).defaultAdminKey ?? '' };
}

/**
 * Two workers for a suite of management calls (no upstream), started before its tests and stopped and
 * removed after them: `send` makes each call on a fresh connection, as the account's admin by default.
 */
export function twoWorkersForSuite(
  name: string,
  operatorKey: string,
): { adminKey(): string; send(method: string, path: string, body?: unknown, key?: string): Promise<WorkerAnswer> } {
  let started: Awaited<ReturnType<typeof startTwoWorkers>> | undefined;
  beforeAll(async () => {
    started = await startTwoWorkers(name, { operatorKey, upstreams: {} });
  }, 60_000);
  afterAll(async () => {
    await started?.gateway.stop('SIGTERM').catch(() => undefined);
    if (started !== undefined) rmSync(started.directory, { recursive: true, force: true });
  });
  const adminKey = () => started?.adminKey ?? '';
  return { adminKey, send: (method, path, body, key) => freshAnswer(`${started?.gateway.url}${path}`, key ?? adminKey(), method, body) };
}

/** Whether a process of that id still exists (signal 0 only asks; it throws for a pid that is gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passed; the last answer. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await Bun.sleep(20);
  }
  return condition();
}

/** A JSON call with a bearer key on a connection of its own (`Connection: close`), so the kernel may hand it to either worker. */
export function freshCall(url: string, key: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(url, {
    method,
    keepalive: false,
    headers: { connection: 'close', authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Which worker answered a call (`X-Keyway-Worker`), its status and its JSON body (`{}` when empty). */
export interface WorkerAnswer {
  worker: string;
  status: number;
  body: Record<string, unknown>;
}

/** A freshCall answered as a WorkerAnswer: what the multi-worker suites compare between workers. */
export async function freshAnswer(url: string, key: string, method = 'GET', body?: unknown): Promise<WorkerAnswer> {
  const response = await freshCall(url, key, method, body);
  const text = await response.text();
  return {
    worker: response.headers.get('x-keyway-worker') ?? '',
    status: response.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** A usage row as the process suites read it back from the embedded database. */
export interface BookedRow {
  request_id: string;
  status: number;
  error_code: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  usage_estimated: number;
}

/** Every usage row of the embedded database in `directory` (`keyway.db`), read from the file. */
export function bookedRows(directory: string): BookedRow[] {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return database
      .query('SELECT request_id, status, error_code, input_tokens, output_tokens, cost_usd, usage_estimated FROM usage_records')
      .all() as BookedRow[];
  } finally {
    database.close();
  }
}

/** The one row booked for `requestId` among `rows`: a second row would be the call booked twice. */
export function onlyRowOf(rows: BookedRow[], requestId: string | null): BookedRow {
  const mine = rows.filter((row) => row.request_id === requestId);
  expect(mine).toHaveLength(1);
  return mine[0] as BookedRow;
}
