// A gateway on PostgreSQL, driven over HTTP as users drive it: provider keys, chat calls through the
// OpenAI simulator, the usage rows they leave, analytics equal to those rows, teams created, changed
// and deleted, the audit log; and no provider or gateway key in any row of any table.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { definePlugin, PLUGIN_API_VERSION, type PluginDefinition } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, flushUsage, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from './database.ts';
import { usageRecord } from '../helpers/usage-record.ts';

const OPENAI_KEY = 'sk-proj-PostgresCanaryOpenAI000000000000000001';
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 13 + 1)).toString('base64');

interface AuditEvent {
  action: string;
  type: string;
  status: number | null;
}

const reachable = await postgresReachable();

describe.skipIf(!reachable)('a gateway on PostgreSQL', () => {
  let openai: SimulatorHandle;
  let database: TestDatabase;
  let gateway: TestGateway;
  let adminKey: string;
  let memberKey = '';
  let teamId = '';

  const chat = (key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello!' }], ...body }, { key, headers });

  beforeAll(async () => {
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    database = await createTestDatabase();
    gateway = await startTestGateway({
      probes: false,
      env: { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_AUDIT_FLUSH_MS: '50' },
    });
    adminKey = gateway.defaultAdminKey;
  });

  afterAll(async () => {
    await gateway?.stop();
    await openai?.stop();
    await database?.drop();
  });

  test('the store in use is PostgreSQL through Bun.SQL, and /ready answers 200', async () => {
    expect({ driver: gateway.runtime.store.driver, dialect: gateway.runtime.store.dialect }).toEqual({ driver: 'bun-sql', dialect: 'postgres' });
    const ready = await call(gateway, 'GET', '/ready', undefined, { key: '' });
    expect(ready.status).toBe(200);
  });

  test('provider keys are stored sealed and listed masked', async () => {
    const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
    expect(stored?.key_id).toBeString();
    const rows = await gateway.runtime.store.query('SELECT ciphertext, masked_key FROM provider_keys WHERE id = ?', [stored?.key_id]);
    expect(rows).toHaveLength(1);
    expect(String(rows[0]?.ciphertext)).not.toContain(OPENAI_KEY);
    expect(String(rows[0]?.masked_key)).not.toBe(OPENAI_KEY);
  });

  test('chat calls, streamed and not, leave one usage row each, with tokens and cost', async () => {
    const plain = await chat(adminKey);
    expect(plain.status).toBe(200);
    await plain.json();
    const streamed = await chat(adminKey, { stream: true, stream_options: { include_usage: true } });
    expect(streamed.status).toBe(200);
    await readSse(streamed);
    await flushUsage(gateway);
    const rows = await gateway.runtime.store.listUsage('default');
    expect(rows).toHaveLength(2);
    expect(rows.map((row) => row.streamed).sort()).toEqual([false, true]);
    for (const row of rows) {
      expect(row).toMatchObject({ provider: 'openai', model: 'gpt-4o', byok: true, status: 200 });
      expect(row.inputTokens).toBeGreaterThan(0);
      expect(row.costUsd).toBeGreaterThan(0);
    }
  });

  test('teams: create with a member, read, rename, and the member calls with its own key', async () => {
    const created = await call(
      gateway,
      'POST',
      '/v1/teams',
      { name: 'Data Science', members: [{ email: 'analyst@company.com', role: 'developer', byok_access: true }] },
      { key: adminKey },
    );
    expect(created.status).toBe(201);
    const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
    teamId = team.id;
    memberKey = team.members[0]?.api_key ?? '';
    const renamed = await call(gateway, 'PATCH', `/v1/teams/${teamId}`, { name: 'Data Science EU' }, { key: adminKey });
    expect(renamed.status).toBe(200);
    const read = (await (await call(gateway, 'GET', `/v1/teams/${teamId}`, undefined, { key: adminKey })).json()) as { name: string; members: unknown[] };
    expect(read.name).toBe('Data Science EU');
    expect(read.members).toHaveLength(1);
    const listed = (await (await call(gateway, 'GET', '/v1/teams', undefined, { key: adminKey })).json()) as { teams: Array<{ id: string }> };
    expect(listed.teams.map((entry) => entry.id)).toContain(teamId);
    const response = await chat(memberKey, {}, { 'x-project-tag': 'churn' });
    expect(response.status).toBe(200);
    await response.json();
    await flushUsage(gateway);
    const row = (await gateway.runtime.store.listUsage('default')).find((entry) => entry.teamId === teamId);
    expect(row?.projectTag).toBe('churn');
  });

  test('analytics equals the usage rows, by provider and by team', async () => {
    const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.provider !== null);
    const response = await call(gateway, 'GET', '/v1/analytics/byok?period=current_month&group_by=provider,team', undefined, { key: adminKey });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { total_requests: number; estimated_costs: number; tokens: Record<string, number>; by_team?: unknown };
    expect(answer.total_requests).toBe(rows.length);
    expect(answer.estimated_costs).toBeCloseTo(
      rows.reduce((sum, row) => sum + (row.costUsd ?? 0), 0),
      6,
    );
    const input = rows.reduce((sum, row) => sum + row.inputTokens, 0);
    expect(Object.values(answer.tokens)).toContain(input);
    const rollup = await gateway.runtime.store.query('SELECT SUM(requests) AS requests FROM usage_rollup_hourly WHERE account_id = ?', ['default']);
    expect(Number(rollup[0]?.requests)).toBe(rows.length);
  });

  test('deleting the team revokes its member key; analytics and the export still name it', async () => {
    const deleted = await call(gateway, 'DELETE', `/v1/teams/${teamId}`, undefined, { key: adminKey });
    expect(deleted.status).toBeLessThan(300);
    await deleted.text();
    const refused = await chat(memberKey);
    expect(refused.status).toBe(401);
    await refused.text();
    const analytics = await call(gateway, 'GET', '/v1/analytics/byok?period=current_month&group_by=team,key', undefined, { key: adminKey });
    const answer = (await analytics.json()) as { by_team: Array<Record<string, unknown>>; by_key: Array<Record<string, unknown>> };
    expect(answer.by_team.find((entry) => entry.team_id === teamId)?.name).toBe('Data Science EU');
    // The member key, revoked with its team, keeps its name too.
    expect(answer.by_key.every((entry) => typeof entry.name === 'string')).toBe(true);
    const exported = await call(gateway, 'POST', '/v1/billing/export', { format: 'json', include: ['team_breakdown'] }, { key: adminKey });
    const file = (await exported.json()) as { team_breakdown: Array<Record<string, unknown>> };
    expect(file.team_breakdown.find((entry) => entry.team_id === teamId)?.team_name).toBe('Data Science EU');
  });

  test('the audit log holds the management writes, read back from PostgreSQL', async () => {
    let actions: string[] = [];
    for (let attempt = 0; attempt < 50 && !actions.includes(`DELETE /v1/teams/:id`); attempt++) {
      await Bun.sleep(50);
      const page = (await (await call(gateway, 'GET', '/v1/audit-logs?type=admin&limit=100', undefined, { key: adminKey })).json()) as { events: AuditEvent[] };
      actions = page.events.map((event) => event.action);
    }
    expect(actions).toContain('POST /v1/providers/keys');
    expect(actions).toContain('POST /v1/teams');
    expect(actions).toContain('PATCH /v1/teams/:id');
    expect(actions).toContain('DELETE /v1/teams/:id');
  });

  test('no provider key and no gateway key in any row of any table', async () => {
    const tables = await gateway.runtime.store.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
    expect(tables.length).toBeGreaterThan(15);
    let text = '';
    for (const { table_name: table } of tables) {
      const rows = await gateway.runtime.store.query(`SELECT row_to_json(t)::text AS row FROM ${String(table)} t`);
      text += rows.map((row) => String(row.row)).join('\n');
    }
    expect(text).toContain('Data Science EU');
    for (const secret of [OPENAI_KEY, adminKey, memberKey]) expect(text).not.toContain(secret);
  });
});

/** A third-party plugin whose tables exist in SQLite only. */
const sqliteOnlyPlugin = definePlugin({
  name: 'sqlite-only-notes',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  setup: () => ({ migrations: { sqlite: [{ id: '0001_notes', statements: ['CREATE TABLE embedded_only_notes (id TEXT PRIMARY KEY)'] }] } }),
}) as PluginDefinition;

/** A third-party plugin whose roll-up is a fold only: stores that take folds keep it, others have no SQL for it. */
const foldOnlyNotes = 'CREATE TABLE fold_only_daily (account_id TEXT NOT NULL, day TEXT NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (account_id, day))';
const foldOnlyPlugin = definePlugin({
  name: 'fold-only-rollup',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  setup: () => ({
    migrations: { sqlite: [{ id: '0001_daily', statements: [foldOnlyNotes] }], postgres: [{ id: '0001_daily', statements: [foldOnlyNotes] }] },
    usageFolds: [
      {
        table: 'fold_only_daily',
        keys: [
          { column: 'account_id', from: 'account_id' },
          { column: 'day', from: 'created_at', length: 10 },
        ],
        sums: [{ column: 'requests', of: 1 }],
      },
    ],
  }),
}) as PluginDefinition;

/**
 * A gateway with `plugin` refuses to start on a fresh PostgreSQL database with `refusal`, and starts on
 * the embedded one; answers that one (the caller stops it).
 */
async function refusedOnPostgresStartedOnSqlite(plugin: PluginDefinition, refusal: RegExp) {
  const database = await createTestDatabase();
  try {
    const start = startTestGateway({
      probes: false,
      env: { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY },
      extraPlugins: [{ definition: plugin, source: 'test' }],
    });
    await expect(start).rejects.toThrow(refusal);
  } finally {
    await database.drop();
  }
  return startTestGateway({
    probes: false,
    env: { KEYWAY_DATABASE_URL: ':memory:', KEYWAY_MASTER_KEY: MASTER_KEY },
    extraPlugins: [{ definition: plugin, source: 'test' }],
  });
}

describe.skipIf(!reachable)('a plugin whose roll-up is a fold only', () => {
  test('stops the start on PostgreSQL, which takes no folds, naming the plugin; SQLite starts and keeps the fold', async () => {
    const sqlite = await refusedOnPostgresStartedOnSqlite(foldOnlyPlugin, /store cannot keep usage folds, which fold-only-rollup need/);
    await sqlite.runtime.store.insertUsage([usageRecord({ accountId: 'acc_fold', createdAt: '2026-03-01T10:00:00.000Z' })]);
    expect(await sqlite.runtime.store.query('SELECT * FROM fold_only_daily')).toEqual([{ account_id: 'acc_fold', day: '2026-03-01', requests: 1 }]);
    await sqlite.stop();
  });
});

describe.skipIf(!reachable)('a plugin without PostgreSQL migrations', () => {
  test('stops the start on PostgreSQL, naming the plugin and the dialects it has; SQLite starts', async () => {
    const sqlite = await refusedOnPostgresStartedOnSqlite(
      sqliteOnlyPlugin,
      /postgres store .*no postgres migrations from sqlite-only-notes, which ship SQL only for sqlite/,
    );
    expect(await sqlite.runtime.store.query('SELECT COUNT(*) AS count FROM embedded_only_notes')).toEqual([{ count: 0 }]);
    await sqlite.stop();
  });

  test('a database URL with a password that cannot be reached: the error names the host, never the password', async () => {
    const start = startTestGateway({
      probes: false,
      env: { KEYWAY_DATABASE_URL: 'postgres://keyway:Hunter2Secret@127.0.0.1:1/keyway', KEYWAY_MASTER_KEY: MASTER_KEY },
    });
    const error = (await start.then(
      () => new Error('started'),
      (reason: unknown) => reason as Error,
    )) as Error;
    expect(error.message).toContain('127.0.0.1:1');
    expect(error.message).not.toContain('Hunter2Secret');
  });
});

if (!reachable) test.skip('PostgreSQL is not reachable at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL): the gateway on PostgreSQL is skipped', () => {});
