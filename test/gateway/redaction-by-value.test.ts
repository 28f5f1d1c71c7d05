// Keys without a known prefix (a vLLM or self-hosted server's token, Cohere's plain keys) are not
// caught by pattern redaction. An upstream that echoes one must not get it to the client, the
// providers listing or the log: Keyway redacts the exact values in play.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

/** No sk-, no known prefix: only its exact value can identify it. */
const PLAIN_KEY = 'Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0a';

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PLAIN_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_VLLM_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'vllm', api_key: PLAIN_KEY }]);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

test('an upstream error that echoes the key reaches neither the client nor the log', async () => {
  const echoed = `upstream rejected the token ${PLAIN_KEY} for this model`;
  simulator.inject({ kind: 'status', status: 400, body: { error: { message: echoed, type: 'invalid_request_error', code: null, param: null } } });
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'vllm', messages: [{ role: 'user', content: 'hi' }] });
  const text = await response.text();
  expect(response.status).toBe(400);
  // The rest of the upstream's message still explains the failure.
  expect(text).toContain('upstream rejected the token [REDACTED]');
  expect(text).not.toContain(PLAIN_KEY);
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
  expect(gateway.output.join('\n')).not.toContain(PLAIN_KEY);
});

test('a models check that fails with the key in its message keeps it out of last_error', async () => {
  // A server whose models endpoint echoes the bearer token back in its error, as some proxies do.
  const echoing = Bun.serve({
    port: 0,
    fetch: (request) =>
      Response.json(
        { error: { message: `no models for ${request.headers.get('authorization')?.slice(7)}`, type: 'server_error', code: null, param: null } },
        { status: 500 },
      ),
  });
  const local = await startTestGateway({ env: { KEYWAY_OLLAMA_BASE_URL: `http://127.0.0.1:${echoing.port}/v1` } });
  try {
    await addProviderKeys(local, [{ name: 'ollama', api_key: PLAIN_KEY }]);
    const listing = (await (await call(local, 'GET', '/v1/providers')).json()) as { providers: Array<{ last_error?: string }> };
    expect(listing.providers[0]?.last_error).toContain('no models for [REDACTED]');
    expect(JSON.stringify(listing)).not.toContain(PLAIN_KEY);
    expect(local.output.join('\n')).not.toContain(PLAIN_KEY);
  } finally {
    await local.stop();
    echoing.stop(true);
  }
});
