// References survive a restart: the second start reads them back from the database, raises no
// master-key warning for them (they hold no ciphertext), is ready, and resolves them again through
// the key source (here `env`) at first use, with nothing of the key in the files or the logs.

import { afterAll, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, startTestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const ENV_KEY = 'sk-proj-RestartEnvCanary0123456789abcdefghijklmn';
const directory = mkdtempSync(join(tmpdir(), 'keyway-restart-'));
const openai = startOpenAISimulator({ apiKeys: [ENV_KEY] });
const env = {
  KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
  KEYWAY_DATA_DIR: directory,
  KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}`,
  KEYWAY_KEY_ACME_OPENAI: ENV_KEY,
};

afterAll(async () => {
  await openai.stop();
  rmSync(directory, { recursive: true, force: true });
});

test('a reference added before a restart serves after it, and the key is in no file or log line', async () => {
  const first = await startTestGateway({ env });
  const admin = first.defaultAdminKey;
  expect((await call(first, 'PUT', '/v1/settings/compliance', { data_residency: 'never_store_keys' }, { key: admin })).status).toBe(200);
  const added = await call(
    first,
    'POST',
    '/v1/providers/keys',
    { providers: [{ name: 'openai', key_reference: { source: 'env', locator: 'KEYWAY_KEY_ACME_OPENAI' } }] },
    { key: admin },
  );
  expect(added.status).toBe(201);
  await first.stop();

  const second = await startTestGateway({ env });
  try {
    expect((await call(second, 'GET', '/ready', undefined, { key: '' })).status).toBe(200);
    const response = await call(
      second,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'after restart' }] },
      { key: admin },
    );
    expect(response.status).toBe(200);
    const compliance = (await (await call(second, 'GET', '/v1/settings/compliance', undefined, { key: admin })).json()) as {
      report: { data_residency: { met: boolean } };
    };
    expect(compliance.report.data_residency.met).toBe(true);
    const logs = [...first.output, ...second.output].join('\n');
    expect(logs).not.toContain('not configured');
    expect(logs).not.toContain(ENV_KEY);
    const base = join(directory, 'keyway.db');
    for (const path of [base, `${base}-wal`, `${base}-shm`].filter((file) => existsSync(file))) expect(readFileSync(path).indexOf(ENV_KEY)).toBe(-1);
  } finally {
    await second.stop();
  }
});

test('deleting a stored key wipes its ciphertext from the database files', async () => {
  const gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  try {
    const admin = gateway.defaultAdminKey;
    const added = (await (await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: ENV_KEY }] }, { key: admin })).json()) as {
      providers: Array<{ key_id: string }>;
    };
    const keyId = added.providers[0]?.key_id as string;
    const reader = new Database(join(gateway.dataDirectory, 'keyway.db'), { readonly: true });
    const ciphertext = (reader.query('SELECT ciphertext FROM provider_keys WHERE id = ?').get(keyId) as { ciphertext: string }).ciphertext;
    reader.close();
    expect(ciphertext.length).toBeGreaterThan(40);
    expect((await call(gateway, 'DELETE', `/v1/providers/keys/${keyId}`, undefined, { key: admin })).status).toBe(204);
    const base = join(gateway.dataDirectory, 'keyway.db');
    for (const path of [base, `${base}-wal`, `${base}-shm`].filter((file) => existsSync(file))) {
      const bytes = readFileSync(path);
      expect(bytes.indexOf(ciphertext)).toBe(-1);
      expect(bytes.indexOf(ciphertext.slice(10, 42))).toBe(-1);
      expect(bytes.indexOf(ENV_KEY)).toBe(-1);
    }
  } finally {
    await gateway.stop();
  }
});
