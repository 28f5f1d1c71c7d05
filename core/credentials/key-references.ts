// Provider keys held as references (docs/key-lifecycle.md, "Never-store mode"): what a reference is
// when stored, how one is checked when it is added, and the tool that converts a stored (encrypted)
// key into a reference and wipes its ciphertext from the database.

import { timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { invalidField, KeywayError } from '../errors.ts';
import { KEY_REFERENCE_BACKEND, type KeyReference, type KeySourceContext } from '../spec/key-source.ts';

export { KeyReferenceSchema, parseStoredReference, referenceFingerprint, serializeReference } from './reference-format.ts';
import type { Principal } from '../spec/plugin.ts';
import type { Runtime } from '../runtime.ts';
import { readJson, validateBody } from '../http/kit/body.ts';
import { guarded } from '../http/kit/guard.ts';
import { json } from '../http/kit/respond.ts';
import { recordChange } from '../http/kit/audit-trail.ts';
import { neverStoresKeysIn } from './never-store.ts';
import { forgetSecret, rememberSecret } from './secret-values.ts';
import { KeyReferenceSchema, referenceFingerprint, serializeReference } from './reference-format.ts';
import type { KeyListing } from './snapshot.ts';
import { refusingSecondCopy } from './stored-once.ts';

/** The account setting the compliance block is stored under (plugins/audit), and the mode's value. */

/** The account's compliance block asks that no provider key material be stored. */
export function neverStoresKeys(runtime: Runtime, accountId: string | null): boolean {
  return neverStoresKeysIn(runtime.snapshots, accountId);
}

/**
 * Checks a reference by resolving it once: the source must be loaded, accept it and answer a key.
 * The key is returned for masking and comparison only; the caller keeps it in memory.
 */
export async function resolveReference(runtime: Runtime, reference: KeyReference, context: KeySourceContext, param: string): Promise<string> {
  const source = runtime.plugins.keySources.get(reference.source);
  if (source === undefined) {
    const known = [...runtime.plugins.keySources.keys()];
    throw invalidField(`${param}.source`, `unknown key source '${reference.source}'; loaded: ${known.length > 0 ? known.join(', ') : 'none'}`);
  }
  const problem = source.validate(reference);
  if (problem !== undefined) throw invalidField(param, `${source.name}: ${problem}`);
  try {
    const fetched = await source.fetch(reference, context);
    if (typeof fetched.apiKey !== 'string' || fetched.apiKey.length === 0) throw new Error('the source answered an empty key');
    return fetched.apiKey;
  } catch (error) {
    throw invalidField(param, `key source '${source.name}' could not resolve it: ${error instanceof Error ? error.message : 'unknown error'}`);
  }
}

function sameKey(left: string, right: string): boolean {
  const a = Buffer.from(left);
  const b = Buffer.from(right);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const ConvertBodySchema = Type.Object({ key_reference: KeyReferenceSchema }, { additionalProperties: false });

/**
 * `POST /v1/providers/keys/{key_id}/convert`: the stored key becomes a reference. The reference must
 * resolve to the very key stored (compared in memory); then the ciphertext is replaced by the
 * reference and the store wipes the old value from its files. Nothing else changes: same key id,
 * settings, weight and history.
 */
async function convertKey(runtime: Runtime, principal: Principal, keyId: string, request: Request, describe: DescribeKey): Promise<Response> {
  if (principal.teamId !== undefined)
    throw new KeywayError('permission_denied', { detail: 'Converting provider keys takes an account admin key, not a team key.' });
  const body = validateBody(ConvertBodySchema, await readJson(request, runtime.config));
  const listing = runtime.snapshots.current.keysById.get(keyId);
  if (listing === undefined || listing.owner !== 'account' || listing.accountId !== principal.accountId)
    throw new KeywayError('not_found', { detail: `No provider key ${keyId} here.` });
  if (listing.keyReference !== undefined)
    throw new KeywayError('conflict', { detail: `Provider key ${keyId} is already a reference (${listing.keyReference.source}); nothing to convert.` });
  const replace = runtime.store.replaceProviderKeySecret?.bind(runtime.store);
  if (replace === undefined) throw new KeywayError('conflict', { detail: `The ${runtime.store.driver} store cannot convert keys in place.` });
  const reference = body.key_reference;
  const resolved = await resolveReference(runtime, reference, { accountId: listing.accountId, provider: listing.provider, keyId }, 'key_reference');
  rememberSecret(resolved);
  try {
    const stored = await runtime.vault.credential(listing);
    if (!sameKey(stored.apiKey, resolved))
      throw invalidField('key_reference', `it resolves to a different key than ${keyId} holds (${listing.maskedKey}); nothing was changed`);
  } finally {
    forgetSecret(resolved);
  }
  // The key takes the reference's fingerprint: a key added by the same reference is this key stored
  // twice (one per owner and provider, migration 0013), as the snapshot says or, when another worker
  // added it meanwhile, as the store's unique index does.
  const print = referenceFingerprint(reference);
  const identity = { owner: listing.owner, accountId: listing.accountId, provider: listing.provider, fingerprint: print };
  const storedAlready = (_index: number, storedId: string) =>
    new KeywayError('conflict', { detail: `Provider key ${storedId} already holds this key_reference; nothing was changed.` }, { param: 'key_reference' });
  const twin = runtime.snapshots.current.accountKeys
    .get(principal.accountId)
    ?.get(listing.provider)
    ?.find((key) => key.id !== keyId && key.fingerprint === print);
  if (twin !== undefined) throw storedAlready(0, twin.id);
  const replaced = await refusingSecondCopy(
    runtime.store,
    [identity],
    () => replace(keyId, { ciphertext: serializeReference(reference), cryptoBackend: KEY_REFERENCE_BACKEND, keyVersion: 0, fingerprint: print }),
    storedAlready,
    keyId,
  );
  if (!replaced) throw new KeywayError('not_found', { detail: `Provider key ${keyId} was deleted meanwhile; nothing was changed.` });
  runtime.vault.forget(keyId);
  await runtime.snapshots.refresh();
  recordChange(request, { before: { key_id: keyId, key_storage: 'encrypted' }, after: { key_id: keyId, key_storage: 'reference', key_reference: reference } });
  const converted = runtime.snapshots.current.keysById.get(keyId);
  return json({ ...(converted === undefined ? {} : describe(converted, runtime)), converted: true, ciphertext_wiped: true });
}

export type DescribeKey = (listing: KeyListing, runtime: Runtime) => Record<string, unknown>;

export function convertKeyRoute(describe: DescribeKey) {
  return guarded('admin', (runtime, request, principal, parameters) => convertKey(runtime, principal, parameters.id ?? '', request, describe), {
    body: ConvertBodySchema,
  });
}
