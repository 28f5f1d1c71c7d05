// A first start on an empty store beside the embedded database of an earlier installation is refused,
// saying what that database holds and what to do (QA15 cluster #5); KEYWAY_START_FRESH=1 starts anew on
// purpose. Here the new store is another SQLite file, so no server is needed; the move to PostgreSQL and
// the copy are tested in test/store-postgres/move-from-sqlite.test.ts.

import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const folders: string[] = [];
const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await gateway.stop();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function gatewayOn(dataDirectory: string, databaseFile: string, env: Record<string, string> = {}): Promise<TestGateway> {
  const gateway = await startTestGateway({
    probes: false,
    fetch: (async () => new Response('{"error":{"message":"offline"}}', { status: 503 })) as unknown as typeof fetch,
    env: { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, databaseFile)}`, ...env },
  });
  gateways.push(gateway);
  return gateway;
}

describe('a first start beside an earlier installation', () => {
  test('is refused, naming what the embedded database holds; KEYWAY_START_FRESH=1 starts a new installation', async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-earlier-'));
    folders.push(dataDirectory);
    const earlier = await gatewayOn(dataDirectory, 'keyway.db');
    await addProviderKeys(earlier, [{ name: 'openai', api_key: 'sk-proj-EarlierInstallation0000000000000001' }], earlier.defaultAdminKey);
    const adminKey = earlier.defaultAdminKey;
    await gateways.splice(0)[0]?.stop();
    // stop() removes its own scratch folder only: the earlier installation stays in dataDirectory.
    expect(existsSync(join(dataDirectory, 'keyway.db'))).toBe(true);

    const refused = await gatewayOn(dataDirectory, 'other.db').then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(refused?.name).toBe('ConfigError');
    expect(refused?.message).toContain(
      `KEYWAY_DATABASE_URL names an empty database (file:), but the data directory ${dataDirectory} holds keyway.db, the embedded database of an earlier installation (1 account, 1 active gateway key, 1 provider key, 0 usage rows).`,
    );
    expect(refused?.message).toContain(`to keep using it, set KEYWAY_DATABASE_URL=file:${join(dataDirectory, 'keyway.db')}`);
    expect(refused?.message).toContain('To start a new installation anyway, set KEYWAY_START_FRESH=1.');

    const fresh = await gatewayOn(dataDirectory, 'other.db', { KEYWAY_START_FRESH: '1' });
    expect(fresh.output.join('\n')).toContain('KEYWAY_START_FRESH is set: starting a new installation');
    expect(fresh.defaultAdminKey).not.toBe('');
    expect((await call(fresh, 'GET', '/v1/keys', undefined, { key: adminKey })).status).toBe(401);
  });

  test('the embedded database itself, an empty one, or a store that already holds an installation start as before', async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-earlier-'));
    folders.push(dataDirectory);
    const first = await gatewayOn(dataDirectory, 'keyway.db');
    await gateways.splice(0)[0]?.stop();
    const again = await gatewayOn(dataDirectory, 'keyway.db');
    expect(again.output.join('\n')).not.toContain('Keyway first start');
    await gateways.splice(0)[0]?.stop();
    // other.db made by START_FRESH holds an installation now: later starts on it need nothing.
    await gatewayOn(dataDirectory, 'other.db', { KEYWAY_START_FRESH: 'on' });
    await gateways.splice(0)[0]?.stop();
    const later = await gatewayOn(dataDirectory, 'other.db');
    expect((await call(later, 'GET', '/ready', undefined, { key: '' })).status).toBe(200);
    expect(first.defaultAdminKey).not.toBe('');
  });

  test('a bad KEYWAY_START_FRESH value stops the start', async () => {
    const refused = await startTestGateway({ probes: false, env: { KEYWAY_START_FRESH: 'maybe' } }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(refused?.message).toBe('KEYWAY_START_FRESH must be on or off; got "maybe".');
  });
});
