// `npm start` is the start the README gives, and what a container's `CMD ["npm", "start"]`, pm2 or
// supervisord run. Their stop signal goes to the process they started, npm, which passes it to the
// script's shell only: the gateway must be that shell's own process (the script `exec`s it), or it
// never hears SIGTERM, keeps running without a parent, and is killed later without its drain (QA20 ops).
// Ctrl+C in a terminal, and systemd's default KillMode=control-group, signal npm and the gateway alike,
// and npm passes its copy on: the gateway hears one stop twice within milliseconds, which must drain
// once, not end the requests in flight as a second signal does.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, chatCompletion, childEnvironment, REPOSITORY_ROOT, ssePayloads, waitUntilListening } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-NpmStartTestUpstreamKey00000000000001';
const OPERATOR_KEY = 'kw_op_NpmStartTestOperatorKey0123456789abcdef';

let simulator: SimulatorHandle;
const directories: string[] = [];

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
});

afterAll(async () => {
  await simulator.stop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
}

async function answersHealth(url: string): Promise<boolean> {
  return fetch(`${url}/health`).then(
    (response) => response.status === 200,
    () => false,
  );
}

/**
 * Starts `npm start` in a process group of its own (as a terminal or a service manager would), opens a
 * slow stream, signals as `signal` says once the stream has begun, and checks that the stream ends with
 * `[DONE]`, npm exits, nothing serves the port any more and the usage row was written. Whatever outlives
 * npm (the first bug this file is about) is killed at the end with the group.
 */
async function drainsUnderNpm(workers: number, signal: (npmPid: number) => void): Promise<void> {
  const npm = Bun.which('npm');
  expect(npm).not.toBeNull();
  const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-npm-start-'));
  directories.push(dataDirectory);
  const output = { text: '' };
  const child = Bun.spawn([npm as string, 'start'], {
    cwd: REPOSITORY_ROOT,
    env: childEnvironment({
      KEYWAY_DATA_DIR: dataDirectory,
      KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      KEYWAY_WORKERS: String(workers),
      npm_config_update_notifier: 'false',
    }),
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    detached: true,
  });
  void collect(child.stdout, output);
  void collect(child.stderr, output);
  let npmExited = false;
  void child.exited.then(() => {
    npmExited = true;
  });
  try {
    const url = await waitUntilListening(
      () => output.text,
      () => npmExited,
      30_000,
    );
    await addOpenAIKey(url, OPERATOR_KEY, UPSTREAM_KEY);
    simulator.inject({ kind: 'slow_stream', delayMs: 150 });
    const response = await chatCompletion(url, OPERATOR_KEY, {
      model: 'gpt-4o',
      stream: true,
      messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }],
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let body = decoder.decode((await reader.read()).value, { stream: true });
    signal(child.pid);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += decoder.decode(value, { stream: true });
    }
    expect(ssePayloads(body).at(-1)).toBe('[DONE]');
    await Promise.race([child.exited, Bun.sleep(15_000)]);
    expect(npmExited).toBe(true);
    expect(await answersHealth(url)).toBe(false);
    expect(output.text).toContain('"msg":"shutting down"');
    expect(output.text).not.toContain('shutdown already under way');
    expect(output.text).toMatch(/"usageWritten":[1-9]/);
  } finally {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already: every process of it exited.
    }
  }
}

test('SIGTERM sent to `npm start` drains the gateway: a stream in flight finishes, usage is written, nothing keeps the port', async () => {
  await drainsUnderNpm(1, (npmPid) => process.kill(npmPid, 'SIGTERM'));
}, 60_000);

test('Ctrl+C (SIGINT to the whole group: npm and the gateway, and npm passes its copy on) drains once', async () => {
  await drainsUnderNpm(1, (npmPid) => process.kill(-npmPid, 'SIGINT'));
}, 60_000);

test('SIGTERM to the whole group (systemd KillMode=control-group) drains once', async () => {
  await drainsUnderNpm(1, (npmPid) => process.kill(-npmPid, 'SIGTERM'));
}, 60_000);

test('Ctrl+C with two workers drains once: the primary hears it twice too, the workers three times', async () => {
  await drainsUnderNpm(2, (npmPid) => process.kill(-npmPid, 'SIGINT'));
}, 60_000);
