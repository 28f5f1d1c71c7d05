// Key material is refused at input when no provider could have issued it: a key with a character
// outside visible ASCII (the docs' old `sk-…` placeholder) or a space. It used to be stored (201) and
// then fail every use as "connection failed", a rotation as 422 server_error, a reconciliation admin
// key as 502: an HTTP header cannot carry it. Every field and header that takes a key answers 400
// invalid_field naming itself, with the rule, never the key.

import { describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { call, expectSpecError } from '../helpers/gateway.ts';
import { openAIGatewaySuite } from '../helpers/openai-gateway.ts';

const UPSTREAM_KEY = 'sk-proj-KeyMaterialUpstreamKey0123456789abcdef';
const RULE = 'must be printable ASCII without spaces: provider keys have no other characters';
/** What the docs printed as placeholders, and what a paste can bring: none is a key a provider issues. */
const NOT_KEYS = ['sk-…', 'sk-proj-…', 'sk-proj-clé0123456789', 'sk-has a space', 'sk-tab\there', 'sk-\u00a0nbsp0123456789'];

const suite = openAIGatewaySuite(UPSTREAM_KEY);

/** Expects 400 invalid_field on `param` stating the rule, without the refused key anywhere in the answer. */
async function expectRefusedKey(response: Response, param: string, key: string): Promise<void> {
  const text = await response.text();
  expect(text).not.toContain(key);
  const body = await expectSpecError(new Response(text, { status: response.status }), 400, 'invalid_field');
  expect(body.error.param).toBe(param);
  expect(body.error.message).toBe(`Invalid value for '${param}': ${RULE}`);
}

async function storedKeyCount(path: string): Promise<number> {
  const body = (await (await call(suite.gateway, 'GET', path)).json()) as { providers: Array<{ keys?: unknown[] }> };
  return body.providers.reduce((sum, provider) => sum + (provider.keys?.length ?? 1), 0);
}

describe('a provider key that is not printable ASCII without spaces is refused at input', () => {
  test('POST /v1/providers/keys: 400 naming providers[i].api_key, nothing stored', async () => {
    const before = await storedKeyCount('/v1/providers');
    for (const key of NOT_KEYS) {
      const response = await call(suite.gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: key }] });
      await expectRefusedKey(response, 'providers[0].api_key', key);
    }
    expect(await storedKeyCount('/v1/providers')).toBe(before);
  });

  test('POST /v1/platform/keys: the same rule for the operator', async () => {
    const response = await call(suite.gateway, 'POST', '/v1/platform/keys', { providers: [{ name: 'openai', api_key: 'sk-…' }] });
    await expectRefusedKey(response, 'providers[0].api_key', 'sk-…');
  });

  test("a rotation's new_api_key: 400, not 422 rotation_test_failed with reason server_error", async () => {
    const response = await call(suite.gateway, 'POST', '/v1/providers/keys/rotate', { provider: 'openai', new_api_key: 'sk-proj-…' });
    await expectRefusedKey(response, 'new_api_key', 'sk-proj-…');
    const rotations = (await (await call(suite.gateway, 'GET', '/v1/providers/keys/rotations')).json()) as { rotations: unknown[] };
    expect(rotations.rotations).toEqual([]);
  });

  test('a reconciliation admin key: 400, not 502 upstream_error suggesting to store it unchecked', async () => {
    const response = await call(suite.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: 'sk-admin-…' });
    await expectRefusedKey(response, 'admin_key', 'sk-admin-…');
  });

  test('X-Provider-Key: 400 naming the header before any upstream call', async () => {
    const calls = suite.simulator.inferenceRequests().length;
    // fetch sends header values as bytes up to U+00FF: a space, a tab and é reach Keyway as sent.
    for (const key of ['sk-has a space0123456789', 'sk-tab\there0123456789', 'sk-proj-clé0123456789']) {
      const response = await call(
        suite.gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'X-Provider-Key': key, 'X-Provider': 'openai' } },
      );
      await expectRefusedKey(response, 'X-Provider-Key', key);
    }
    expect(suite.simulator.inferenceRequests().length).toBe(calls);
  });

  test('X-Provider-Key with the UTF-8 bytes of `sk-…`, as curl sends the docs placeholder: 400 naming the header', async () => {
    const answer = await rawRequest(
      suite.gateway.url,
      [
        'POST /v1/chat/completions HTTP/1.1',
        `Host: ${new URL(suite.gateway.url).host}`,
        'Authorization: Bearer kw_op_TestOperatorKey0123456789abcdefghij',
        'Content-Type: application/json',
        'X-Provider: openai',
        'X-Provider-Key: sk-\u2026',
        'Connection: close',
      ],
      JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"param":"X-Provider-Key"');
    expect(answer).toContain(RULE);
  });

  test('keys as providers issue them are still taken', async () => {
    const response = await call(suite.gateway, 'POST', '/v1/providers/keys', {
      providers: [{ name: 'openai', api_key: 'sk-proj-Another_Key-0123456789~!#$%&*+=?^`{|}' }],
    });
    expect(response.status).toBe(201);
    const served = await call(
      suite.gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'X-Provider-Key': UPSTREAM_KEY, 'X-Provider': 'openai' } },
    );
    expect(served.status).toBe(200);
    await served.arrayBuffer();
  });
});

/** One HTTP/1.1 exchange over a socket, header bytes as UTF-8 (what curl sends for a pasted `…`). */
function rawRequest(url: string, head: string[], body: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(Buffer.from(`${head.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'utf8'));
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}
