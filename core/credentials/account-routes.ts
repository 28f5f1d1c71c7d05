import { Type } from '@sinclair/typebox';
import { KeywayError } from '../errors.ts';
import { AllowedIpsSchema, KeyEnvironmentSchema, keySettingsOf } from '../spec/key-settings.ts';
import { displayName, displayNameSchema } from '../spec/display-name.ts';
import type { PrincipalRole } from '../spec/plugin.ts';
import type { Runtime } from '../runtime.ts';
import { generateGatewayKey, hashGatewayKey, maskKey, randomId } from './secrets.ts';
import { readJson, validateBody } from '../http/kit/body.ts';
import { guarded } from '../http/kit/guard.ts';
import { json } from '../http/kit/respond.ts';
import { recordChange } from '../http/kit/audit-trail.ts';
import type { GatewayKeyRecord } from '../spec/store.ts';

/** A gateway key as `GET /v1/keys` shows it: masked, never its hash. */
function gatewayKeyView(row: GatewayKeyRecord): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    masked_key: row.maskedKey,
    team_id: row.teamId,
    ...row.settings,
    created_at: row.createdAt,
  };
}

export const AccountBodySchema = Type.Object({ name: displayNameSchema("The account's display name") }, { additionalProperties: false });
// Closed: a misspelt setting (`enviroment`, `allowed_ip`) would otherwise issue a key without the restriction.
export const KeyBodySchema = Type.Object(
  {
    name: Type.Optional(displayNameSchema('A label for the key')),
    role: Type.Optional(
      Type.Union([Type.Literal('admin'), Type.Literal('developer'), Type.Literal('viewer')], {
        description: 'admin manages the account, developer calls models, viewer reads usage (default admin)',
      }),
    ),
    environment: Type.Optional(KeyEnvironmentSchema),
    allowed_ips: Type.Optional(AllowedIpsSchema),
    requests_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    tokens_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000_000 })),
  },
  { additionalProperties: false },
);

async function createKey(
  runtime: Runtime,
  accountId: string,
  role: PrincipalRole,
  name: string,
  settings: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const key = generateGatewayKey('ak');
  const row = await runtime.store.insertGatewayKey({
    id: randomId('key'),
    accountId,
    role,
    name,
    keyHash: hashGatewayKey(key),
    maskedKey: maskKey(key),
    settings,
  });
  await runtime.snapshots.refresh();
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    account_id: accountId,
    masked_key: row.maskedKey,
    ...row.settings,
    created_at: row.createdAt,
    api_key: key,
  };
}

export const accountRoutes = {
  create: guarded(
    'operator',
    async (runtime, request) => {
      const body = validateBody(AccountBodySchema, await readJson(request, runtime.config));
      // `acc_` and 20 letters or digits: the shape the key sources keep for account namespaces (CREATED_ACCOUNT_ID).
      const account = await runtime.store.insertAccount(randomId('acc'), displayName(body.name));
      const key = await createKey(runtime, account.id, 'admin', `${displayName(body.name)} admin`);
      return json({ id: account.id, name: account.name, created_at: account.createdAt, admin_key: key }, 201);
    },
    { body: AccountBodySchema },
  ),
  list: guarded('operator', async (runtime) => {
    const accounts = [...runtime.snapshots.current.accounts.values()].map((account) => ({ id: account.id, name: account.name }));
    return json({ accounts });
  }),
  createKey: guarded(
    'admin',
    async (runtime, request, principal) => {
      const body = validateBody(KeyBodySchema, await readJson(request, runtime.config));
      return json(
        await createKey(runtime, principal.accountId, body.role ?? 'admin', body.name === undefined ? 'api key' : displayName(body.name), keySettingsOf(body)),
        201,
      );
    },
    { body: KeyBodySchema },
  ),
  listKeys: guarded('admin', async (runtime, _request, principal) => {
    const rows = await runtime.store.listActiveGatewayKeys();
    // The operator also sees a stored operator key (the one generated at first start), so it can be
    // found and revoked; an account admin of `default` never does. KEYWAY_ADMIN_KEY is not stored.
    const shown = (row: GatewayKeyRecord) => row.accountId === principal.accountId && (row.role !== 'operator' || principal.role === 'operator');
    return json({ keys: rows.filter(shown).map(gatewayKeyView) });
  }),
  revokeKey: guarded('admin', async (runtime, request, principal, parameters) => {
    const id = parameters.id ?? '';
    if (id === principal.keyId) throw new KeywayError('conflict', { detail: 'A key cannot revoke itself.' });
    const row = (await runtime.store.listActiveGatewayKeys()).find((candidate) => candidate.id === id && candidate.accountId === principal.accountId);
    // An operator key is the operator's to revoke: to an admin of `default` it does not exist, as in GET /v1/keys.
    const hidden = row?.role === 'operator' && principal.role !== 'operator';
    if (hidden || !(await runtime.store.revokeGatewayKey(id, principal.accountId)))
      throw new KeywayError('not_found', { detail: `No key ${id} in this account.` });
    // The audit entry says what was revoked: the key as GET /v1/keys showed it (masked).
    if (row !== undefined) recordChange(request, { before: gatewayKeyView(row), after: null });
    await runtime.snapshots.refresh();
    return new Response(null, { status: 204 });
  }),
};
