// A provider refusing a stored key quotes it masked: OpenAI's 401 says "Incorrect API key provided:
// ope********-key", the key's first 3 and last 4 characters. That form is key material, and error
// answers reach callers who must never see any (a team member): it is redacted like the key itself
// (core/credentials/masked-keys.ts), in every dialect, streamed or not, in the log and the provider
// listing, while the rest of the provider's message still reaches the client.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { contentChunk, sseAnswer, sseEvent, startEchoingUpstream, type EchoingUpstream } from '../helpers/echoing-upstream.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { maskKey } from '../simulators/openai-errors.ts';

/** A canary of no known shape, as the QA finding's: only its value (and its forms) identify it. */
const CANARY = 'openai-canary-Q7mW2xR9vK4tL8pZ-key';
/** The form OpenAI (and its simulator) quotes: `ope` + stars + `-key`. */
const OPENAI_FORM = maskKey(CANARY);
const VLLM_KEY = 'vllm-canary-Hb3nR7cX1zQ9wE5tY2uI';

/** Every form the upstreams below quote, and the pieces of the canaries they show. */
const FORMS = [OPENAI_FORM, `****${VLLM_KEY.slice(-4)}`, `${VLLM_KEY.slice(0, 6)}...${VLLM_KEY.slice(-4)}`];

let simulator: SimulatorHandle;
let upstream: EchoingUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [CANARY] });
  upstream = startEchoingUpstream();
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_VLLM_BASE_URL: upstream.url }, probes: false });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: CANARY },
    { name: 'vllm', api_key: VLLM_KEY },
  ]);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
  upstream?.stop();
});

function expectNoForm(text: string): void {
  for (const form of FORMS) expect(text).not.toContain(form);
  expect(text).not.toContain(CANARY);
  expect(text).not.toContain(VLLM_KEY);
  // No start of a key next to a run of stars, whatever its length.
  expect(text).not.toMatch(/ope\*{3,}|\*{3,}-key|\*{3,}2uI/);
}

const hello = [{ role: 'user', content: 'hi' }];

/** A refused key is checked again on GET /v1/providers, and back in rotation when its models call works. */
async function backInRotation(): Promise<void> {
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
}

describe("OpenAI's 401 for a stored key, through every dialect", () => {
  const requests: Array<[string, string, Record<string, unknown>]> = [
    ['chat completions', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello }],
    ['chat completions, streamed', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello, stream: true }],
    ['/v1/messages', '/v1/messages', { model: 'gpt-4o-mini', max_tokens: 20, messages: hello }],
    ['/v1/messages, streamed', '/v1/messages', { model: 'gpt-4o-mini', max_tokens: 20, messages: hello, stream: true }],
    ['/v1/responses', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi' }],
    ['/v1/responses, streamed', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi', stream: true }],
    ['embeddings', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'hi' }],
  ];
  for (const [name, path, body] of requests) {
    test(`${name}: the masked key is redacted, the rest of OpenAI's message kept`, async () => {
      await backInRotation();
      const asked = simulator.inferenceRequests().length;
      simulator.inject({ kind: 'auth' });
      const response = await call(gateway, 'POST', path, { ...body, provider: 'openai' });
      const text = await response.text();
      expect(simulator.inferenceRequests()).toHaveLength(asked + 1);
      expect(response.status).toBe(502);
      expectNoForm(text);
      expect(text).toContain('Incorrect API key provided: [REDACTED]. You can find your API key at');
    });
  }

  test('neither the log nor the provider listing shows it', async () => {
    const listing = await (await call(gateway, 'GET', '/v1/providers')).text();
    expectNoForm(listing);
    // Keyway's own masked form of the key is still listed: it shows what the docs say it shows.
    expect(listing).toContain('"masked_key":"…-key"');
    expect(gateway.output.join('\n')).toContain('Incorrect API key provided: [REDACTED]');
    expectNoForm(gateway.output.join('\n'));
  });
});

describe('other providers’ forms, and an error event mid-stream', () => {
  test('an ellipsis form in a 401 is redacted', async () => {
    await backInRotation();
    const form = `${VLLM_KEY.slice(0, 6)}...${VLLM_KEY.slice(-4)}`;
    upstream.answer = () => Response.json({ error: { message: `Invalid token ${form} for this server`, type: 'invalid_request_error' } }, { status: 401 });
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'vllm', messages: hello });
    const text = await response.text();
    expectNoForm(text);
    expect(text).toContain('Invalid token [REDACTED] for this server');
  });

  test("DeepSeek's form (stars, then the last 4) in an error event after content is redacted", async () => {
    upstream.answer = () =>
      sseAnswer([
        sseEvent(contentChunk('Hel')),
        sseEvent({ error: { message: `Authentication Fails, Your api key: ****${VLLM_KEY.slice(-4)} is invalid`, type: 'authentication_error' } }),
      ]);
    for (const path of ['/v1/chat/completions', '/v1/messages']) {
      await backInRotation();
      const response = await call(gateway, 'POST', path, { model: 'gpt-4o-mini', provider: 'vllm', max_tokens: 20, messages: hello, stream: true });
      const text = await response.text();
      expect(response.status).toBe(200);
      expect(text).toContain('Hel');
      expectNoForm(text);
      expect(text).toContain('Your api key: [REDACTED] is invalid');
    }
  });
});
