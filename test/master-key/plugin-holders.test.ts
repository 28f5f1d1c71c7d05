// Master-key rotation re-wraps what plugins seal themselves (stored Responses, the webhook secret, the
// reconciliation admin keys, alert targets, the compliance, reconciliation and rotation notify lists, a third party's table), not only provider keys: before the rotation v1 is
// not removable while any of them needs it; after it, a start with v2 alone still opens every one of
// them. And a start without a version one of them still needs is refused as for provider keys, naming
// each holder and how many of its values need it, instead of starting and failing on them later.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { join } from 'node:path';
import type { PluginSource } from '../../core/registry.ts';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import { definePlugin, PLUGIN_API_VERSION, type PluginDefinition } from '../../core/spec/plugin.ts';
import { AdminKeys } from '../../plugins/reconciliation/admin-keys.ts';
import { ALERTS_SECTION, type AlertsSection } from '../../plugins/alerts/evaluate.ts';
import { maskTarget } from '../../plugins/alerts/deliver.ts';
import { call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { generateMasterKey } from '../crypto/helpers.ts';
import { canaryKeys, databaseDump, makeDataDirectory, refusedStart, startAt, type Restartable } from './helpers.ts';

const KEYS = canaryKeys(2, 'HOLD');
const FIRST = generateMasterKey();
const SECOND = generateMasterKey();
const ADMIN_KEY = 'sk-admin-CANARYHOLDxDoNotLeak0123456789abcdef';
const NOTE = 'CANARYHOLD-note-DoNotLeak';
const SLACK_TARGET = 'https://hooks.slack.com/services/T0HOLD/B0HOLD/CANARYHOLDslackDoNotLeak';
const LIST_TARGETS = ['compliance', 'reconciliation', 'rotation', 'schedule'].map((name) => `https://receiver.test/${name}/CANARYHOLD${name}DoNotLeak`);
const [COMPLIANCE_TARGET = '', RECONCILIATION_TARGET = '', ROTATION_TARGET = '', SCHEDULE_TARGET = ''] = LIST_TARGETS;
/** Each notify list's holder, with the column its key version is recorded in. */
const LIST_HOLDERS = [
  ['audit:compliance_targets', 'SELECT notify_key_version AS version FROM compliance_targets'],
  ['reconciliation:reconciliation_settings', 'SELECT notify_key_version AS version FROM reconciliation_settings'],
  ['rotation:key_rotations', 'SELECT webhooks_key_version AS version FROM key_rotations'],
  ['rotation:key_rotation_schedules', 'SELECT webhooks_key_version AS version FROM key_rotation_schedules'],
] as const;
let simulator: SimulatorHandle;
const directories: Array<{ remove(): void }> = [];
const running = new Set<Restartable>();

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: KEYS });
});

afterAll(async () => {
  for (const gateway of running) await gateway.stop();
  await simulator.stop();
  for (const directory of directories) directory.remove();
});

type Body = Record<string, unknown>;

async function bodyOf(response: Response): Promise<{ status: number; body: Body }> {
  return { status: response.status, body: (await response.json()) as Body };
}

/** A data directory whose gateway is restarted with another keyring, one gateway at a time. */
function scenario(): (keyring: string) => Promise<Restartable> {
  const directory = makeDataDirectory();
  directories.push(directory);
  let current: Restartable | undefined;
  return async (keyring) => {
    if (current !== undefined) {
      await current.stop();
      running.delete(current);
    }
    current = await startAt(directory.path, { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_MASTER_KEYS: keyring });
    running.add(current);
    return current;
  };
}

function tableRows(gateway: Restartable, sql: string): Body[] {
  const database = new Database(join(gateway.runtime.config.dataDirectory, 'keyway.db'), { readonly: true });
  try {
    return database.query(sql).all() as Body[];
  } finally {
    database.close();
  }
}

async function waitForRow(gateway: Restartable, sql: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (tableRows(gateway, sql).length > 0) return;
    await Bun.sleep(20);
  }
  throw new Error(`no row for: ${sql}`);
}

/** With v1 and v2 configured: v1 is not removable while the one plugin value needs it; the rotation re-wraps it; then v1 is. */
async function rotateExpecting(gateway: Restartable): Promise<void> {
  const before = await bodyOf(await call(gateway, 'GET', '/v1/admin/master-key/status'));
  expect(before.body).toMatchObject({ current_key_version: 2, key_versions: [1, 2], removable_versions: [] });
  expect(before.body.stored_by_version).toEqual([{ backend: 'local', key_version: 1, count: 1 }]);
  const rotated = await bodyOf(await call(gateway, 'POST', '/v1/admin/master-key/rotate'));
  expect(rotated.status).toBe(200);
  expect(rotated.body).toMatchObject({ status: 'completed', rewrapped: 1, failed: 0, removable_versions: [1] });
  expect(rotated.body.stored_by_version).toEqual([{ backend: 'local', key_version: 2, count: 1 }]);
}

describe('master key rotation of plugin-sealed values', () => {
  test('a stored response: re-wrapped, then read and continued with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const added = await bodyOf(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[0] }] }));
    const keyId = (added.body.providers as Array<{ key_id: string }>)[0]?.key_id;
    const created = await bodyOf(await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'hello under v1' }));
    expect(created.status).toBe(200);
    const responseId = String(created.body.id);
    await waitForRow(gateway, `SELECT id FROM responses_stored WHERE id = '${responseId}'`);
    // The provider key's ciphertext is wiped on delete, so only the stored response needs v1.
    expect((await call(gateway, 'DELETE', `/v1/providers/keys/${keyId}`)).status).toBe(204);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);
    expect(String(tableRows(gateway, 'SELECT ciphertext FROM responses_stored')[0]?.ciphertext)).toStartWith('kw1.local.v2.');

    gateway = await restart(`2:${SECOND}`);
    const read = await bodyOf(await call(gateway, 'GET', `/v1/responses/${responseId}`));
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(responseId);
    expect((await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[1] }] })).status).toBe(201);
    const continued = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'again', previous_response_id: responseId });
    expect(continued.status).toBe(200);
  });

  test('the webhook secret: re-wrapped, then opened with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const created = await bodyOf(await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: gateway.defaultAdminKey }));
    expect(created.status).toBe(201);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);

    gateway = await restart(`2:${SECOND}`);
    const row = tableRows(gateway, "SELECT backend, key_version, ciphertext FROM webhook_secrets WHERE account_id = 'default'")[0];
    expect(row?.key_version).toBe(2);
    const opened = await gateway.runtime.services.secrets.open(
      { backend: String(row?.backend), ciphertext: String(row?.ciphertext) },
      'webhook-secret:default',
    );
    expect(opened).toBe(String(created.body.secret));
  });

  test('a reconciliation admin key: re-wrapped, then opened with v2 alone', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const stored = await call(gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: ADMIN_KEY, verify: false });
    expect(stored.status).toBe(200);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);

    gateway = await restart(`2:${SECOND}`);
    expect(tableRows(gateway, 'SELECT key_version FROM reconciliation_admin_keys')).toEqual([{ key_version: 2 }]);
    const opened = await new AdminKeys(gateway.runtime.services).open('default', 'openai');
    expect(opened?.adminKey).toBe(ADMIN_KEY);
  });
});

/** An alert rule whose one target is a Slack URL; answers its id. */
async function storeAlertRule(gateway: Restartable, key = gateway.defaultAdminKey): Promise<string> {
  const created = await bodyOf(await call(gateway, 'POST', '/v1/alerts', { alerts: [{ type: 'error_rate', threshold: 50, notify: [SLACK_TARGET] }] }, { key }));
  expect(created.status).toBe(201);
  return String((created.body.alerts as Array<{ id: string }>)[0]?.id);
}

describe('master key rotation of alert targets', () => {
  test('re-wrapped with the rest, then opened with v2 alone: answered masked, held whole in memory', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const adminKey = gateway.defaultAdminKey;
    const id = await storeAlertRule(gateway, adminKey);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    await rotateExpecting(gateway);

    gateway = await restart(`2:${SECOND}`);
    expect(tableRows(gateway, 'SELECT notify_key_version FROM alerts')).toEqual([{ notify_key_version: 2 }]);
    const read = await bodyOf(await call(gateway, 'GET', `/v1/alerts/${id}`, undefined, { key: adminKey }));
    expect(read.status).toBe(200);
    expect(read.body.notify).toEqual([expect.stringMatching(/^https:\/\/hooks\.slack\.com\/ser…\/T0HOLD\/B0HOLD\/CAN… \[[0-9a-f]{8}\]$/)]);
    const rules = gateway.runtime.services.snapshot.section<AlertsSection>(ALERTS_SECTION)?.byAccount.get('default') ?? [];
    expect(rules.map((rule) => rule.notify)).toEqual([[SLACK_TARGET]]);
  });
});

/** The compliance and reconciliation `notify` lists and a rotation's and a schedule's webhooks, one canary URL each. */
async function storeNotifyLists(gateway: Restartable): Promise<void> {
  const send = async (method: string, path: string, body: unknown) => (await call(gateway, method, path, body, { key: gateway.defaultAdminKey })).status;
  expect(await send('PUT', '/v1/settings/compliance', { notify: [COMPLIANCE_TARGET] })).toBe(200);
  expect(await send('PUT', '/v1/reconciliation/settings', { notify: [RECONCILIATION_TARGET] })).toBe(200);
  expect(await send('POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[0] }] })).toBe(201);
  const rotation = { provider: 'openai', new_api_key: KEYS[1], test_before_switch: false, notification_webhooks: [ROTATION_TARGET] };
  expect(await send('POST', '/v1/providers/keys/rotate', rotation)).toBe(201);
  expect(
    await send('POST', '/v1/providers/keys/rotation-schedule', { provider: 'openai', schedule: '0 3 * * *', notification_webhooks: [SCHEDULE_TARGET] }),
  ).toBe(201);
}

describe('master key rotation of the other notify lists', () => {
  test('compliance, reconciliation and rotation lists: re-wrapped with the rest, then opened with v2 alone and answered masked', async () => {
    const restart = scenario();
    let gateway = await restart(`1:${FIRST}`);
    const key = gateway.defaultAdminKey;
    await storeNotifyLists(gateway);

    gateway = await restart(`1:${FIRST},2:${SECOND}`);
    const rotated = await bodyOf(await call(gateway, 'POST', '/v1/admin/master-key/rotate'));
    expect(rotated.body).toMatchObject({ status: 'completed', failed: 0, removable_versions: [1] });

    gateway = await restart(`2:${SECOND}`);
    for (const [, sql] of LIST_HOLDERS) expect(tableRows(gateway, sql)).toEqual([{ version: 2 }]);
    const read = async (path: string) => (await bodyOf(await call(gateway, 'GET', path, undefined, { key }))).body;
    expect(((await read('/v1/settings/compliance')).byok_compliance as Body).notify).toEqual([maskTarget(COMPLIANCE_TARGET)]);
    expect(((await read('/v1/reconciliation/settings')).settings as Body).notify).toEqual([maskTarget(RECONCILIATION_TARGET)]);
    expect((await read('/v1/providers/keys/rotations')).rotations).toEqual([expect.objectContaining({ notification_webhooks: 1 })]);
    expect((await read('/v1/providers/keys/rotation-schedule')).schedules).toEqual([expect.objectContaining({ notification_webhooks: 1 })]);
  });

  test('a start without their version: refused, naming each holder; nothing written', async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([storeNotifyLists]));
    for (const [holder] of LIST_HOLDERS) expect(message).toContain(holder);
  });
});

/** A third-party plugin keeping one sealed value per row in its own table, registered as a holder. */
const sealedNotesPlugin: PluginSource = {
  source: 'test',
  definition: definePlugin({
    name: 'sealed-notes',
    version: '1.0.0',
    apiVersion: PLUGIN_API_VERSION,
    kind: 'extension',
    setup: ({ services }) => ({
      migrations: {
        sqlite: [
          {
            id: '0001_sealed_notes',
            statements: ['CREATE TABLE sealed_notes (id TEXT PRIMARY KEY, backend TEXT NOT NULL, key_version INTEGER NOT NULL, ciphertext TEXT NOT NULL)'],
          },
        ],
      },
      ciphertextHolders: [
        tableCiphertextHolder(services, {
          name: 'sealed-notes:sealed_notes',
          table: 'sealed_notes',
          idColumn: 'id',
          ciphertextColumn: 'ciphertext',
          backendColumn: 'backend',
          keyVersionColumn: 'key_version',
          bindingColumns: [],
          binding: (row) => `sealed-notes:${String(row.id)}`,
        }),
      ],
    }),
  }) as PluginDefinition,
};

/** Every log line of these starts, refused ones included; each start keeps its own (its admin key is read from it). */
const outputs: string[][] = [];
const allOutput = (): string => outputs.map((lines) => lines.join('\n')).join('\n');
const newOutput = (): string[] => {
  const lines: string[] = [];
  outputs.push(lines);
  return lines;
};
const environment = (keyring: string, extra: Record<string, string> = {}): Record<string, string> => ({
  KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
  KEYWAY_MASTER_KEYS: keyring,
  ...extra,
});

async function startOn(path: string, keyring: string, extra: Record<string, string> = {}): Promise<Restartable> {
  const gateway = await startAt(path, environment(keyring, extra), { output: newOutput(), extraPlugins: [sealedNotesPlugin] });
  running.add(gateway);
  return gateway;
}

async function stop(gateway: Restartable): Promise<void> {
  await gateway.stop();
  running.delete(gateway);
}

/** A stored response; the provider key that made it is deleted (its ciphertext wiped), so only the response needs the version. */
async function storeResponse(gateway: Restartable): Promise<void> {
  const added = await bodyOf(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[0] }] }));
  const keyId = (added.body.providers as Array<{ key_id: string }>)[0]?.key_id;
  const created = await bodyOf(await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o', input: 'hello under v1' }));
  expect(created.status).toBe(200);
  await waitForRow(gateway, `SELECT id FROM responses_stored WHERE id = '${String(created.body.id)}'`);
  expect((await call(gateway, 'DELETE', `/v1/providers/keys/${keyId}`)).status).toBe(204);
}

async function setWebhookSecret(gateway: Restartable): Promise<void> {
  expect((await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: gateway.defaultAdminKey })).status).toBe(201);
}

async function storeAdminKey(gateway: Restartable): Promise<void> {
  expect((await call(gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: ADMIN_KEY, verify: false })).status).toBe(200);
}

async function storeNote(gateway: Restartable): Promise<void> {
  const sealed = await gateway.runtime.services.secrets.seal(NOTE, 'sealed-notes:note_1');
  await gateway.runtime.store.query('INSERT INTO sealed_notes (id, backend, key_version, ciphertext) VALUES (?, ?, ?, ?)', [
    'note_1',
    sealed.backend,
    sealed.keyVersion,
    sealed.ciphertext,
  ]);
}

/** Changes a stopped gateway's database as an older version would have left it; waits out a usage write still finishing. */
function editDatabase(path: string, statements: readonly string[]): void {
  const database = new Database(join(path, 'keyway.db'));
  try {
    database.run('PRAGMA busy_timeout = 5000');
    for (const statement of statements) database.run(statement);
  } finally {
    database.close();
  }
}

type Seed = (gateway: Restartable) => Promise<void>;

/** A data directory whose first start, under v1 alone, stored what `seeds` store. */
async function sealedUnderFirst(seeds: readonly Seed[]): Promise<string> {
  const directory = makeDataDirectory();
  directories.push(directory);
  const gateway = await startOn(directory.path, `1:${FIRST}`);
  for (const seed of seeds) await seed(gateway);
  await stop(gateway);
  return directory.path;
}

/** The start with v1 removed (v2 alone) is refused; answers its message, after checking nothing was written. */
async function refusedWithoutFirst(path: string): Promise<string> {
  const before = databaseDump(path);
  const lines = newOutput();
  const message = await refusedStart(path, environment(`2:${SECOND}`), lines, [sealedNotesPlugin]);
  lines.push(message);
  expect(databaseDump(path)).toBe(before);
  expect(message).toContain('Nothing was changed.');
  expect(message).toContain('KEYWAY_ALLOW_MISSING_KEY_VERSIONS=1');
  return message;
}

const ALL_HOLDERS = ['reconciliation:reconciliation_admin_keys', 'responses:responses_stored', 'sealed-notes:sealed_notes', 'webhooks:webhook_secrets'];

describe('a start without a master key version a plugin-sealed value still needs', () => {
  test('a stored response: refused, naming its holder and count; nothing written', async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([storeResponse]));
    expect(message).toContain('Missing master key: master key v1 is not configured, but 1 stored value(s) of responses:responses_stored are sealed under it.');
    expect(message).toContain('the other values sealed under it are kept but cannot be opened');
  });

  test('a stored response from before its key version was recorded (NULL): the version is read from its ciphertext, then recorded', async () => {
    const path = await sealedUnderFirst([storeResponse]);
    editDatabase(path, ['UPDATE responses_stored SET key_version = NULL']);
    const message = await refusedWithoutFirst(path);
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of responses:responses_stored are sealed under it.');
    const gateway = await startOn(path, `1:${FIRST},2:${SECOND}`);
    expect(tableRows(gateway, 'SELECT key_version FROM responses_stored')).toEqual([{ key_version: 1 }]);
    await stop(gateway);
  });

  test('a database from before responses_stored recorded key versions: checked once migrated, refused before anything else is written', async () => {
    const path = await sealedUnderFirst([storeResponse]);
    editDatabase(path, [
      'DROP INDEX responses_stored_key_version',
      'ALTER TABLE responses_stored DROP COLUMN key_version',
      "DELETE FROM keyway_migrations WHERE id = 'dialect-openai-responses:0002_responses_key_version'",
    ]);
    // Before the migrations the table cannot be counted by version: the check after them does it.
    const lines = newOutput();
    const message = await refusedStart(path, environment(`2:${SECOND}`), lines, [sealedNotesPlugin]);
    lines.push(message);
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of responses:responses_stored are sealed under it.');
    expect(message).toContain('Nothing was changed but the schema migrations.');
    const gateway = await startOn(path, `1:${FIRST},2:${SECOND}`);
    expect(tableRows(gateway, 'SELECT key_version FROM responses_stored')).toEqual([{ key_version: 1 }]);
    await stop(gateway);
  });

  test('the webhook secret: refused, naming its holder and count; nothing written', async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([setWebhookSecret]));
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of webhooks:webhook_secrets are sealed under it.');
  });

  test('a reconciliation admin key: refused, naming its holder and count; nothing written', async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([storeAdminKey]));
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of reconciliation:reconciliation_admin_keys are sealed under it.');
  });

  test("an alert rule's targets: refused, naming their holder and count; nothing written", async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([async (gateway) => void (await storeAlertRule(gateway))]));
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of alerts:alerts are sealed under it.');
  });

  test("a third-party plugin's holder is covered through the registry: refused, naming it", async () => {
    const message = await refusedWithoutFirst(await sealedUnderFirst([storeNote]));
    expect(message).toContain('master key v1 is not configured, but 1 stored value(s) of sealed-notes:sealed_notes are sealed under it.');
  });

  test('with a provider key too, acknowledged: starts, status counts each holder under the lost version, the next start needs no flag', async () => {
    let keyId = '';
    const addKey: Seed = async (gateway) => {
      const added = await bodyOf(await call(gateway, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: KEYS[1] }] }));
      keyId = String((added.body.providers as Array<{ key_id: string }>)[0]?.key_id);
    };
    const path = await sealedUnderFirst([storeResponse, storeResponse, setWebhookSecret, storeAdminKey, storeNote, addKey]);
    const message = await refusedWithoutFirst(path);
    expect(message).toContain(`master key v1 is not configured, but 1 stored provider key(s) are sealed under it (${keyId}), and so are `);
    expect(message).toContain('2 stored value(s) of responses:responses_stored');
    for (const holder of ALL_HOLDERS.filter((name) => name !== 'responses:responses_stored')) expect(message).toContain(`1 of ${holder}`);
    expect(message).toContain('the provider keys sealed under it are marked needs_reentry');

    let gateway = await startOn(path, `2:${SECOND}`, { KEYWAY_ALLOW_MISSING_KEY_VERSIONS: '1' });
    const status = await bodyOf(await call(gateway, 'GET', '/v1/admin/master-key/status'));
    expect(status.body.lost_versions).toEqual([expect.objectContaining({ backend: 'local', key_version: 1, provider_keys: [keyId] })]);
    const held = (status.body.lost_versions as Array<{ held: Array<{ holder: string; count: number }> }>)[0]?.held ?? [];
    expect([...held].sort((left, right) => left.holder.localeCompare(right.holder))).toEqual(
      ALL_HOLDERS.map((holder) => ({ holder, count: holder === 'responses:responses_stored' ? 2 : 1 })),
    );
    expect(allOutput()).toContain('master key v1 declared lost: 2 stored value(s) of ');
    await stop(gateway);

    gateway = await startOn(path, `2:${SECOND}`);
    expect((await call(gateway, 'GET', '/ready')).status).toBe(200);
    await stop(gateway);
  });

  test('nothing needs the removed version (all re-wrapped first): the start with v2 alone succeeds', async () => {
    const path = await sealedUnderFirst([storeResponse, setWebhookSecret, storeAdminKey, storeNote]);
    let gateway = await startOn(path, `1:${FIRST},2:${SECOND}`);
    const rotated = await bodyOf(await call(gateway, 'POST', '/v1/admin/master-key/rotate'));
    expect(rotated.body).toMatchObject({ status: 'completed', rewrapped: 4, failed: 0, removable_versions: [1] });
    await stop(gateway);

    gateway = await startOn(path, `2:${SECOND}`);
    const status = await bodyOf(await call(gateway, 'GET', '/v1/admin/master-key/status'));
    expect(status.body).toMatchObject({ key_versions: [2], lost_versions: [], stored_by_version: [{ backend: 'local', key_version: 2, count: 4 }] });
    await stop(gateway);
  });

  test('canaries: no secret in any log line or refusal', () => {
    const logs = allOutput();
    for (const secret of [...KEYS, ADMIN_KEY, NOTE, SLACK_TARGET, ...LIST_TARGETS, FIRST, SECOND]) expect(logs).not.toContain(secret);
  });
});
