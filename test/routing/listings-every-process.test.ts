// QA20: a provider key's model listing lived only in the memory of the process that stored the key.
// Another worker, or every worker after a restart, listed the whole catalog in `GET /v1/models`
// (`o3-mini`, which the key does not serve, with `created: 0`) and answered 404 `model_not_found` for a
// model only the key reports (a vLLM server's `acme-llm-7b`), until someone read `GET /v1/providers`
// on that very worker. A restart on the same database stands in for the other process here: it
// starts with no listing, as a second worker does.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const OPENAI_KEY = 'sk-proj-ListingsEveryProcess0000000000001';
const VLLM_KEY = 'vllm-listings-every-process-key-0001';
const OWN_MODEL = 'acme-llm-7b';

let openai: SimulatorHandle;
let vllm: ReturnType<typeof Bun.serve>;
let dataDirectory: string;
let first: TestGateway;
let running: TestGateway | undefined;
let adminKey = '';

/** An OpenAI-compatible server with a model no catalog knows. */
function startOwnModelServer(): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(request) {
      if (new URL(request.url).pathname.endsWith('/models'))
        return Response.json({ object: 'list', data: [{ id: OWN_MODEL, object: 'model', created: 1_700_000_000, owned_by: 'acme' }] });
      return Response.json({
        id: 'chatcmpl-own',
        object: 'chat.completion',
        created: 1_700_000_000,
        model: OWN_MODEL,
        choices: [{ index: 0, message: { role: 'assistant', content: 'hello from acme' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
      });
    },
  });
}

function environment(): Record<string, string> {
  return {
    KEYWAY_DATA_DIR: dataDirectory,
    KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
    KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
    KEYWAY_VLLM_BASE_URL: `http://127.0.0.1:${vllm.port}/v1`,
  };
}

/** The gateway started again on the same database, with no listing in memory. */
async function restart(probes: boolean): Promise<TestGateway> {
  await running?.server.stop();
  running = await startTestGateway({ env: environment(), probes });
  return running;
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  vllm = startOwnModelServer();
  dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-listings-'));
  first = await startTestGateway({ env: environment() });
  running = first;
  adminKey = first.defaultAdminKey;
  await addProviderKeys(first, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'vllm', api_key: VLLM_KEY },
  ]);
});

afterAll(async () => {
  await running?.server.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
  await openai?.stop();
  vllm?.stop(true);
});

function client(gateway: TestGateway): OpenAI {
  return new OpenAI({ apiKey: adminKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
}

test('GET /v1/models lists what the keys report on a process that has not fetched their lists yet', async () => {
  // Without background probes: the listing itself must learn what it shows.
  const gateway = await restart(false);
  const listed = new Map<string, { provider?: string; created: number }>();
  for await (const model of client(gateway).models.list()) listed.set(model.id, model as { provider?: string; created: number });
  expect(listed.get(OWN_MODEL)?.provider).toBe('vllm');
  // The simulator's OpenAI list has gpt-4o-mini (with its publication time) and not o3-mini.
  expect(listed.get('gpt-4o-mini')?.created).toBeGreaterThan(0);
  expect(listed.has('o3-mini')).toBe(false);
});

test('a model only a key reports is served by a process that has read neither GET /v1/models nor /v1/providers', async () => {
  const gateway = await restart(true);
  // The listings arrive in the background after the start: a request may come before them, not long after.
  const deadline = Date.now() + 3_000;
  let answer: OpenAI.Chat.Completions.ChatCompletion | undefined;
  while (answer === undefined && Date.now() < deadline) {
    answer = await client(gateway)
      .chat.completions.create({ model: OWN_MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch(async () => {
        await Bun.sleep(50);
        return undefined;
      });
  }
  expect(answer?.choices[0]?.message.content).toBe('hello from acme');
});
