// `npm start` is the start the README gives, and what a container's `CMD ["npm", "start"]`, pm2 or
// supervisord run. Their stop signal goes to the process they started, npm, which passes it to the
// script's shell only: the gateway must be that shell's own process (the script `exec`s it), or it
// never hears SIGTERM, keeps running without a parent, and is killed later without its drain (QA20 ops).

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
let dataDirectory: string;

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-npm-start-'));
});

afterAll(async () => {
  await simulator.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
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

test('SIGTERM sent to `npm start` drains the gateway: a stream in flight finishes, usage is written, nothing keeps the port', async () => {
  const npm = Bun.which('npm');
  expect(npm).not.toBeNull();
  const output = { text: '' };
  // Its own process group, so that whatever outlives npm (the bug this test is about) is killed at the end.
  const child = Bun.spawn([npm as string, 'start'], {
    cwd: REPOSITORY_ROOT,
    env: childEnvironment({
      KEYWAY_DATA_DIR: dataDirectory,
      KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
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
    process.kill(child.pid, 'SIGTERM');
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
    expect(output.text).toMatch(/"usageWritten":[1-9]/);
  } finally {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already: every process of it exited.
    }
  }
}, 60_000);
