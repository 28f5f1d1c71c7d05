// The operator key generated at first start, as docs/configuration.md describes it: stored as a hash
// (a `key_operator_…` row of `gateway_keys`), so it survives restarts; listed, masked, by
// GET /v1/keys for the operator (never for an account admin); revoked by DELETE /v1/keys/{id} with
// another operator key; and retired at start once KEYWAY_ADMIN_KEY is set, which the start says.
// Unset KEYWAY_ADMIN_KEY again and the next start prints a new one.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateGatewayKey, hashGatewayKey, maskKey } from '../../core/credentials/secrets.ts';
import { call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const directory = mkdtempSync(join(tmpdir(), 'keyway-operator-key-'));
/** One data directory for every start: the generated key lives in its database. */
const sameData = { KEYWAY_DATA_DIR: directory, KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}` };
const RETIRED = 'KEYWAY_ADMIN_KEY is set: the operator key generated at first start is revoked';

afterAll(() => rmSync(directory, { recursive: true, force: true }));

function printedOperatorKey(gateway: TestGateway): string | undefined {
  return /Operator key \(KEYWAY_ADMIN_KEY\):\s+(\S+)/.exec(gateway.output.join('\n'))?.[1];
}

async function status(gateway: TestGateway, key: string): Promise<number> {
  const response = await call(gateway, 'GET', '/v1/accounts', undefined, { key });
  await response.arrayBuffer();
  return response.status;
}

async function listedKeys(gateway: TestGateway, key: string): Promise<{ text: string; keys: Array<Record<string, unknown>> }> {
  const text = await (await call(gateway, 'GET', '/v1/keys', undefined, { key })).text();
  return { text, keys: (JSON.parse(text) as { keys: Array<Record<string, unknown>> }).keys };
}

/** A start on the shared data directory; an empty KEYWAY_ADMIN_KEY is unset (the key is generated). */
function start(adminKey: string): Promise<TestGateway> {
  return startTestGateway({ env: { ...sameData, KEYWAY_ADMIN_KEY: adminKey }, probes: false });
}

describe('the operator key generated at first start', () => {
  let generated = '';
  let generatedId = '';
  let defaultAdminKey = '';

  test('is listed, masked, for the operator by GET /v1/keys, never for an account admin, who cannot revoke it either', async () => {
    const gateway = await start('');
    try {
      generated = printedOperatorKey(gateway) ?? '';
      defaultAdminKey = gateway.defaultAdminKey;
      expect(generated).toMatch(/^kw_op_/);
      const operatorView = await listedKeys(gateway, generated);
      const listed = operatorView.keys.filter((key) => key.role === 'operator');
      expect(listed).toEqual([expect.objectContaining({ name: 'operator (generated at first start)', masked_key: maskKey(generated) })]);
      generatedId = String(listed[0]?.id);
      expect(generatedId).toMatch(/^key_operator_/);
      expect(operatorView.text).not.toContain(generated);
      const adminView = await listedKeys(gateway, defaultAdminKey);
      expect(adminView.keys.map((key) => key.id)).not.toContain(generatedId);
      const revokedByAdmin = await call(gateway, 'DELETE', `/v1/keys/${generatedId}`, undefined, { key: defaultAdminKey });
      expect(revokedByAdmin.status).toBe(404);
      await revokedByAdmin.arrayBuffer();
      expect(await status(gateway, generated)).toBe(200);
      // A key cannot revoke itself: the operator would be locked out until the next start.
      const itself = await call(gateway, 'DELETE', `/v1/keys/${generatedId}`, undefined, { key: generated });
      expect(itself.status).toBe(409);
      await itself.arrayBuffer();
    } finally {
      await gateway.stop();
    }
  });

  test('survives a restart without KEYWAY_ADMIN_KEY (its hash is stored)', async () => {
    const gateway = await start('');
    try {
      expect(printedOperatorKey(gateway)).toBeUndefined();
      expect(await status(gateway, generated)).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  test('is retired at the first start with KEYWAY_ADMIN_KEY set, which the start says without a secret', async () => {
    const gateway = await start(OPERATOR_KEY);
    try {
      expect(await status(gateway, generated)).toBe(401);
      expect(await status(gateway, OPERATOR_KEY)).toBe(200);
      const said = gateway.output.filter((line) => line.includes(RETIRED));
      expect(said).toHaveLength(1);
      expect(JSON.parse(said[0] as string)).toMatchObject({ level: 'warn', retired: [generatedId] });
      const output = gateway.output.join('\n');
      expect(output).not.toContain(generated);
      expect(output).not.toContain(OPERATOR_KEY);
      expect((await listedKeys(gateway, OPERATOR_KEY)).keys.filter((key) => key.role === 'operator')).toEqual([]);
    } finally {
      await gateway.stop();
    }
  });

  test('a later start with KEYWAY_ADMIN_KEY has nothing to retire; a stored operator key is revoked by DELETE /v1/keys/{id}', async () => {
    const gateway = await start(OPERATOR_KEY);
    try {
      expect(gateway.output.some((line) => line.includes(RETIRED))).toBe(false);
      // As another instance sharing the database would have stored it at its own first start.
      const other = generateGatewayKey('op');
      await gateway.runtime.store.insertGatewayKey({
        id: 'key_operator_other_instance',
        accountId: 'default',
        role: 'operator',
        name: 'operator',
        keyHash: hashGatewayKey(other),
        maskedKey: maskKey(other),
      });
      await gateway.runtime.snapshots.refresh();
      expect(await status(gateway, other)).toBe(200);
      const revoked = await call(gateway, 'DELETE', '/v1/keys/key_operator_other_instance');
      expect(revoked.status).toBe(204);
      expect(await status(gateway, other)).toBe(401);
    } finally {
      await gateway.stop();
    }
  });

  test('without KEYWAY_ADMIN_KEY again, the next start generates and prints a new one', async () => {
    const gateway = await start('');
    try {
      const renewed = printedOperatorKey(gateway) ?? '';
      expect(renewed).toMatch(/^kw_op_/);
      expect(renewed).not.toBe(generated);
      expect(await status(gateway, renewed)).toBe(200);
      expect(await status(gateway, generated)).toBe(401);
      expect(await status(gateway, defaultAdminKey)).toBe(403);
    } finally {
      await gateway.stop();
    }
  });
});
