import { type Static, Type, type TSchema } from '@sinclair/typebox';
import { providerKeyBinding, type KeyListing } from './snapshot.ts';
import { invalidField, KeywayError } from '../errors.ts';
import type { CryptoBackend, KeyOwner, Principal } from '../spec/plugin.ts';
import { NEEDS_REENTRY } from './provider-key-holder.ts';
import type { Runtime } from '../runtime.ts';
import { fingerprint, maskKey, randomId } from './secrets.ts';
import { convertKeyRoute, KeyReferenceSchema, neverStoresKeys, referenceFingerprint, resolveReference, serializeReference } from './key-references.ts';
import { KEY_REFERENCE_BACKEND } from '../spec/key-source.ts';
import type { NewProviderKey } from '../spec/store.ts';
import { readJson, validateBody } from '../http/kit/body.ts';
import { KeyEnvironmentSchema } from '../spec/key-settings.ts';
import { KeyMaterialSchema } from '../spec/key-material.ts';
import { guarded } from '../http/kit/guard.ts';
import { recordChange } from '../http/kit/audit-trail.ts';
import { applyRotationRequest } from './rotation-request.ts';
import { refusingSecondCopy } from './stored-once.ts';
import { json } from '../http/kit/respond.ts';
import { PROVIDER_KEY_ANNOTATIONS_SECTION, type ProviderKeyAnnotator } from '../spec/services.ts';

const SettingsSchema = Type.Object(
  {
    default_model: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'The model used when a request names only the provider' })),
    max_tokens_default: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'max_tokens for requests that do not set it' })),
    temperature_default: Type.Optional(Type.Number({ minimum: 0, maximum: 2, description: 'temperature for requests that do not set it' })),
    base_url: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
        description: "The provider's API address for this key",
        errorMessage: { pattern: 'must be an http:// or https:// URL without whitespace' },
      }),
    ),
    first_byte_timeout_ms: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'First-byte deadline of each attempt with this key, in milliseconds' }),
    ),
    connect_timeout_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'Connect deadline with this key, in milliseconds' })),
    environment: Type.Optional(KeyEnvironmentSchema),
  },
  {
    // Open here: a provider adds its own (keySettingsSchema), and refuseUnknownSettings() refuses the rest.
    additionalProperties: true,
    description: 'Per-key settings; a provider may define more (see docs/providers.md)',
  },
);

/** The settings every provider's keys take; a provider's `keySettingsSchema` adds its own. */
const SHARED_SETTINGS: readonly string[] = Object.keys(SettingsSchema.properties);

const ProviderEntrySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, description: 'The provider, by the name its plugin gives it (GET /v1/plugins lists them)' }),
    api_key: Type.Optional(KeyMaterialSchema({ description: "The provider's API key, as the provider issued it (or give key_reference instead)" })),
    key_reference: Type.Optional(KeyReferenceSchema),
    organization_id: Type.Optional(
      Type.Union([Type.String({ maxLength: 256 }), Type.Null()], { description: 'The organization the key belongs to, when the provider has them' }),
    ),
    settings: Type.Optional(SettingsSchema),
    environment: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
        description: 'the environment the key serves (production, staging…); a gateway key of one environment never uses a provider key of another',
      }),
    ),
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: "The key's share of traffic among its provider's keys" })),
  },
  // A misspelt field (`organisation_id`, `setings`) used to be dropped without a word.
  { additionalProperties: false },
);

export const ProviderKeysBodySchema = Type.Object(
  {
    providers: Type.Array(ProviderEntrySchema, { minItems: 1, maxItems: 100 }),
    encryption: Type.Optional(
      Type.Object(
        {
          method: Type.Optional(Type.Literal('AES-256-GCM', { description: 'The only method: keys are always sealed with AES-256-GCM' })),
          key_rotation: Type.Optional(Type.Boolean()),
          rotation_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * A setting no one reads is refused (`max_tokens_defualt` would otherwise be stored and never apply):
 * the shared settings and those the provider's schema declares. A provider whose schema declares no
 * properties (a record of anything) keeps its settings its own business.
 */
function refuseUnknownSettings(provider: string, schema: TSchema | undefined, settings: Record<string, unknown>, index: number): void {
  const declared = schema === undefined ? {} : (schema as { properties?: Record<string, unknown> }).properties;
  if (declared === undefined) return;
  const known = [...SHARED_SETTINGS, ...Object.keys(declared)];
  const unknown = Object.keys(settings).find((name) => !known.includes(name));
  if (unknown === undefined) return;
  throw invalidField(`providers[${index}].settings.${unknown}`, `is not a setting of ${provider} keys; known settings: ${known.join(', ')}`);
}

function validateSettings(schema: TSchema, settings: unknown, index: number): void {
  try {
    validateBody(schema, settings);
  } catch (error) {
    if (!(error instanceof KeywayError) || error.param === null) throw error;
    const param = `providers[${index}].settings.${error.param}`;
    throw invalidField(param, error.message.replace(/^Invalid value for '[^']*': /, ''));
  }
}

/**
 * A key's own base_url must pass the operator's upstream address policy (core/wire/upstream-policy.ts),
 * checked after DNS resolution; it is checked again on every call, since DNS answers change.
 */
async function checkBaseUrl(runtime: Runtime, baseUrl: string, index: number): Promise<void> {
  const pending = runtime.upstream.check(baseUrl, 'key');
  const verdict = pending instanceof Promise ? await pending : pending;
  if (verdict.allowed) return;
  const param = `providers[${index}].settings.base_url`;
  let host = 'the address';
  try {
    host = new URL(baseUrl).host;
  } catch {
    // reported as an invalid URL below
  }
  const rule = verdict.kind === 'refused' ? verdict.rule : 'unresolvable host';
  // The resolved address goes to the operator's log only: an account admin learns the rule, not the internal address.
  runtime.logger.warn(
    { param, host, rule, address: verdict.kind === 'refused' ? verdict.address : undefined },
    'provider key base_url refused by the upstream address policy',
  );
  throw invalidField(param, `${host} ${verdict.message} (rule: ${rule}). Upstream addresses are the operator's decision; see docs/security.md.`);
}

/** The public face of a stored key: never the key itself. */
export function describeKey(listing: KeyListing, runtime: Runtime): Record<string, unknown> {
  const models = runtime.models.get(listing.id);
  // The models check is the freshest word on a key (flagged keys are re-checked before listing). An
  // active key not checked yet says `verifying`: routing already uses it, but no provider has vouched
  // for it.
  const status =
    models === undefined
      ? listing.status === 'active'
        ? 'verifying'
        : listing.status
      : listing.status === 'active' || listing.status === 'invalid'
        ? models.status
        : listing.status;
  return {
    name: listing.provider,
    key_id: listing.id,
    owner: listing.owner,
    status,
    masked_key: listing.maskedKey,
    fingerprint: listing.fingerprint,
    organization_id: listing.organizationId ?? null,
    settings: listing.settings,
    weight: listing.weight,
    available_models: models?.models ?? [],
    models_checked_at: models === undefined ? null : new Date(models.checkedAt).toISOString(),
    ...(models?.error === undefined ? {} : { last_error: models.error }),
    created_at: listing.createdAt,
    key_storage: listing.keyReference === undefined ? 'encrypted' : 'reference',
    ...(listing.keyReference === undefined ? {} : { key_reference: listing.keyReference }),
    ...runtime.snapshots.section<ProviderKeyAnnotator>(PROVIDER_KEY_ANNOTATIONS_SECTION)?.annotate(listing.id, runtime.clock.now()),
  };
}

type ProviderEntry = Static<typeof ProviderEntrySchema>;

/**
 * The key of one entry, in memory only: the api_key given, or what its key_reference resolves to
 * now (then the row stores the reference and a fingerprint of the reference, never of the key).
 * Under never-store mode a plaintext api_key is refused: nothing derived from it may be written.
 */
async function secretOf(
  runtime: Runtime,
  entry: ProviderEntry,
  index: number,
  owner: { owner: KeyOwner; accountId: string | null },
): Promise<{ apiKey: string; fingerprint: string; reference?: string }> {
  const param = `providers[${index}]`;
  if (entry.api_key === undefined && entry.key_reference === undefined) throw invalidField(`${param}.api_key`, 'required (or give a key_reference instead)');
  if (entry.api_key !== undefined && entry.key_reference !== undefined)
    throw invalidField(`${param}.key_reference`, 'give either api_key or key_reference, not both');
  if (entry.key_reference !== undefined) {
    const reference = entry.key_reference;
    const apiKey = await resolveReference(runtime, reference, { accountId: owner.accountId, provider: entry.name }, `${param}.key_reference`);
    return { apiKey, fingerprint: referenceFingerprint(reference), reference: serializeReference(reference) };
  }
  const apiKey = entry.api_key as string;
  if (owner.owner === 'account' && neverStoresKeys(runtime, owner.accountId))
    throw new KeywayError(
      'conflict',
      {
        detail: `${param}: this account's compliance block sets data_residency never_store_keys, so Keyway stores no provider key, not even encrypted. Add the key as a key_reference ({source, locator}) resolved by a key-source plugin, or send it per request in X-Provider-Key.`,
      },
      { param: `${param}.api_key` },
    );
  return { apiKey, fingerprint: fingerprint(apiKey) };
}

async function storeKeys(runtime: Runtime, principal: Principal, owner: KeyOwner, request: Request): Promise<Response> {
  const body = validateBody(ProviderKeysBodySchema, await readJson(request, runtime.config));
  const accountId = owner === 'platform' ? null : principal.accountId;
  const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName);
  if (backend === undefined) throw new KeywayError('internal_error', { detail: 'no crypto backend' });
  const existing = owner === 'platform' ? runtime.snapshots.current.platformKeys : runtime.snapshots.current.accountKeys.get(principal.accountId);
  const rows: NewProviderKey[] = [];
  /** Each row's entry in the body, for the 409 of a key another worker stored meanwhile. */
  const rowEntries: number[] = [];
  const reentered: Array<{ id: string; ciphertext: string; expected: string | undefined }> = [];
  for (const [index, entry] of body.providers.entries()) {
    const adapter = runtime.plugins.providers.get(entry.name);
    if (adapter === undefined) {
      throw invalidField(`providers[${index}].name`, `unknown provider '${entry.name}'; known providers: ${[...runtime.plugins.providers.keys()].join(', ')}`);
    }
    // The provider's own settings (Gemini's safety_settings…) are its to define.
    if (entry.settings !== undefined) refuseUnknownSettings(entry.name, adapter.keySettingsSchema, entry.settings, index);
    if (adapter.keySettingsSchema !== undefined && entry.settings !== undefined) validateSettings(adapter.keySettingsSchema, entry.settings, index);
    if (entry.settings?.base_url !== undefined) await checkBaseUrl(runtime, entry.settings.base_url, index);
    const secret = await secretOf(runtime, entry, index, { owner, accountId });
    const print = secret.fingerprint;
    // The same key twice in one body names its first place there: that one is not stored (QA20 seed F3:
    // the 409 named the id it would have had, which nothing ever held).
    const earlier = rows.findIndex((row) => row.provider === entry.name && row.fingerprint === print);
    if (earlier !== -1) throw repeatedInBody(index, entry.name, rowEntries[earlier] ?? earlier);
    const duplicate = (existing?.get(entry.name) ?? []).find((key) => key.fingerprint === print);
    if (duplicate !== undefined && duplicate.status === NEEDS_REENTRY && 'id' in duplicate && secret.apiKey !== undefined) {
      // The same key entered again after its master key version was lost: re-sealed in place, so its
      // id (and everything that refers to it) stays.
      const binding = providerKeyBinding(duplicate.id, owner, accountId, entry.name);
      reentered.push({
        id: duplicate.id,
        ciphertext: await backend.encrypt(secret.apiKey, binding),
        expected: runtime.snapshots.current.secrets.get(duplicate.id)?.ciphertext,
      });
      continue;
    }
    if (duplicate !== undefined) throw storedAlready(index, entry.name, duplicate.id);
    const id = randomId('pk');
    rowEntries.push(index);
    rows.push({
      id,
      owner,
      accountId,
      provider: entry.name,
      ...(secret.reference === undefined
        ? {
            ciphertext: await backend.encrypt(secret.apiKey, providerKeyBinding(id, owner, accountId, entry.name)),
            keyVersion: backend.currentKeyVersion(),
            cryptoBackend: backend.name,
          }
        : { ciphertext: secret.reference, keyVersion: 0, cryptoBackend: KEY_REFERENCE_BACKEND }),
      maskedKey: maskKey(secret.apiKey),
      fingerprint: print,
      organizationId: entry.organization_id ?? null,
      // Kept with the settings, so routing and policies read it from the snapshot like any key setting.
      settings: entry.environment === undefined ? (entry.settings ?? {}) : { ...entry.settings, environment: entry.environment },
      status: 'active',
      weight: entry.weight ?? 1,
    });
  }
  // The snapshot may not hold a key another worker or instance stored a moment ago: the store refuses
  // that second copy, and the answer is the same 409.
  await refusingSecondCopy(
    runtime.store,
    rows,
    () => runtime.store.insertProviderKeys(rows),
    (row, storedId) => storedAlready(rowEntries[row] ?? row, rows[row]?.provider ?? '', storedId),
  );
  await reseal(runtime, backend, reentered);
  await runtime.snapshots.refresh();
  const listings = [...reentered, ...rows]
    .map((row) => runtime.snapshots.current.keysById.get(row.id))
    .filter((listing): listing is KeyListing => listing !== undefined);
  // Learn each new key's models in the background: the answer does not wait on the providers.
  for (const listing of listings) void runtime.models.refresh(listing, true);
  // After the keys are stored: a refused request changes no policy.
  const rotation = await applyRotationRequest(body.encryption, owner, principal.accountId, runtime.plugins.keyAgePolicy?.value);
  return json(
    {
      providers: listings.map((listing) => describeKey(listing, runtime)),
      encryption: {
        method: 'AES-256-GCM',
        backend: backend.name,
        key_version: backend.currentKeyVersion(),
        key_rotation: body.encryption?.key_rotation ?? false,
        rotation_days: body.encryption?.rotation_days ?? null,
        ...(rotation.maxKeyAgeDays === undefined ? {} : { max_key_age_days: rotation.maxKeyAgeDays }),
      },
      ...(rotation.warnings.length === 0 ? {} : { warnings: rotation.warnings }),
    },
    201,
  );
}

/** 409: `providers[index]` repeats the key of `providers[first]` of the same body; nothing of the body was stored. */
function repeatedInBody(index: number, provider: string, first: number): KeywayError {
  return new KeywayError(
    'conflict',
    { detail: `providers[${index}]: this ${provider} key is also providers[${first}] of this body; send it once. Nothing was stored.` },
    { param: `providers[${index}].api_key` },
  );
}

/** 409: the key of `providers[index]` is stored already (the same fingerprint, owner and provider), as `storedId`. */
function storedAlready(index: number, provider: string, storedId: string): KeywayError {
  return new KeywayError(
    'conflict',
    { detail: `providers[${index}]: this ${provider} key is already stored as ${storedId}.` },
    { param: `providers[${index}].api_key` },
  );
}

/** Stores re-entered keys over their unreadable ciphertexts and makes them active again. */
async function reseal(
  runtime: Runtime,
  backend: CryptoBackend,
  reentered: ReadonlyArray<{ id: string; ciphertext: string; expected: string | undefined }>,
): Promise<void> {
  if (reentered.length === 0) return;
  if (runtime.store.resealProviderKeys === undefined) throw new KeywayError('unsupported_feature', { detail: 'This store cannot re-seal provider keys.' });
  const updates = reentered.flatMap(({ id, ciphertext, expected }) =>
    expected === undefined ? [] : [{ id, expectedCiphertext: expected, ciphertext, keyVersion: backend.currentKeyVersion(), cryptoBackend: backend.name }],
  );
  for (const id of await runtime.store.resealProviderKeys(updates)) await runtime.store.updateProviderKeyStatus(id, 'active');
  // The unreadable ciphertexts are replaced in the rows; the files may still hold them as they were,
  // sealed under the lost version, which whoever has that key could open. The keys are stored either way.
  await runtime.store.reclaimReplacedRows?.(['provider_keys'])?.catch((error: unknown) => {
    runtime.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'the replaced ciphertexts are left to the next WAL checkpoint');
  });
}

/** Refreshes stale model lists; a key flagged invalid is always re-checked, and restored if it works. */
async function listKeys(runtime: Runtime, keys: readonly KeyListing[]): Promise<Record<string, unknown>[]> {
  await Promise.all(
    keys.map(async (key) => {
      // Refused as this worker knows it (a 401 here or told by another), or as stored.
      const flagged = runtime.health.isRejected(key);
      const listing = await runtime.models.refresh(key, flagged, 5_000);
      if (flagged || listing.status === 'invalid')
        runtime.health.recordProbe(key, listing.status === 'active', listing.status === 'invalid' ? 'auth_error' : undefined);
    }),
  );
  // What the re-checks found is in force on every worker before the answer says so.
  await runtime.health.shared();
  const current = runtime.snapshots.current.keysById;
  return keys.map((key) => describeKey(current.get(key.id) ?? key, runtime));
}

/** A deleted key as the audit entry's `before` shows it: what GET showed, never the key itself; not what its provider listed. */
function removedKey(listing: KeyListing, runtime: Runtime): Record<string, unknown> {
  const { available_models: _models, models_checked_at: _checked, last_error: _error, ...shown } = describeKey(listing, runtime);
  return shown;
}

async function deleteKey(runtime: Runtime, request: Request, keyId: string, owner: KeyOwner, accountId: string | null): Promise<Response> {
  const listing = runtime.snapshots.current.keysById.get(keyId);
  if (!(await runtime.store.deleteProviderKey(keyId, owner, accountId))) throw new KeywayError('not_found', { detail: `No provider key ${keyId} here.` });
  // The audit entry says what was removed (the snapshot held it: the store just matched it to this owner).
  recordChange(request, { before: listing === undefined ? { key_id: keyId } : removedKey(listing, runtime), after: null });
  runtime.vault.forget(keyId);
  runtime.models.forget(keyId);
  await runtime.snapshots.refresh();
  return new Response(null, { status: 204 });
}

/** The one field of an add-keys body that holds a key: every other one holding a key is refused (body-secrets.ts). */
const PROVIDER_KEY_FIELDS = ['providers[].api_key'] as const;

export const providerKeyRoutes = {
  add: guarded('admin', (runtime, request, principal) => storeKeys(runtime, principal, 'account', request), {
    body: ProviderKeysBodySchema,
    secretFields: PROVIDER_KEY_FIELDS,
  }),
  list: guarded('admin', async (runtime, _request, principal) => {
    const byProvider = runtime.snapshots.current.accountKeys.get(principal.accountId);
    return json({ providers: await listKeys(runtime, [...(byProvider?.values() ?? [])].flat()) });
  }),
  remove: guarded('admin', (runtime, request, principal, parameters) => deleteKey(runtime, request, parameters.id ?? '', 'account', principal.accountId)),
  convert: convertKeyRoute(describeKey),
  addPlatform: guarded('operator', (runtime, request, principal) => storeKeys(runtime, principal, 'platform', request), {
    body: ProviderKeysBodySchema,
    secretFields: PROVIDER_KEY_FIELDS,
  }),
  listPlatform: guarded('operator', async (runtime) =>
    json({ providers: await listKeys(runtime, [...runtime.snapshots.current.platformKeys.values()].flat()) }),
  ),
  removePlatform: guarded('operator', (runtime, request, _principal, parameters) => deleteKey(runtime, request, parameters.id ?? '', 'platform', null)),
};
