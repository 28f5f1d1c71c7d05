// Management actions that change something already there record what it was, not only what it
// became: price overrides (set, replaced, removed, the file reloaded), a team's policy, a member's
// key, the platform's model classes, the reconciliation admin key, the webhook secret and a key
// rotation. Each entry's `before` is the stored state as GET showed it (masked), `after` the state now.
// A billing export, whose answer is a stream the audit cannot read, records what was exported and is
// filed under the account exported.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addProviderKeys, call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';
import { readAllEvents, type AuditEvent } from './helpers.ts';

const folder = mkdtempSync(join(tmpdir(), 'keyway-audit-prices-'));
const pricesFile = join(folder, 'prices.json');
const FILE_MODEL = 'acme-file-model';
const ADMIN_KEY_CANARY = 'sk-admin-AUDITxBEFORExCANARY0123456789abcdef';
const ROTATED_CANARY = 'sk-proj-AUDITxROTATEDxCANARY0123456789abcdef';

let gateway: TestGateway;

function writePrices(input: number): void {
  writeFileSync(
    pricesFile,
    JSON.stringify({ [FILE_MODEL]: { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: input, output_cost_per_token: 0.000003 } }),
  );
}

beforeAll(async () => {
  writePrices(0.000001);
  gateway = await startTestGateway({ probes: false, logLevel: 'info', env: { KEYWAY_PRICES_FILE: pricesFile } });
});

afterAll(async () => {
  await gateway.stop();
  rmSync(folder, { recursive: true, force: true });
});

/** The admin event a response's request left. */
async function entryOf(response: Response, key = OPERATOR_KEY): Promise<AuditEvent> {
  const requestId = response.headers.get('x-request-id');
  const events = await readAllEvents(gateway, 'type=admin&period=today', key);
  const event = events.find((candidate) => candidate.request_id === requestId);
  if (event === undefined) throw new Error(`no audit event for ${requestId}`);
  return event;
}

describe('before and after', () => {
  test('a price override: the price it replaced, the override it replaced, and what a deletion leaves', async () => {
    const first = await call(gateway, 'PUT', '/v1/platform/prices', {
      prices: [{ provider: 'openai', model: 'gpt-4o', input_cost_per_token: 0.00001, output_cost_per_token: 0.00002 }],
    });
    expect(first.status).toBe(200);
    const set = await entryOf(first);
    const shipped = (set.before as { prices: Array<Record<string, unknown>> }).prices[0];
    expect(shipped).toMatchObject({ provider: 'openai', model: 'gpt-4o', source: 'shipped', priced: true, input_cost_per_token: expect.any(Number) });
    expect(shipped?.input_cost_per_token).not.toBe(0.00001);
    expect((set.after as { prices: unknown[] }).prices[0]).toMatchObject({ source: 'override', input_cost_per_token: 0.00001, output_cost_per_token: 0.00002 });

    const second = await call(gateway, 'PUT', '/v1/platform/prices', {
      prices: [
        { provider: 'openai', model: 'gpt-4o', input_cost_per_token: 0.00003, output_cost_per_token: 0.00004 },
        { provider: 'openai', model: 'acme-new-model', input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 },
      ],
    });
    expect(second.status).toBe(200);
    const replaced = await entryOf(second);
    expect((replaced.before as { prices: unknown[] }).prices).toEqual([
      expect.objectContaining({ model: 'gpt-4o', source: 'override', input_cost_per_token: 0.00001, output_cost_per_token: 0.00002 }),
      { provider: 'openai', model: 'acme-new-model', source: null, priced: false },
    ]);
    expect((replaced.after as { prices: unknown[] }).prices).toEqual([
      expect.objectContaining({ model: 'gpt-4o', source: 'override', input_cost_per_token: 0.00003 }),
      expect.objectContaining({ model: 'acme-new-model', source: 'override', input_cost_per_token: 0.000001 }),
    ]);

    const deleted = await call(gateway, 'DELETE', '/v1/platform/prices/openai/gpt-4o');
    expect(deleted.status).toBe(200);
    const removal = await entryOf(deleted);
    expect(removal.target).toEqual({ provider: 'openai', model: 'gpt-4o' });
    expect(removal.before).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o',
      source: 'override',
      input_cost_per_token: 0.00003,
      output_cost_per_token: 0.00004,
    });
    expect(removal.after).toMatchObject({ provider: 'openai', model: 'gpt-4o', source: 'shipped', input_cost_per_token: shipped?.input_cost_per_token });

    const missing = await call(gateway, 'DELETE', '/v1/platform/prices/openai/gpt-4o');
    expect(missing.status).toBe(404);
    const refused = await entryOf(missing);
    expect({ target: refused.target, before: refused.before }).toEqual({ target: { provider: 'openai', model: 'gpt-4o' }, before: null });
  });

  test('a price file reload: the file as it was read before and after', async () => {
    const before = (await (await call(gateway, 'GET', '/v1/platform/prices?model=acme-file-model')).json()) as { file: Record<string, unknown> };
    writePrices(0.000002);
    await Bun.sleep(5);
    const reloaded = await call(gateway, 'POST', '/v1/platform/prices/reload');
    expect(reloaded.status).toBe(200);
    const entry = await entryOf(reloaded);
    expect(entry.before).toEqual(before.file);
    expect(entry.after).toMatchObject({ path: pricesFile, models: 1, error: null });
    expect((entry.after as { loaded_at: string }).loaded_at > String(before.file.loaded_at)).toBe(true);
  });

  test("a team's policy: a raised budget shows the old and the new value", async () => {
    const admin = gateway.defaultAdminKey;
    const created = (await (await call(gateway, 'POST', '/v1/teams', SEED_TEAM, { key: admin })).json()) as { id: string; members: Array<{ id: string }> };
    const patched = await call(
      gateway,
      'PATCH',
      `/v1/teams/${created.id}`,
      { byok_permissions: { providers: { openai: { max_cost_per_day: 10_000, models: ['gpt-4o'] } } } },
      { key: admin },
    );
    expect(patched.status).toBe(200);
    const entry = await entryOf(patched, admin);
    const openai = (state: unknown) => (state as { byok_permissions: { providers: { openai: Record<string, unknown> } } }).byok_permissions.providers.openai;
    expect(openai(entry.before)).toMatchObject({ max_cost_per_day: 100, models: ['gpt-4-turbo-preview', 'gpt-3.5-turbo'] });
    expect(openai(entry.after)).toMatchObject({ max_cost_per_day: 10_000, models: ['gpt-4o'] });
    expect((entry.before as { id: string }).id).toBe(created.id);

    // A member's key re-issued: the key it replaced (masked), and the new one never in the log.
    const memberId = created.members[0]?.id ?? '';
    const shown = (await (await call(gateway, 'GET', `/v1/teams/${created.id}`, undefined, { key: admin })).json()) as {
      members: Array<Record<string, unknown>>;
    };
    const reissued = await call(gateway, 'POST', `/v1/teams/${created.id}/members/${memberId}/keys`, undefined, { key: admin });
    expect(reissued.status).toBe(201);
    const answer = (await reissued.json()) as { api_key: string; masked_key: string };
    const reissue = await entryOf(reissued, admin);
    expect(reissue.before).toEqual(shown.members[0]);
    expect(reissue.after).toMatchObject({ id: memberId, masked_key: answer.masked_key, api_key: '[REDACTED]' });
    expect(JSON.stringify(reissue)).not.toContain(answer.api_key);
  });

  test("the platform's model classes: the stored overrides before and after", async () => {
    const classes = { flagship: { description: 'the best', members: [] } };
    const first = await call(gateway, 'PUT', '/v1/platform/model-classes', { classes });
    expect(first.status).toBe(200);
    expect(await entryOf(first)).toMatchObject({ before: { model_classes: null }, after: { model_classes: classes } });
    // A PUT replaces the whole set (docs/routing.md, "Model classes").
    const second = await call(gateway, 'PUT', '/v1/platform/model-classes', { classes: { tiny: { description: 'small', members: [] } } });
    expect(await entryOf(second)).toEqual(
      expect.objectContaining({
        before: { model_classes: classes },
        after: { model_classes: { tiny: { description: 'small', members: [] } } },
      }),
    );
  });

  test('the reconciliation admin key and the webhook secret: which one was replaced, never either secret', async () => {
    const admin = gateway.defaultAdminKey;
    const put = (adminKey: string) =>
      call(gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: adminKey, verify: false }, { key: admin });
    const first = await entryOf(await put(ADMIN_KEY_CANARY), admin);
    expect(first.before).toBeNull();
    expect(first.after).toMatchObject({ provider: 'openai', masked_key: expect.any(String), fingerprint: expect.any(String) });
    const second = await entryOf(await put(`${ADMIN_KEY_CANARY}2`), admin);
    expect(second.before).toEqual(first.after);
    expect((second.after as { fingerprint: string }).fingerprint).not.toBe((first.after as { fingerprint: string }).fingerprint);

    const made = await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: admin });
    const firstSecret = ((await made.json()) as { secret: string }).secret;
    const remade = await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, { key: admin });
    const secondSecret = ((await remade.json()) as { secret: string }).secret;
    const original = await entryOf(made, admin);
    const replacement = await entryOf(remade, admin);
    expect(original.before).toBeNull();
    expect(replacement.before).toEqual(original.after);
    expect(replacement.after).toMatchObject({ algorithm: 'HMAC-SHA256', created_at: expect.any(String), created_by: 'key_default_admin' });
    const texts = JSON.stringify([first, second, original, replacement]);
    for (const secret of [ADMIN_KEY_CANARY, firstSecret, secondSecret]) expect(texts).not.toContain(secret);
  });

  test('a key rotation names the key rotated out (masked), never a key', async () => {
    const admin = gateway.defaultAdminKey;
    const [old] = await addProviderKeys(gateway, [{ name: 'cohere', api_key: 'cohere-AUDITxOLDxKEY0123456789abcdef' }], admin);
    const rotated = await call(
      gateway,
      'POST',
      '/v1/providers/keys/rotate',
      { provider: 'cohere', new_api_key: ROTATED_CANARY, rotation_strategy: 'immediate', test_before_switch: false },
      { key: admin },
    );
    expect(rotated.status).toBe(201);
    const entry = await entryOf(rotated, admin);
    expect(entry.before).toEqual({
      key_id: old?.key_id,
      name: 'cohere',
      owner: 'account',
      masked_key: old?.masked_key,
      fingerprint: old?.fingerprint,
      status: 'active',
    });
    expect(JSON.stringify(entry)).not.toContain(ROTATED_CANARY);
  });

  test("a billing export names the account exported and what was asked for; an operator's export of another account is in its log", async () => {
    const other = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'Exported' })).json()) as { id: string; admin_key: { api_key: string } };
    const exported = await call(gateway, 'POST', '/v1/billing/export', { account_id: other.id, format: 'json', period: 'today', include: ['model_breakdown'] });
    expect(exported.status).toBe(200);
    expect(((await exported.json()) as { account_id: string }).account_id).toBe(other.id);
    // Filed under the account exported: its own admin reads it, and the default account's does not.
    const seen = await readAllEvents(gateway, 'type=admin&period=today', other.admin_key.api_key);
    const entry = seen.find((event) => event.request_id === exported.headers.get('x-request-id')) as AuditEvent;
    expect(entry).toBeDefined();
    expect({ account: entry.account_id, role: entry.actor.role, target: entry.target, before: entry.before }).toEqual({
      account: other.id,
      role: 'operator',
      target: { account_id: other.id },
      before: null,
    });
    expect(entry.after).toMatchObject({
      object: 'billing_export',
      account_id: other.id,
      type: 'byok_usage',
      format: 'json',
      period: { name: 'today', start: expect.any(String), end: expect.any(String) },
      include: ['model_breakdown'],
    });
    const defaults = await readAllEvents(gateway, 'type=admin&period=today', gateway.defaultAdminKey);
    expect(defaults.some((event) => event.request_id === exported.headers.get('x-request-id'))).toBe(false);

    // An account admin's own export, by start and end: its parameters, under its own account.
    const admin = gateway.defaultAdminKey;
    const own = await call(
      gateway,
      'POST',
      '/v1/billing/export',
      { format: 'csv', type: 'all_usage', start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
      { key: admin },
    );
    expect(own.status).toBe(200);
    await own.text();
    const ownEntry = await entryOf(own, admin);
    expect({ account: ownEntry.account_id, target: ownEntry.target, after: ownEntry.after }).toEqual({
      account: 'default',
      target: { account_id: 'default' },
      after: {
        object: 'billing_export',
        account_id: 'default',
        type: 'all_usage',
        format: 'csv',
        period: { name: 'custom', start: '2026-01-01T00:00:00.000Z', end: '2026-02-01T00:00:00.000Z' },
        include: [],
        filename: 'keyway-default-all_usage-2026-01-01-to-2026-01-31.csv',
      },
    });
  });
});
