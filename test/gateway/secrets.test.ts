// Canary keys: after a full tour of the API (success, upstream failures, streams, deletion), no
// provider key or gateway key may appear in a log line, an API answer or the database files.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const CANARY = 'sk-proj-CANARYxSECRETxKEYxDoNotLeak0123456789';
const SECOND_CANARY = 'sk-proj-CANARYxSECONDxKEYxDoNotLeak9876543210';
let simulator: SimulatorHandle;
let gateway: TestGateway;
const answers: string[] = [];

async function record(response: Response): Promise<Response> {
  const text = await response.text();
  const headers = [...response.headers.entries()].map(([name, value]) => `${name}: ${value}`).join('\n');
  answers.push(`${headers}\n${text}`);
  return new Response(text, { status: response.status, headers: response.headers });
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [CANARY, SECOND_CANARY] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('canary keys never leak', () => {
  test('a tour of the API', async () => {
    const added = await record(
      await call(gateway, 'POST', '/v1/providers/keys', {
        providers: [
          { name: 'openai', api_key: CANARY },
          { name: 'openai', api_key: SECOND_CANARY },
        ],
      }),
    );
    expect(added.status).toBe(201);
    const stored = ((await added.json()) as { providers: Array<{ key_id: string; masked_key: string; fingerprint: string }> }).providers;
    expect(stored[0]?.masked_key).toBe('sk-proj-…6789');
    expect(stored[0]?.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    await record(await call(gateway, 'GET', '/v1/providers'));
    await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] }));
    await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hello' }] }));
    simulator.inject({ kind: 'auth' }, { kind: 'auth' });
    const rejected = await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] }));
    expect(rejected.status).toBe(502);
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hello there' }] }));
    // A client that pastes a provider key into its bearer header must not see it echoed back.
    await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [] }, { key: CANARY }));
    await record(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'nope', api_key: CANARY }] }));
    await record(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: CANARY }] }));
    await record(await call(gateway, 'DELETE', `/v1/providers/keys/${stored[1]?.key_id}`));
    await gateway.runtime.usage.flush();

    const secrets = [CANARY, SECOND_CANARY, OPERATOR_KEY, gateway.defaultAdminKey];
    const logs = gateway.output.filter((line) => !line.includes('Keyway first start'));
    const databaseFiles = ['keyway.db', 'keyway.db-wal']
      .map((name) => join(gateway.dataDirectory, name))
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path).toString('latin1'));
    expect(databaseFiles.length).toBeGreaterThan(0);
    expect(logs.length).toBeGreaterThan(5);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      for (const line of logs) expect(line).not.toContain(secret);
      for (const answer of answers) expect(answer).not.toContain(secret);
      for (const file of databaseFiles) expect(file).not.toContain(secret);
      // Not even the key in a common encoding.
      for (const file of databaseFiles) expect(file).not.toContain(Buffer.from(secret).toString('base64'));
    }
  });

  test('gateway keys are stored as hashes only', async () => {
    const rows = await gateway.runtime.store.query('SELECT key_hash, masked_key FROM gateway_keys');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(String(row.key_hash)).toMatch(/^[0-9a-f]{64}$/);
      expect(String(row.masked_key)).toMatch(/…/);
    }
  });

  test('a ciphertext copied into another row does not decrypt', async () => {
    const [first, second] = await addProviderKeys(gateway, [
      { name: 'openai', api_key: 'sk-proj-AadBindingFirst000000000000000001', weight: 5 },
      { name: 'openai', api_key: 'sk-proj-AadBindingSecond00000000000000002', weight: 4 },
    ]);
    const rows = await gateway.runtime.store.query(`SELECT id, ciphertext FROM provider_keys WHERE id IN ('${first?.key_id}', '${second?.key_id}')`);
    const firstCiphertext = rows.find((row) => row.id === first?.key_id)?.ciphertext;
    expect(String(firstCiphertext)).toMatch(/^kw1\.local\.v1\./);
    await gateway.runtime.store.execute(`UPDATE provider_keys SET ciphertext = '${String(firstCiphertext)}' WHERE id = '${second?.key_id}'`);
    await gateway.runtime.snapshots.refresh();
    const vault = gateway.runtime.vault;
    const secondRecord = gateway.runtime.snapshots.current.keysById.get(String(second?.key_id));
    expect(secondRecord).toBeDefined();
    let failure: unknown;
    try {
      await vault.credential(secondRecord as NonNullable<typeof secondRecord>);
    } catch (error) {
      failure = error;
    }
    expect(String((failure as Error | undefined)?.message)).toContain('could not be decrypted');
    expect(String((failure as Error).message)).not.toContain('AadBinding');
  });
});
