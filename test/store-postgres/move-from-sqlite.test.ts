// Moving an embedded SQLite installation to PostgreSQL (QA15 cluster #5). A first start on the empty
// PostgreSQL database beside the old keyway.db is refused and writes nothing there; KEYWAY_START_FRESH=1
// starts a new installation on purpose; `keyway copy-store` (run as an operator runs it, a process of
// plugins/main.ts) copies everything in batches and refuses a database that is not empty; and a start
// on PostgreSQL with the same data directory serves the old installation: its admin and member keys,
// its team, its provider key (still sealed under the same master key) and its usage.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { SQL } from 'bun';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';

const OPENAI_KEY = 'sk-proj-MoveFromSqliteCanary0000000000000001';
const ENTRY = resolve(import.meta.dir, '../../plugins/main.ts');

const reachable = await postgresReachable();

interface Installation {
  adminKey: string;
  memberKey: string;
  teamId: string;
  memberRequests: number;
  usageRows: number;
}

async function chat(gateway: TestGateway, key: string, content: string): Promise<number> {
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content }] }, { key });
  await response.text();
  return response.status;
}

async function memberUsage(gateway: TestGateway, key: string): Promise<number> {
  const response = await call(gateway, 'GET', '/v1/usage/me', undefined, { key });
  expect(response.status).toBe(200);
  return ((await response.json()) as { totals: { requests: number } }).totals.requests;
}

/** `keyway copy-store …` as a process, with only the environment given. */
async function copyStore(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, ENTRY, 'copy-store', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

async function tableCount(url: string): Promise<number> {
  const sql = new SQL(url, { max: 1 });
  try {
    const [row] = (await sql.unsafe('SELECT COUNT(*)::int AS count FROM information_schema.tables WHERE table_schema = current_schema()')) as Array<{
      count: number;
    }>;
    return row?.count ?? -1;
  } finally {
    await sql.close();
  }
}

describe.skipIf(!reachable)('moving an SQLite installation to PostgreSQL', () => {
  let openai: SimulatorHandle;
  let dataDirectory: string;
  let database: TestDatabase;
  let freshDatabase: TestDatabase;
  const gateways: TestGateway[] = [];
  const installation: Installation = { adminKey: '', memberKey: '', teamId: '', memberRequests: 0, usageRows: 0 };

  const start = async (env: Record<string, string>): Promise<TestGateway> => {
    const gateway = await startTestGateway({ probes: false, env: { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, ...env } });
    gateways.push(gateway);
    return gateway;
  };
  const stopAll = async (): Promise<void> => {
    for (const gateway of gateways.splice(0)) await gateway.stop();
  };

  beforeAll(async () => {
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    dataDirectory = mkdtempSync(join(tmpdir(), 'keyway-move-'));
    database = await createTestDatabase();
    freshDatabase = await createTestDatabase();
    // The earlier installation: the embedded default, its generated master key in the data directory.
    const sqlite = await start({ KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}` });
    installation.adminKey = sqlite.defaultAdminKey;
    await addProviderKeys(sqlite, [{ name: 'openai', api_key: OPENAI_KEY }], installation.adminKey);
    const created = await call(
      sqlite,
      'POST',
      '/v1/teams',
      { name: 'Moving Team', byok_permissions: { providers: { openai: { enabled: true } } }, members: [{ email: 'dev@example.com', role: 'developer' }] },
      { key: installation.adminKey },
    );
    const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
    installation.teamId = team.id;
    installation.memberKey = team.members[0]?.api_key ?? '';
    for (let index = 0; index < 3; index++) expect(await chat(sqlite, installation.memberKey, `member ${index}`)).toBe(200);
    for (let index = 0; index < 4; index++) expect(await chat(sqlite, installation.adminKey, `admin ${index}`)).toBe(200);
    await sqlite.runtime.usage.flush();
    installation.memberRequests = await memberUsage(sqlite, installation.memberKey);
    installation.usageRows = (await sqlite.runtime.store.listUsage('default')).length;
    await stopAll();
  });

  afterAll(async () => {
    await stopAll();
    await openai?.stop();
    await database?.drop();
    await freshDatabase?.drop();
    if (dataDirectory !== undefined) rmSync(dataDirectory, { recursive: true, force: true });
  });

  test('a first start on the empty database beside keyway.db is refused, saying what to run, and writes nothing there', async () => {
    expect(installation.memberRequests).toBe(3);
    const refused = await start({ KEYWAY_DATABASE_URL: database.url }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    const path = join(dataDirectory, 'keyway.db');
    expect(refused?.message).toContain(
      `KEYWAY_DATABASE_URL names an empty database (postgres:), but the data directory ${dataDirectory} holds keyway.db, the embedded database of an earlier installation (1 account, 2 active gateway keys, 1 provider key, ${installation.usageRows} usage rows).`,
    );
    expect(refused?.message).toContain(`bun plugins/main.ts copy-store --from sqlite:${path}`);
    expect(refused?.message).toContain('To start a new installation anyway, set KEYWAY_START_FRESH=1.');
    expect(refused?.message).not.toContain(new URL(database.url).pathname.slice(1));
    expect(await tableCount(database.url)).toBe(0);
  });

  test('KEYWAY_START_FRESH=1 starts a new installation there on purpose: a new admin key, the old one refused', async () => {
    const fresh = await start({ KEYWAY_DATABASE_URL: freshDatabase.url, KEYWAY_START_FRESH: '1' });
    expect(fresh.defaultAdminKey).not.toBe('');
    expect(fresh.output.join('\n')).toContain('KEYWAY_START_FRESH is set: starting a new installation');
    expect((await call(fresh, 'GET', '/v1/teams', undefined, { key: installation.adminKey })).status).toBe(401);
    await stopAll();
  });

  test('copy-store copies everything in batches; a start on PostgreSQL then serves the old installation', async () => {
    const env = { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: database.url };
    // A Keyway SIGKILLed on the target left its instance lease row (core/process/instance-lease.ts):
    // bookkeeping, not an installation, so it does not make the target "not empty".
    const leaseWriter = new SQL(database.url, { max: 1 });
    await leaseWriter.unsafe(
      'CREATE TABLE keyway_instance_lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, described TEXT NOT NULL, expires_at BIGINT NOT NULL)',
    );
    await leaseWriter.unsafe("INSERT INTO keyway_instance_lease VALUES ('instance', 'dead', 'host x, pid 1', 0)");
    await leaseWriter.close();
    const copied = await copyStore(['--from', `sqlite:${join(dataDirectory, 'keyway.db')}`, '--batch-size', '2'], env);
    expect({ code: copied.code, stderr: copied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(copied.stdout).toContain(`  usage_records: ${installation.usageRows} row(s)`);
    expect(copied.stdout).toContain('usage_records: 2 of');
    expect(copied.stdout).toContain("every table's row count matches");
    expect(copied.stdout).not.toContain(new URL(database.url).pathname.slice(1));

    const again = await copyStore(['--from', `sqlite:${join(dataDirectory, 'keyway.db')}`], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not empty (accounts, ');
    expect(again.stderr).toContain('copy-store writes only into an empty database');

    const moved = await start({ KEYWAY_DATABASE_URL: database.url });
    expect(moved.output.join('\n')).not.toContain('Keyway first start');
    const teams = await call(moved, 'GET', '/v1/teams', undefined, { key: installation.adminKey });
    expect(teams.status).toBe(200);
    expect(((await teams.json()) as { teams: Array<{ id: string; name: string }> }).teams.map((team) => [team.id, team.name])).toEqual([
      [installation.teamId, 'Moving Team'],
    ]);
    // The provider key decrypts (same master key), and new usage rows follow the copied ones.
    expect(await chat(moved, installation.memberKey, 'after the move')).toBe(200);
    await moved.runtime.usage.flush();
    expect(await memberUsage(moved, installation.memberKey)).toBe(installation.memberRequests + 1);
    expect((await moved.runtime.store.listUsage('default')).length).toBe(installation.usageRows + 1);
    // The teams' rowid stand-in continues too: a new member is inserted after the copied ones.
    const added = await call(
      moved,
      'POST',
      `/v1/teams/${installation.teamId}/members`,
      { email: 'new@example.com', role: 'developer' },
      { key: installation.adminKey },
    );
    expect(added.status).toBe(201);
    const analytics = await call(moved, 'GET', '/v1/analytics/byok?period=today&group_by=team', undefined, { key: installation.adminKey });
    expect(((await analytics.json()) as { total_requests: number }).total_requests).toBe(installation.usageRows + 1);
  });

  test('copy-store refuses what it cannot copy, saying why', async () => {
    const missing = await copyStore(['--from', `sqlite:${join(dataDirectory, 'nothing.db')}`], { KEYWAY_DATABASE_URL: database.url });
    expect({ code: missing.code, stderr: missing.stderr.trim() }).toEqual({
      code: 1,
      stderr: `keyway copy-store: ${join(dataDirectory, 'nothing.db')} does not exist or is not a file.`,
    });
    const otherKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
    const wrongKey = await copyStore(['--from', `sqlite:${join(dataDirectory, 'keyway.db')}`], {
      KEYWAY_DATA_DIR: dataDirectory,
      KEYWAY_DATABASE_URL: freshDatabase.url,
      KEYWAY_MASTER_KEY: otherKey,
    });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('keyway copy-store: Wrong master key: master key v1 (from KEYWAY_MASTER_KEY) does not open');
    expect(wrongKey.stderr).not.toContain(otherKey);
    const noTarget = await copyStore(['--from', `sqlite:${join(dataDirectory, 'keyway.db')}`], {});
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('--to is missing: give a postgres:// URL, or set KEYWAY_DATABASE_URL to one');
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): the move test is skipped', () => {});
