// Upstream addresses are the operator's decision, over HTTP: a key's base_url is checked when it is
// stored and on every call; Keyway never calls itself, refuses a request that already passed through a
// Keyway, follows no upstream redirect, and quotes no upstream error page.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { providerKeyBinding } from '../../core/credentials/snapshot.ts';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const KEY = 'sk-proj-UpstreamPolicyKey00000000000000001';
const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null; [extra: string]: unknown };
}

let simulator: SimulatorHandle;
/** No allow list: loopback is open only to the operator's own KEYWAY_OPENAI_BASE_URL. */
let strict: TestGateway;
/** KEYWAY_UPSTREAM_ALLOW=127.0.0.1: keys may point at loopback servers. */
let allowing: TestGateway;
const extra: TestGateway[] = [];
const servers: Array<{ stop(force?: boolean): unknown }> = [];

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [KEY] });
  strict = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` }, probes: false });
  // A key without a base_url: it uses the operator's KEYWAY_OPENAI_BASE_URL.
  await addProviderKeys(strict, [{ name: 'openai', api_key: KEY }]);
  allowing = await startTestGateway({ env: { KEYWAY_UPSTREAM_ALLOW: '127.0.0.1' }, probes: false });
});

afterAll(async () => {
  for (const gateway of [strict, allowing, ...extra]) await gateway.stop();
  for (const server of servers) server.stop(true);
  await simulator.stop();
});

beforeEach(() => simulator.reset());

async function storeKey(gateway: TestGateway, baseUrl: string): Promise<Response> {
  return call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEY, settings: { base_url: baseUrl } }] });
}

async function refusedAtCreation(gateway: TestGateway, baseUrl: string): Promise<string> {
  const response = await storeKey(gateway, baseUrl);
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, code: body.error.code, param: body.error.param }).toEqual({
    status: 400,
    code: 'invalid_field',
    param: 'providers[0].settings.base_url',
  });
  return body.error.message;
}

/** A gateway of its own, for scenarios that need the only openai key to be theirs. */
async function ownGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const gateway = await startTestGateway({ env, probes: false });
  extra.push(gateway);
  return gateway;
}

/** A tiny upstream that counts every request it gets. */
function countingServer(answer: (request: Request) => Response): { url: string; hits: () => number } {
  let hits = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(request) {
      hits++;
      return answer(request);
    },
  });
  servers.push(server);
  return { url: `http://127.0.0.1:${server.port}`, hits: () => hits };
}

describe('a key base_url is checked when the key is stored', () => {
  test('the cloud metadata address is refused, in any spelling, with the rule named', async () => {
    const message = await refusedAtCreation(strict, 'http://169.254.169.254/v1');
    expect(message).toContain("Invalid value for 'providers[0].settings.base_url': 169.254.169.254 is a cloud metadata address (rule: cloud metadata)");
    expect(await refusedAtCreation(strict, 'http://2852039166/v1')).toContain('cloud metadata');
    expect(await refusedAtCreation(strict, 'http://0xA9FEA9FE/v1')).toContain('cloud metadata');
    expect(await refusedAtCreation(strict, 'http://[::ffff:169.254.169.254]/v1')).toContain('cloud metadata');
    expect(await refusedAtCreation(strict, 'http://metadata.google.internal/computeMetadata/v1')).toContain('.internal');
    // Nothing was stored: the one key is the one stored at the start, without a base_url.
    const listed = (await (await call(strict, 'GET', '/v1/providers')).json()) as { providers: Array<{ settings: Record<string, unknown> }> };
    expect(listed.providers.map((key) => key.settings.base_url)).toEqual([undefined]);
  });

  test('loopback and private ranges are refused unless the operator allows them', async () => {
    const message = await refusedAtCreation(strict, `${simulator.url}/v1`);
    expect(message).toContain('is loopback (127.0.0.0/8); only the operator can allow it (KEYWAY_UPSTREAM_ALLOW)');
    expect(await refusedAtCreation(strict, 'http://10.0.0.5:8000/v1')).toContain('a private range (10.0.0.0/8)');
    expect(await refusedAtCreation(strict, 'http://[fe80::1]/v1')).toContain('link-local');
    expect(await refusedAtCreation(strict, `http://localhost:${simulator.port}/v1`)).toContain('resolves to an address that is loopback');
  });

  test("a base_url at the gateway's own port is refused, even where loopback is allowed", async () => {
    const port = allowing.server.port;
    expect(await refusedAtCreation(allowing, `http://127.0.0.1:${port}/v1`)).toContain(`is Keyway's own listening address (port ${port}) (rule: loop to self)`);
    expect(await refusedAtCreation(allowing, `http://0.0.0.0:${port}/v1`)).toContain('loop to self');
  });

  test('a name that resolves to a refused address is refused after resolution', async () => {
    const port = allowing.server.port;
    const message = await refusedAtCreation(allowing, `http://localhost:${port}/v1`);
    expect(message).toContain(`localhost:${port} resolves to Keyway's own listening address (port ${port}) (rule: loop to self)`);
    // The operator's log has the address; the admin's answer has only the rule.
    expect(allowing.output.some((line) => line.includes('refused by the upstream address policy') && line.includes('127.0.0.1'))).toBe(true);
  });

  test('a name that does not resolve is refused', async () => {
    expect(await refusedAtCreation(strict, 'https://no-such-host.invalid/v1')).toContain('could not be resolved');
  });
});

describe('allowed upstreams work', () => {
  test("the operator's own loopback KEYWAY_OPENAI_BASE_URL needs no allow list", async () => {
    const response = await call(strict, 'POST', '/v1/chat/completions', hello);
    expect(response.status).toBe(200);
    expect(simulator.inferenceRequests().length).toBe(1);
  });

  test('with KEYWAY_UPSTREAM_ALLOW=127.0.0.1 a key reaches a loopback simulator, marked with Via', async () => {
    await addProviderKeys(allowing, [{ name: 'openai', api_key: KEY, settings: { base_url: `${simulator.url}/v1` } }]);
    const response = await call(allowing, 'POST', '/v1/chat/completions', hello);
    expect(response.status).toBe(200);
    const [request] = simulator.inferenceRequests();
    expect(request?.headers.via).toBe(`1.1 keyway-${allowing.runtime.upstream.instanceId}`);
  });
});

describe('a key base_url is checked again on every call', () => {
  test('a stored key whose address is not allowed is refused (403), reaches nothing, and costs the provider no health', async () => {
    const upstream = countingServer(() => Response.json({ object: 'list', data: [] }));
    const gateway = await ownGateway();
    // A key stored before the policy existed (or whose name resolved elsewhere then): written straight to the store.
    const runtime = gateway.runtime;
    const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName) as CryptoBackend;
    const id = 'pk_legacy_loopback';
    await runtime.store.insertProviderKeys([
      {
        id,
        owner: 'account',
        accountId: 'default',
        provider: 'openai',
        ciphertext: await backend.encrypt(KEY, providerKeyBinding(id, 'account', 'default', 'openai')),
        keyVersion: backend.currentKeyVersion(),
        cryptoBackend: backend.name,
        maskedKey: 'sk-proj-…0001',
        fingerprint: 'sha256:0000000000000001',
        organizationId: null,
        settings: { base_url: `${upstream.url}/v1` },
        status: 'active',
        weight: 1,
      },
    ]);
    await runtime.snapshots.refresh();
    const failures: unknown[] = [];
    const record = runtime.health.record.bind(runtime.health);
    runtime.health.record = (key, outcome) => {
      if (!outcome.ok) failures.push(outcome);
      record(key, outcome);
    };

    const response = await call(gateway, 'POST', '/v1/chat/completions', { ...hello, provider: 'openai' });
    const body = (await response.json()) as ErrorBody;
    expect({ status: response.status, code: body.error.code, type: body.error.type }).toEqual({
      status: 403,
      code: 'upstream_not_allowed',
      type: 'permission_error',
    });
    expect(body.error.message).toContain(`The openai upstream ${new URL(upstream.url).host} is loopback (127.0.0.0/8)`);
    expect(body.error.message).toContain('Keyway did not call it');
    // Nor does a header say the provider answered it (QA14 docs N8).
    expect([response.headers.get('x-provider-used'), response.headers.get('x-key-id')]).toEqual([null, null]);
    expect(failures).toEqual([]);
    const health = (await (await call(gateway, 'GET', '/v1/providers/health')).json()) as { providers: Array<{ name: string; status: string }> };
    expect(health.providers.find((provider) => provider.name === 'openai')?.status).not.toBe('down');

    // The models listing is held to the same rule.
    const listed = (await (await call(gateway, 'GET', '/v1/providers')).json()) as { providers: Array<{ key_id: string; last_error?: string }> };
    expect(listed.providers.find((key) => key.key_id === id)?.last_error).toContain('is loopback');
    expect(upstream.hits()).toBe(0);
  });
});

describe('loops', () => {
  test("a request carrying a Keyway's Via marker is refused with 508 and makes no upstream call", async () => {
    for (const via of [strict.runtime.upstream.via, '1.1 keyway-0ther1d', '1.0 squid, 1.1 keyway']) {
      const response = await call(strict, 'POST', '/v1/chat/completions', hello, { headers: { via } });
      const body = (await response.json()) as ErrorBody;
      expect({ status: response.status, code: body.error.code }).toEqual({ status: 508, code: 'loop_detected' });
      expect(body.error.message).toContain('already passed through a Keyway gateway');
    }
    const anthropicShaped = await call(
      strict,
      'POST',
      '/v1/messages',
      { model: 'gpt-4o', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { via: '1.1 keyway-x' } },
    );
    expect(anthropicShaped.status).toBe(508);
    expect(((await anthropicShaped.json()) as { type: string }).type).toBe('error');
    expect(simulator.inferenceRequests()).toEqual([]);
    // Another proxy's Via is fine: the same request is served.
    const proxied = await call(strict, 'POST', '/v1/chat/completions', hello, { headers: { via: '1.1 nginx' } });
    expect(proxied.status).toBe(200);
    expect(simulator.inferenceRequests().length).toBe(1);
  });

  test('a Keyway whose upstream is another Keyway gets the refusal back as an upstream failure, and the loop stops there', async () => {
    // The operator points the front gateway's OpenAI at the strict gateway (which would serve it from the simulator).
    const front = await ownGateway({ KEYWAY_OPENAI_BASE_URL: `${strict.url}/v1` });
    await addProviderKeys(front, [{ name: 'openai', api_key: 'sk-proj-UpstreamPolicyFrontKey0000000003' }]);
    const response = await call(front, 'POST', '/v1/chat/completions', hello);
    const body = (await response.json()) as ErrorBody;
    expect({ status: response.status, code: body.error.code }).toEqual({ status: 502, code: 'upstream_error' });
    expect(body.error.message).toContain('HTTP 508');
    expect(body.error.message).toContain('already passed through a Keyway gateway');
    expect(simulator.inferenceRequests()).toEqual([]);
  });
});

describe('upstream answers', () => {
  test('a redirect is not followed: 502 upstream_error, and the redirect target gets nothing', async () => {
    const target = countingServer(() => Response.json({ object: 'list', data: [] }));
    const redirector = countingServer((request) => Response.redirect(`${target.url}${new URL(request.url).pathname}`, 302));
    const gateway = await ownGateway({ KEYWAY_UPSTREAM_ALLOW: '127.0.0.1' });
    await addProviderKeys(gateway, [{ name: 'openai', api_key: KEY, settings: { base_url: `${redirector.url}/v1` } }]);
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello);
    const body = (await response.json()) as ErrorBody;
    expect({ status: response.status, code: body.error.code }).toEqual({ status: 502, code: 'upstream_error' });
    expect(body.error.message).toContain('the upstream redirected (HTTP 302); Keyway does not follow upstream redirects');
    expect(body.error.message).not.toContain(target.url);
    // The models listing (in the background when the key was stored) does not follow either.
    await call(gateway, 'GET', '/v1/providers');
    expect(redirector.hits()).toBeGreaterThanOrEqual(2);
    expect(target.hits()).toBe(0);
  });

  test("an upstream's huge HTML error page reaches the client only as a short summary", async () => {
    const page = `<html><body><h1>Internal admin console</h1>${'<p>INTERNAL-ONLY-DETAIL row</p>'.repeat(4000)}</body></html>`;
    const upstream = countingServer(() => new Response(page, { status: 500, headers: { 'content-type': 'text/html; charset=utf-8' } }));
    const gateway = await ownGateway({ KEYWAY_UPSTREAM_ALLOW: '127.0.0.1' });
    await addProviderKeys(gateway, [{ name: 'openai', api_key: KEY, settings: { base_url: `${upstream.url}/v1` } }]);
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello);
    const body = (await response.json()) as ErrorBody;
    expect({ status: response.status, code: body.error.code }).toEqual({ status: 502, code: 'upstream_error' });
    expect(body.error.message).toBe(`openai answered HTTP 500: non-JSON body (text/html, ${Buffer.byteLength(page)} bytes)`);
    expect(JSON.stringify(body)).not.toContain('INTERNAL-ONLY-DETAIL');
  });

  test("a provider's own JSON message is kept, cut to 200 characters", async () => {
    const long = `Bad request: ${'detail '.repeat(200)}`;
    const upstream = countingServer(() => Response.json({ error: { message: long, type: 'invalid_request_error' } }, { status: 400 }));
    const gateway = await ownGateway({ KEYWAY_UPSTREAM_ALLOW: '127.0.0.1' });
    await addProviderKeys(gateway, [{ name: 'openai', api_key: KEY, settings: { base_url: `${upstream.url}/v1` } }]);
    const response = await call(gateway, 'POST', '/v1/chat/completions', hello);
    const body = (await response.json()) as ErrorBody;
    expect(response.status).toBe(400);
    const quoted = body.error.message.replace('openai answered HTTP 400: ', '');
    expect(quoted.startsWith('Bad request: detail detail')).toBe(true);
    expect(quoted.length).toBe(200);
    expect(quoted.endsWith('…')).toBe(true);
  });
});
