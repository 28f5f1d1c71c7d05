// A provider that refuses a key (401/403) may quote it back, and Keyway quotes the provider's message
// in its 502 provider_key_rejected. Besides the key itself and its masked forms (masked-key-echo.test.ts),
// the message can hold a short start of the key cut with a mask ("Incorrect API key provided: pplx-ab…")
// or base64 of the key or of the credential that carried it (`Bearer <key>`, Basic auth's `:<key>`):
// none may reach the client's answer, the usage row, the log or /metrics (QA19), nor a stream's error
// event after content.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { contentChunk, sseAnswer, sseEvent, startEchoingUpstream, type EchoingUpstream } from '../helpers/echoing-upstream.ts';
import { KEY_ECHO_FORMS, keyEcho, type SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';

/** Random canaries (no word in them) whose length leaves base64 padding on the key and on the credentials that carry it. */
const OPENAI_CANARY = 'sk-rCy5hHgMZWhSlJmQGQaU9R1GxU5TBknM4E6MHidY3uE';
const PERPLEXITY_CANARY = 'pplx-GaBGlubw2ZcqTk6g1Kyo9aOxikuGzNYMIIofGjtdA';
const ANTHROPIC_CANARY = 'sk-ant-api03-9d5emHhe0gfXb5i3L4APFBdYcHrtpQ7IeScZ';
/** An OpenAI-compatible server's token, of no known shape. */
const VLLM_CANARY = 'vT8q2WbN5xK1mZ7rJ4cH9pL3sD6fG0yQaE2uR';

interface Provider {
  name: string;
  model: string;
  key: string;
  start(key: string): SimulatorHandle;
  environment(simulator: SimulatorHandle): Record<string, string>;
  /** What stays of the provider's message once the key is taken out of it. */
  kept: string;
}

const PROVIDERS: Provider[] = [
  {
    name: 'openai',
    model: 'gpt-4o-mini',
    key: OPENAI_CANARY,
    start: (key) => startOpenAISimulator({ apiKeys: [key] }),
    environment: (simulator) => ({ KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` }),
    kept: 'Incorrect API key provided: [REDACTED]. You can find your API key at',
  },
  {
    name: 'perplexity',
    model: 'sonar',
    key: PERPLEXITY_CANARY,
    start: (key) => startPerplexitySimulator({ apiKeys: [key] }),
    environment: (simulator) => ({ KEYWAY_PERPLEXITY_BASE_URL: simulator.url }),
    kept: 'Invalid API key provided: [REDACTED]',
  },
  {
    name: 'anthropic',
    model: 'claude-3-opus-20240229',
    key: ANTHROPIC_CANARY,
    start: (key) => startAnthropicSimulator({ apiKeys: [key] }),
    environment: (simulator) => ({ KEYWAY_ANTHROPIC_BASE_URL: simulator.url }),
    kept: 'invalid x-api-key: [REDACTED]',
  },
];

function windows(text: string, size: number): string[] {
  const found: string[] = [];
  for (let start = 0; start + size <= text.length; start++) found.push(text.slice(start, start + size));
  return found;
}

/**
 * Every trace of a canary: each form as the simulator quotes it, the start it shows without its mask
 * (from 6 characters), and every 8 characters in a row of the key or of one of its encodings.
 */
function traces(key: string): string[] {
  const echoes = KEY_ECHO_FORMS.map((form) => keyEcho(form, key));
  const starts = echoes.map((echo) => echo.replace(/[….*]+$/, '')).filter((start) => start.length >= 6 && start.length < 8);
  return [...new Set([...echoes, ...starts, ...echoes.flatMap((echo) => windows(echo.replace(/=+$/, ''), 8))])];
}

const CANARIES = [...PROVIDERS.map((provider) => provider.key), VLLM_CANARY];

function expectNoTrace(text: string, where: string): void {
  for (const canary of CANARIES) for (const trace of traces(canary)) if (text.includes(trace)) throw new Error(`${where} holds ${trace} of ${canary}`);
}

const simulators = new Map<string, SimulatorHandle>();
let upstream: EchoingUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  let environment: Record<string, string> = {};
  for (const provider of PROVIDERS) {
    const simulator = provider.start(provider.key);
    simulators.set(provider.name, simulator);
    environment = { ...environment, ...provider.environment(simulator) };
  }
  upstream = startEchoingUpstream();
  gateway = await startTestGateway({ env: { ...environment, KEYWAY_VLLM_BASE_URL: upstream.url }, probes: false });
  await addProviderKeys(gateway, [...PROVIDERS.map((provider) => ({ name: provider.name, api_key: provider.key })), { name: 'vllm', api_key: VLLM_CANARY }]);
});

afterAll(async () => {
  await gateway?.stop();
  for (const simulator of simulators.values()) await simulator.stop();
  upstream?.stop();
});

describe.each(PROVIDERS.map((provider) => [provider.name, provider] as const))('%s refuses its key and quotes it', (_name, provider) => {
  for (const [index, form] of KEY_ECHO_FORMS.entries()) {
    // Every other form streamed: the refusal comes before the first byte, as a plain error answer.
    const stream = index % 2 === 1;
    test(`${form}${stream ? ', streamed' : ''}: the 502 keeps the provider's message without it`, async () => {
      // A refused key is checked again by the listing, and back in rotation when its models call works.
      expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
      const simulator = simulators.get(provider.name) as SimulatorHandle;
      simulator.inject({ kind: 'auth', echo: form });
      const response = await call(gateway, 'POST', '/v1/chat/completions', {
        model: provider.model,
        provider: provider.name,
        max_tokens: 20,
        stream,
        messages: [{ role: 'user', content: 'hi' }],
      });
      const text = await response.text();
      expect(response.status).toBe(502);
      expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe('provider_key_rejected');
      expect(text).toContain(provider.kept);
      expectNoTrace(text, 'the answer');
    });
  }
});

test("an error event after content that quotes base64 of the call's credential: every dialect's stream ends without it", async () => {
  upstream.answer = (sent) =>
    sseAnswer([
      sseEvent(contentChunk('Hel')),
      sseEvent({ error: { message: `Authentication Fails, credential ${keyEcho('bearer-base64', sent.key)} was revoked`, type: 'authentication_error' } }),
    ]);
  for (const [path, body] of [
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }],
    ['/v1/messages', { max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }],
    ['/v1/responses', { input: 'hi' }],
  ] as const) {
    expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
    const response = await call(gateway, 'POST', path, { ...body, model: 'gpt-4o-mini', provider: 'vllm', stream: true });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toContain('Hel');
    expect(text).toContain('Authentication Fails, credential [REDACTED] was revoked');
    expectNoTrace(text, `the ${path} stream`);
  }
});

test('neither the usage rows, the log nor /metrics hold any trace of a canary', async () => {
  await flushUsage(gateway);
  const rows = await gateway.runtime.store.listUsage('default');
  expect(rows.filter((row) => row.errorCode === 'provider_key_rejected').length).toBeGreaterThanOrEqual(PROVIDERS.length * KEY_ECHO_FORMS.length);
  expectNoTrace(JSON.stringify(rows), 'a usage row');
  const log = gateway.output.join('\n');
  // The log names the refusal, with the provider's message as the client got it.
  expect(log).toContain('Incorrect API key provided: [REDACTED]');
  expectNoTrace(log, 'the log');
  const metrics = await (await call(gateway, 'GET', '/metrics', undefined, { key: OPERATOR_KEY })).text();
  expect(metrics).toContain('keyway_');
  expectNoTrace(metrics, '/metrics');
});
