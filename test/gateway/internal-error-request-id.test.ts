// A 500 internal_error raised where the request id is not known (the key vault failing to decrypt a
// stored provider key) names the request's id in its message, the same one X-Request-Id carries.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import type { CryptoBackend } from '../../core/spec/crypto-backend.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const API_KEY = 'sk-proj-RequestIdUndecryptable000000000001';
let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [API_KEY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` }, probes: false });
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('the request id in an internal error', () => {
  test('an error raised without the request id takes it from the answer; one raised with it keeps it', () => {
    const pending = new KeywayError('internal_error', { detail: 'provider key pk_1 could not be decrypted' });
    expect(pending.message).toEndWith('The request id is -.');
    expect(pending.toDescriptor('req_abc').message).toBe('Keyway hit an internal error (provider key pk_1 could not be decrypted). The request id is req_abc.');
    expect(pending.toDescriptor().message).toEndWith('The request id is -.');
    const known = new KeywayError('internal_error', { detail: 'TypeError', requestId: 'req_own' });
    expect(known.toDescriptor('req_other').message).toEndWith('The request id is req_own.');
  });

  test('an undecryptable provider key: the 500 names the id X-Request-Id carries', async () => {
    const [added] = await addProviderKeys(gateway, [{ name: 'openai', api_key: API_KEY }]);
    const backends = gateway.runtime.plugins.cryptoBackends as Map<string, CryptoBackend>;
    const local = backends.get('local') as CryptoBackend;
    // As if the key had been sealed under another instance's master key: decryption fails.
    backends.set('local', { ...local, decrypt: async () => Promise.reject(new Error('Decryption failed')) });
    try {
      for (const sent of ['req-qa13-decrypt-1', undefined]) {
        gateway.runtime.vault.forget(String(added?.key_id));
        const headers: Record<string, string> = sent === undefined ? {} : { 'x-request-id': sent };
        const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, { headers });
        const body = (await response.json()) as { error: { code: string; message: string } };
        const requestId = response.headers.get('x-request-id') ?? '';
        expect(response.status).toBe(500);
        expect(body.error.code).toBe('internal_error');
        expect(requestId).not.toBe('');
        if (sent !== undefined) expect(requestId).toBe(sent);
        expect(body.error.message).toContain('could not be decrypted');
        expect(body.error.message).toEndWith(`The request id is ${requestId}.`);
      }
    } finally {
      backends.set('local', local);
    }
  });
});
