// QA: GET /v1/models listed a Perplexity catalog name, `anthropic/claude-haiku-4-5`, bare, as
// Perplexity's; asked for, that id went to Anthropic. A key whose models list failed is shown the
// catalog's names for its provider, and some of those (Perplexity's Agent API names, Groq's
// `openai/gpt-oss-120b`) start with another provider's name. Every id the listing shows must route to
// the provider it names: such a name is listed as `provider/model`. Checked against the simulators for
// every listed id, with two keys whose models lists fail (Perplexity, Groq) and four whose lists work.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';

const KEYS = {
  openai: 'sk-proj-ListedModelsOpenAI00000000000001',
  anthropic: 'sk-ant-api03-ListedModelsAnthropic0000001',
  google: 'AIzaListedModelsGoogleKey000000000000001',
  cohere: 'cohere-listed-models-key-00000000001',
  perplexity: 'pplx-ListedModelsPerplexity000000001',
  groq: 'gsk_ListedModelsGroq0000000000000000001',
};

type Provider = keyof typeof KEYS;
const simulators = new Map<Provider, SimulatorHandle>();
const proxies: Array<ReturnType<typeof Bun.serve>> = [];
let gateway: TestGateway;

function failingModels(target: string): string {
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname.endsWith('/models')) return Response.json({ error: { message: 'models are down', type: 'server_error' } }, { status: 500 });
      return fetch(`${target}${url.pathname}${url.search}`, {
        method: request.method,
        headers: request.headers,
        body: request.method === 'GET' ? undefined : await request.arrayBuffer(),
      });
    },
  });
  proxies.push(server);
  return `http://127.0.0.1:${server.port}`;
}

beforeAll(async () => {
  simulators.set('openai', startOpenAISimulator({ apiKeys: [KEYS.openai] }));
  simulators.set('anthropic', startAnthropicSimulator({ apiKeys: [KEYS.anthropic] }));
  simulators.set('google', startGoogleSimulator({ apiKeys: [KEYS.google] }));
  simulators.set('cohere', startCohereSimulator({ apiKeys: [KEYS.cohere] }));
  simulators.set('perplexity', startPerplexitySimulator({ apiKeys: [KEYS.perplexity] }));
  simulators.set('groq', startOpenAISimulator({ apiKeys: [KEYS.groq] }));
  const url = (provider: Provider) => (simulators.get(provider) as SimulatorHandle).url;
  gateway = await startTestGateway({
    probes: false,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${url('openai')}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: url('anthropic'),
      KEYWAY_GOOGLE_BASE_URL: url('google'),
      KEYWAY_COHERE_BASE_URL: url('cohere'),
      KEYWAY_PERPLEXITY_BASE_URL: failingModels(url('perplexity')),
      KEYWAY_GROQ_BASE_URL: `${failingModels(url('groq'))}/v1`,
    },
  });
  await addProviderKeys(
    gateway,
    Object.entries(KEYS).map(([name, api_key]) => ({ name, api_key })),
  );
});

afterAll(async () => {
  await gateway?.stop();
  for (const simulator of simulators.values()) await simulator.stop();
  for (const proxy of proxies) proxy.stop(true);
});

interface Listed {
  id: string;
  provider: string;
}

async function listed(): Promise<Listed[]> {
  // The listings are fetched (or fail) here, before the models are read.
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
  const response = await call(gateway, 'GET', '/v1/models');
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: Listed[] }).data;
}

test('the catalog names of a key whose list failed are listed under their provider when they start with another’s', async () => {
  const ids = new Map((await listed()).map((entry) => [entry.id, entry.provider]));
  expect(ids.get('perplexity/anthropic/claude-haiku-4-5')).toBe('perplexity');
  expect(ids.get('groq/openai/gpt-oss-120b')).toBe('groq');
  expect(ids.get('claude-haiku-4-5')).toBe('anthropic');
  expect(ids.has('anthropic/claude-haiku-4-5')).toBe(false);
  expect(ids.has('openai/gpt-oss-120b')).toBe(false);
  // A name under its own provider's prefix (Perplexity's `perplexity/sonar`) routes there as it is.
  expect(ids.get('perplexity/sonar')).toBe('perplexity');
});

test('every listed id, asked for, reaches the provider the listing names and only it', async () => {
  const entries = await listed();
  expect(entries.length).toBeGreaterThan(50);
  const misrouted: string[] = [];
  for (const entry of entries) {
    const before = new Map([...simulators].map(([name, simulator]) => [name, simulator.inferenceRequests().length]));
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: entry.id, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    await response.arrayBuffer();
    const reached = [...simulators].filter(([name, simulator]) => simulator.inferenceRequests().length > (before.get(name) ?? 0)).map(([name]) => name);
    // The simulators answer the models they do not serve with their own 404: still the named provider's answer.
    if (reached.join() !== entry.provider || response.headers.get('x-provider-used') !== entry.provider)
      misrouted.push(`${entry.id} (${entry.provider}) → ${reached.join() || 'none'}`);
    const retrieved = await call(gateway, 'GET', `/v1/models/${encodeURIComponent(entry.id)}`);
    const one = (await retrieved.json()) as Listed;
    if (one.provider !== entry.provider) misrouted.push(`GET /v1/models/${entry.id} (${entry.provider}) → ${one.provider}`);
  }
  expect(misrouted).toEqual([]);
});
