// The single binary, copied alone into an empty directory: no node_modules, no sources, no
// migrations folder next to it. Whatever it needs must be inside it. Run as root, it also runs where
// the repository is out of reach (a private mount namespace with an empty tmpfs over it), as on a
// target machine: beside the checkout, a path bun fixed at build time would still find a source file.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MIGRATIONS } from '../../plugins/store-sqlite/migrations.ts';
import { generateMasterKey } from '../../plugins/crypto-local/master-key.ts';
import { buildBinary, formatMegabytes } from '../../scripts/build-binary.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';
import {
  addOpenAIKey,
  chatCompletion,
  logLines,
  printedKeys,
  REPOSITORY_ROOT,
  runUntilExit,
  ssePayloads,
  startGatewayProcess,
  type GatewayProcess,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-BinaryTestUpstreamKey000000000000001';
const REFUSE_MODEL_PLUGIN = resolve(REPOSITORY_ROOT, 'test/plugins/refuse-model/index.ts');
const REFUSED_MODEL = 'refused-model-x';
/** An out-of-tree provider built only from `services`: the binary has no core modules on disk for it to import. */
const ECHO_PROVIDER_PLUGIN = resolve(REPOSITORY_ROOT, 'test/plugins/echo-provider/index.ts');
const ECHO_KEY = 'echo-binary-key-5b8e2f1c9d3a7e4b6f0a';
const pluginAvailable = existsSync(REFUSE_MODEL_PLUGIN);

/** A source file: the probe checks that covering the repository hides it. */
const SOURCE_FILE_PROBE = resolve(REPOSITORY_ROOT, 'plugins/store-sqlite/usage-writer.ts');

/** Runs `command` with the repository covered by an empty tmpfs, in a mount namespace of its own (gone when it exits). */
function withSourcesHidden(command: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs "$0" && exec "$@"', REPOSITORY_ROOT, ...command];
}

/** Why the repository cannot be hidden here (unshare and mount need root, or CAP_SYS_ADMIN), or undefined when it can. */
function sourcesCannotBeHidden(): string | undefined {
  try {
    const probe = Bun.spawnSync(withSourcesHidden(['sh', '-c', 'test ! -e "$0"', SOURCE_FILE_PROBE]), { stdout: 'pipe', stderr: 'pipe' });
    return probe.exitCode === 0 ? undefined : `unshare/mount refused (exit code ${probe.exitCode}): ${probe.stderr.toString().trim()}`;
  } catch (error) {
    return `unshare cannot run: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const hideProblem = sourcesCannotBeHidden();
const sourcesHidden = hideProblem === undefined;
/** The binary as the tests run it: with the repository out of reach whenever that is possible. */
const binaryCommand = (path: string): string[] => (sourcesHidden ? withSourcesHidden([path]) : [path]);

/**
 * The out-of-tree plugins as a target machine holds them: outside the repository, with the one
 * package they import in a node_modules beside them (docs/plugins.md).
 */
function copyPluginsOutside(directory: string): { refuseModel: string; echoProvider: string } {
  const plugins = join(directory, 'plugins');
  cpSync(dirname(REFUSE_MODEL_PLUGIN), join(plugins, 'refuse-model'), { recursive: true });
  cpSync(dirname(ECHO_PROVIDER_PLUGIN), join(plugins, 'echo-provider'), { recursive: true });
  const typebox = dirname(Bun.resolveSync('@sinclair/typebox/package.json', REPOSITORY_ROOT));
  cpSync(typebox, join(plugins, 'node_modules', '@sinclair', 'typebox'), { recursive: true, dereference: true });
  return { refuseModel: join(plugins, 'refuse-model', 'index.ts'), echoProvider: join(plugins, 'echo-provider', 'index.ts') };
}

let buildDirectory: string;
let runDirectory: string;
let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let operatorKey: string;
let binary: string;
/** X-Request-Id of every answered call, checked against the usage table after SIGTERM. */
const answeredRequestIds: string[] = [];

beforeAll(async () => {
  if (!sourcesHidden) process.stdout.write(`[binary] runs beside the repository, the worker-thread test skips: ${hideProblem}\n`);
  buildDirectory = mkdtempSync(join(tmpdir(), 'keyway-binary-build-'));
  runDirectory = mkdtempSync(join(tmpdir(), 'keyway-binary-run-'));
  const built = await buildBinary(join(buildDirectory, 'keyway'));
  binary = join(runDirectory, 'keyway');
  copyFileSync(built.outfile, binary);
  chmodSync(binary, 0o755);
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY, ECHO_KEY], models: [...OPENAI_DEFAULT_MODELS, 'echo-1'] });
  // Outside the run directory, which must hold only the binary and its data.
  const configPath = join(buildDirectory, 'keyway.json');
  writeFileSync(configPath, JSON.stringify({ plugins: { 'example-echo-provider': { baseUrl: `${simulator.url}/v1` } } }));
  const plugins = pluginAvailable ? copyPluginsOutside(buildDirectory) : undefined;
  gateway = await startGatewayProcess({
    command: binaryCommand(binary),
    cwd: runDirectory,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      ...(plugins === undefined ? {} : { KEYWAY_PLUGINS: `${plugins.refuseModel},${plugins.echoProvider}`, KEYWAY_CONFIG: configPath }),
    },
  });
  operatorKey = printedKeys(gateway.stdout()).operatorKey ?? '';
  await addOpenAIKey(gateway.url, operatorKey, UPSTREAM_KEY);
  process.stdout.write(
    `[binary] ${formatMegabytes(built.bytes)}, built in ${built.buildMilliseconds} ms, ready ${Math.round(gateway.readyAfterMs)} ms after spawn\n`,
  );
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
  rmSync(buildDirectory, { recursive: true, force: true });
  rmSync(runDirectory, { recursive: true, force: true });
});

describe('the compiled binary, alone in an empty directory', () => {
  test('starts with the embedded defaults: ./data/keyway.db and a 0600 ./data/master.key', () => {
    expect(operatorKey).toMatch(/^kw_op_/);
    expect(gateway.stdout()).toContain('"database":"bun-sqlite"');
    // Every migration compiled into the binary ran: none is read from a folder at run time.
    const migrationLog = logLines(gateway.stdout()).find((line) => line.migrations !== undefined);
    // The core's first, then the built-in plugins' (recorded as `<plugin>:<id>`, e.g. `teams:0001_teams`).
    const applied = (migrationLog?.migrations as { applied?: string[] } | undefined)?.applied ?? [];
    expect(applied.slice(0, MIGRATIONS.length)).toEqual(MIGRATIONS.map((migration) => migration.id));
    expect(applied).toContain('teams:0001_teams');
    for (const id of applied.slice(MIGRATIONS.length)) expect(id).toMatch(/^[a-z0-9@._/-]+:\S+$/);
    expect(existsSync(join(runDirectory, 'data', 'keyway.db'))).toBe(true);
    const masterKeyMode = statSync(join(runDirectory, 'data', 'master.key')).mode & 0o777;
    expect(masterKeyMode.toString(8)).toBe('600');
    // Nothing was unpacked or fetched next to the binary: only the binary and its data directory.
    expect(readdirSync(runDirectory).sort()).toEqual(['data', 'keyway']);
  });

  test('serves a streamed chat completion through the simulator', async () => {
    const response = await chatCompletion(gateway.url, operatorKey, {
      model: 'gpt-4o',
      stream: true,
      messages: [{ role: 'user', content: 'Hello from the binary' }],
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('x-provider-used')).toBe('openai');
    answeredRequestIds.push(response.headers.get('x-request-id') ?? '');
    const payloads = ssePayloads(await response.text());
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload) as { object: string; choices: Array<{ delta?: { content?: string } }> });
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.object).toBe('chat.completion.chunk');
    const text = chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Echo: Hello from the binary');
  });

  test('serves the dashboard and its assets from inside itself, and signs in', async () => {
    const page = await fetch(`${gateway.url}/dashboard`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /src="(\/dashboard\/app\.js[^"]*)"/.exec(html)?.[1] ?? '';
    const assets = await Promise.all([fetch(`${gateway.url}${script}`), fetch(`${gateway.url}/dashboard/app.css`)]);
    for (const asset of assets) expect(asset.status).toBe(200);
    expect((await assets[0]?.text())?.length ?? 0).toBeGreaterThan(10_000);
    const session = await fetch(`${gateway.url}/dashboard/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: operatorKey }),
    });
    expect(session.status).toBe(201);
    expect(session.headers.get('set-cookie')).toContain('HttpOnly');
  });

  test('prices a call from the model catalog compiled into it', async () => {
    const response = await chatCompletion(gateway.url, operatorKey, { model: 'gpt-4o', messages: [{ role: 'user', content: 'price me' }] });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    answeredRequestIds.push(response.headers.get('x-request-id') ?? '');
    // gpt-4o's list price comes only from core/data/model-prices.json.
    expect(Number(response.headers.get('x-keyway-cost'))).toBeGreaterThan(0);
  });

  test("counts a prompt near a budget's cap with OpenAI's tokenizer compiled into it", async () => {
    // ~2,700 bytes of prose, ~600 tokens: the byte bound's worst case is above this cap, the counted one well inside it.
    const content = Array.from({ length: 600 }, (_, index) => ['the', 'team', 'budget', 'notes'][index % 4]).join(' ');
    const created = await fetch(`${gateway.url}/v1/teams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Binary Team',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 0.0004 } } },
        members: [{ email: 'dev@company.com', role: 'developer', byok_access: true }],
      }),
    });
    expect(created.status).toBe(201);
    const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
    const response = await chatCompletion(gateway.url, team.members[0]?.api_key ?? '', {
      model: 'gpt-4o-mini',
      max_tokens: 1,
      messages: [{ role: 'user', content }],
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    answeredRequestIds.push(response.headers.get('x-request-id') ?? '');
  });

  test.skipIf(!pluginAvailable)('loads an out-of-tree plugin from KEYWAY_PLUGINS: refused-model-x answers 403 model_not_allowed', async () => {
    expect(gateway.stdout()).toContain('refuse-model@');
    const response = await chatCompletion(gateway.url, operatorKey, { model: REFUSED_MODEL, provider: 'openai', messages: [{ role: 'user', content: 'hi' }] });
    const body = (await response.json()) as { error?: { code?: string; type?: string } };
    expect(response.status).toBe(403);
    expect(body.error?.code).toBe('model_not_allowed');
    expect(simulator.inferenceRequests().some((request) => (request.body as { model?: string } | undefined)?.model === REFUSED_MODEL)).toBe(false);
  });

  test.skipIf(!pluginAvailable)('serves an out-of-tree provider that uses only the services it is handed', async () => {
    expect(gateway.stdout()).toContain('example-echo-provider@');
    const added = await fetch(`${gateway.url}/v1/providers/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ providers: [{ name: 'echo', api_key: ECHO_KEY }] }),
    });
    expect(added.status).toBe(201);
    const response = await chatCompletion(gateway.url, operatorKey, {
      model: 'echo-1',
      stream: true,
      messages: [{ role: 'user', content: 'Hello from outside' }],
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-provider-used')).toBe('echo');
    answeredRequestIds.push(response.headers.get('x-request-id') ?? '');
    const text = ssePayloads(await response.text())
      .filter((payload) => payload !== '[DONE]')
      .map((payload) => (JSON.parse(payload) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content ?? '')
      .join('');
    expect(text).toBe('Echo: Hello from outside');
  });

  test('loads the libSQL HTTP client from inside itself for a remote database URL (no native module)', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'keyway-binary-libsql-'));
    try {
      // Nothing listens on port 1: reaching "connection refused" proves the client module loaded.
      const result = await runUntilExit({
        command: binaryCommand(binary),
        cwd: scratch,
        env: { KEYWAY_DATABASE_URL: 'http://127.0.0.1:1', KEYWAY_MASTER_KEY: generateMasterKey() },
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).not.toMatch(/Cannot find (module|package)|\.node\b/);
      expect(result.stderr).toMatch(/ECONNREFUSED|Unable to connect/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  // After the budgeted request (the tokenizer's first count) and the first usage rows.
  test.skipIf(!sourcesHidden)(
    'starts its usage writer and tokenizer threads from inside itself, with the repository out of reach',
    async () => {
      const started = (message: string) => logLines(gateway.stdout()).filter((line) => line.msg === message);
      const writerFellBack = () => gateway.stderr().includes('usage writer thread unavailable');
      // The writer starts with the first usage batch, which the usage queue flushes on its own timer.
      const deadline = performance.now() + 10_000;
      while (started('usage writer thread started').length === 0 && !writerFellBack() && performance.now() < deadline) await Bun.sleep(50);
      // Neither fell back: usage written on the request thread, or a budget judged on the byte bound.
      expect(gateway.stderr()).not.toContain('usage writer thread unavailable');
      expect(gateway.stdout()).not.toContain('the provider tokenizer could not count');
      expect(gateway.stdout() + gateway.stderr()).not.toContain('ModuleNotFound');
      expect(started('usage writer thread started')).toHaveLength(1);
      expect(started('tokenizer thread started')).toHaveLength(1);
    },
    15_000,
  );

  // Last: stops the gateway the other tests use.
  test('drains on SIGTERM: exit code 0 and every answered call in the usage table', async () => {
    expect(await gateway.stop('SIGTERM')).toBe(0);
    const database = new Database(join(runDirectory, 'data', 'keyway.db'), { readonly: true });
    try {
      const rows = database.query('SELECT request_id FROM usage_records WHERE status = 200').all() as Array<{ request_id: string }>;
      expect(rows.map((row) => row.request_id).sort()).toEqual([...answeredRequestIds].sort());
    } finally {
      database.close();
    }
  });
});
