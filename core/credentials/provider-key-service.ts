// Provider keys for plugins that manage them (key rotation): the same sealing, binding and
// masking as `POST /v1/providers/keys`, the provider's free call (listing models) to test a key
// before it serves, and removal that forgets every decrypted copy.

import { KeywayError } from '../errors.ts';
import type { ReportedModels } from '../routing/reported-models.ts';
import type { CryptoBackend, ProviderAdapter, ProviderCredential } from '../spec/plugin.ts';
import type { ProviderKeyService, ProviderKeyView } from '../spec/services.ts';
import type { NewProviderKey, Store } from '../spec/store.ts';
import { trustForKey, withUpstreamScope, type UpstreamPolicy } from '../wire/upstream-policy.ts';
import { neverStoresKeysIn } from './never-store.ts';
import type { KeyVault } from './key-vault.ts';
import { fingerprint, maskKey, randomId } from './secrets.ts';
import { providerKeyBinding, type ConfigSnapshots } from './snapshot.ts';
import { refusingSecondCopy } from './stored-once.ts';

export interface ProviderKeyServiceParts {
  store: Store;
  snapshots: ConfigSnapshots;
  vault: KeyVault;
  models: ReportedModels;
  providers: ReadonlyMap<string, ProviderAdapter>;
  backend: CryptoBackend;
  upstream: UpstreamPolicy;
}

const DEFAULT_TEST_TIMEOUT_MS = 10_000;

export function createProviderKeyService(parts: ProviderKeyServiceParts): ProviderKeyService {
  const { store, snapshots, vault, models, providers, backend, upstream } = parts;
  return {
    providers: () => [...providers.keys()],
    get: (id) => snapshots.current.keysById.get(id),
    list(accountId) {
      const byProvider = accountId === null ? snapshots.current.platformKeys : snapshots.current.accountKeys.get(accountId);
      return [...(byProvider?.values() ?? [])].flat();
    },
    async test(key, timeoutMs = DEFAULT_TEST_TIMEOUT_MS) {
      const adapter = providers.get(key.provider);
      if (adapter === undefined) return { ok: false, reason: 'unknown_provider', error: `provider ${key.provider} is not loaded` };
      const credential: ProviderCredential = {
        id: 'pk_test',
        provider: key.provider,
        owner: 'account',
        accountId: null,
        organizationId: key.organizationId,
        settings: key.settings,
        status: 'active',
        weight: 1,
        apiKey: key.apiKey,
      };
      try {
        const listed = await withUpstreamScope({ policy: upstream, trust: trustForKey(key.settings) }, () =>
          adapter.listModels(credential, AbortSignal.timeout(timeoutMs)),
        );
        return { ok: true, models: listed.length };
      } catch (error) {
        // The provider's own text may echo the key (OpenAI quotes a masked form): only the class is told.
        const reason = error instanceof KeywayError && error.reason !== undefined ? error.reason : 'unreachable';
        const said = reason === 'auth_error' ? 'refused the key' : `did not answer the models call with the key (${reason})`;
        return { ok: false, reason, error: `${key.provider} ${said}` };
      }
    },
    async add(key) {
      // Never-store mode: a rotation or schedule must not put key material in the database either.
      if (neverStoresKeysIn(snapshots, key.accountId)) {
        throw new KeywayError('conflict', {
          detail: `The account's compliance settings say never_store_keys: a new ${key.provider} key cannot be stored. Add it as a key_reference (docs/key-lifecycle.md, "Never-store mode").`,
        });
      }
      const id = randomId('pk');
      const row: NewProviderKey = {
        id,
        owner: key.owner,
        accountId: key.accountId,
        provider: key.provider,
        ciphertext: await backend.encrypt(key.apiKey, providerKeyBinding(id, key.owner, key.accountId, key.provider)),
        keyVersion: backend.currentKeyVersion(),
        cryptoBackend: backend.name,
        maskedKey: maskKey(key.apiKey),
        fingerprint: fingerprint(key.apiKey),
        organizationId: key.organizationId ?? null,
        settings: key.settings,
        status: 'active',
        weight: key.weight,
      };
      // Stored once per owner and provider: a twin another worker stored meanwhile is a 409 naming it.
      const [stored] = await refusingSecondCopy(
        store,
        [row],
        () => store.insertProviderKeys([row]),
        (_index, storedId) => new KeywayError('conflict', { detail: `This ${key.provider} key is already stored as ${storedId}.` }),
      );
      if (stored === undefined) throw new Error('the provider key was not stored');
      const view: ProviderKeyView = {
        id,
        provider: stored.provider,
        owner: stored.owner,
        accountId: stored.accountId,
        organizationId: stored.organizationId ?? undefined,
        settings: stored.settings,
        status: stored.status,
        weight: stored.weight,
        maskedKey: stored.maskedKey,
        fingerprint: stored.fingerprint,
        createdAt: stored.createdAt,
      };
      return view;
    },
    fingerprint,
    async remove(id, owner, accountId) {
      const removed = await store.deleteProviderKey(id, owner, accountId);
      vault.forget(id);
      models.forget(id);
      return removed;
    },
  };
}
