// POST /v1/admin/master-key/rotate and GET /v1/admin/master-key/status (operator).

import { Type } from '@sinclair/typebox';
import { KeywayError } from '../errors.ts';
import { readBodyText, type BodyLimits } from '../http/kit/body.ts';
import { guarded } from '../http/kit/guard.ts';
import { json } from '../http/kit/respond.ts';
import type { Runtime } from '../runtime.ts';
import type { CiphertextHolder } from '../spec/crypto-backend.ts';
import { backendKeyVersions } from './key-check.ts';
import { countStoredVersions, MasterKeyRotator, RotationConflictError, type RotationState, type StoredVersionCount } from './master-key-rotation.ts';
import { countHolderVersions } from './held-versions.ts';
import { type HeldByHolder, LOST_VERSIONS_SETTING, type LostVersion, parseLostVersions } from './missing-key-versions.ts';
import { NEEDS_REENTRY, providerKeyHolder } from './provider-key-holder.ts';

const rotators = new WeakMap<Runtime, MasterKeyRotator>();

/** The holders plugins registered: every sealed value that is not a provider key. */
function pluginHoldersOf(runtime: Runtime): CiphertextHolder[] {
  return (runtime.plugins.ciphertextHolders ?? []).map(({ value }) => value);
}

function holdersOf(runtime: Runtime): CiphertextHolder[] {
  const providerKeys = providerKeyHolder(runtime.store, runtime.snapshots);
  return [...(providerKeys === undefined ? [] : [providerKeys]), ...pluginHoldersOf(runtime)];
}

/**
 * The versions recorded as lost, each with what the plugins' holders still keep under it, counted now
 * (by version in the database, as at start): those values cannot be opened until they are set again.
 * Their provider keys are listed by id (`provider_keys`, and `needs_reentry` says what to do).
 */
async function lostVersions(runtime: Runtime, settings: Record<string, unknown>): Promise<Array<LostVersion & { held: HeldByHolder[] }>> {
  const lost = parseLostVersions(settings[LOST_VERSIONS_SETTING]);
  if (lost.length === 0) return [];
  const counts = await countHolderVersions(pluginHoldersOf(runtime), runtime.store, runtime.plugins.cryptoBackends, runtime.logger, {
    beforeMigrations: false,
  });
  return lost.map((version) => ({
    ...version,
    held: counts
      .filter((count) => count.backend === version.backend && count.keyVersion === version.key_version)
      .map(({ holder, count }) => ({ holder, count })),
  }));
}

function rotatorOf(runtime: Runtime): MasterKeyRotator {
  let rotator = rotators.get(runtime);
  if (rotator === undefined) {
    rotator = new MasterKeyRotator({
      store: runtime.store,
      backends: runtime.plugins.cryptoBackends,
      activeBackend: runtime.cryptoBackendName,
      holders: holdersOf(runtime),
      logger: runtime.logger,
      // Read and checked at start (core/config.ts), not at the first rotation: a bad value stops the start.
      batchSize: runtime.config.masterKeyRewrapBatch,
      pauseMs: runtime.config.masterKeyRewrapPauseMs,
      cluster: runtime.cluster,
      ...(runtime.services.siblings === undefined ? {} : { siblings: runtime.services.siblings }),
    });
    rotators.set(runtime, rotator);
  }
  return rotator;
}

/** The state as answered: the counts at the top level, as the spec's "answers the counts". */
function describeRotation(state: RotationState | undefined): Record<string, unknown> | null {
  if (state === undefined) return null;
  const { instance: _instance, counts, ...rest } = state;
  const finished = state.finished_at === null ? undefined : Date.parse(state.finished_at) - Date.parse(state.started_at);
  return { ...rest, ...counts, duration_ms: finished ?? null };
}

/** Configured versions of the active backend that nothing stored needs any more: safe to remove. */
function removableVersions(runtime: Runtime, stored: readonly StoredVersionCount[]): number[] {
  const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName);
  if (backend === undefined) return [];
  const current = backend.currentKeyVersion();
  return backendKeyVersions(backend).filter(
    (version) => version !== current && !stored.some((entry) => entry.backend === backend.name && entry.key_version === version),
  );
}

/** The optional body of POST /v1/admin/master-key/rotate (readBody checks it). */
export const MasterKeyRotationBodySchema = Type.Optional(
  Type.Object(
    { wait: Type.Optional(Type.Boolean({ description: 'false answers at once (202 while the run goes on); default true' })) },
    { additionalProperties: false, description: 'optional: no body waits for the run' },
  ),
);

/** The body is optional (no body: wait), so it is read as text, within the size and time limits every body has. */
async function readBody(request: Request, limits: BodyLimits): Promise<{ wait: boolean }> {
  const text = await readBodyText(request, limits);
  if (text.trim() === '') return { wait: true };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new KeywayError('invalid_json', { detail: 'expected a JSON object such as {"wait": false}' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new KeywayError('invalid_request', { detail: 'The body must be a JSON object.' });
  const extra = Object.keys(body).find((name) => name !== 'wait');
  if (extra !== undefined) throw new KeywayError('invalid_field', { param: extra, detail: 'unknown field; known fields: wait' }, { param: extra });
  const wait = (body as { wait?: unknown }).wait;
  if (wait !== undefined && typeof wait !== 'boolean') throw new KeywayError('invalid_field', { param: 'wait', detail: 'must be true or false' });
  return { wait: wait !== false };
}

async function status(runtime: Runtime): Promise<Record<string, unknown>> {
  const backend = runtime.plugins.cryptoBackends.get(runtime.cryptoBackendName);
  const rotator = rotatorOf(runtime);
  const rotation = await rotator.status();
  // Here, or on another worker or instance: what this worker reads is the stored row, which that run keeps fresh.
  const inProgress = rotator.inProgress || rotator.isLive(rotation);
  // Counting means reading every stored ciphertext: not while a rotation is changing them anyway.
  const stored = inProgress ? undefined : await countStoredVersions(holdersOf(runtime), runtime.plugins.cryptoBackends);
  const settings = await runtime.store.listPlatformSettings();
  const needsReentry = [...runtime.snapshots.current.keysById.values()]
    .filter((key) => key.status === NEEDS_REENTRY)
    .map((key) => ({
      key_id: key.id,
      provider: key.provider,
      owner: key.owner,
      account_id: key.accountId,
      masked_key: key.maskedKey,
      action: 'Its master key version is lost: enter this key again with POST /v1/providers/keys (same provider and key); it is re-sealed in place.',
    }));
  return {
    backend: runtime.cryptoBackendName,
    current_key_version: backend?.currentKeyVersion() ?? null,
    key_versions: backend === undefined ? [] : backendKeyVersions(backend),
    validated_module: backend?.validatedModule ?? null,
    stored_by_version: stored ?? null,
    removable_versions: stored === undefined ? null : removableVersions(runtime, stored),
    rotation: describeRotation(rotation),
    rotation_in_progress: inProgress,
    lost_versions: await lostVersions(runtime, settings),
    needs_reentry: needsReentry,
  };
}

export const masterKeyRoutes = {
  rotate: guarded(
    'operator',
    async (runtime, request) => {
      const { wait } = await readBody(request, runtime.config);
      const rotator = rotatorOf(runtime);
      if (runtime.store.resealProviderKeys === undefined || runtime.store.listSealedProviderKeys === undefined) {
        throw new KeywayError('unsupported_feature', {
          detail: `The ${runtime.store.driver} store cannot list and re-seal provider keys, so the master key cannot be rotated.`,
        });
      }
      const { joined, finished: running, stored } = await rotator.begin();
      // A crash of the run is reported to the caller who waits; the others read it in the status.
      running.catch((error: unknown) => {
        if (!(error instanceof RotationConflictError))
          runtime.logger.error({ error: error instanceof Error ? error.message : String(error) }, 'master key rotation failed');
      });
      if (!wait) {
        // Until the run's state is stored: a conflict is answered as one, and never the previous run's state as this one's.
        const early = await Promise.race([
          running.then(
            () => undefined,
            (error: unknown) => error,
          ),
          stored,
        ]);
        if (early instanceof RotationConflictError) throw new KeywayError('conflict', { detail: early.message });
        const state = await rotator.status();
        return json({ ...describeRotation(state), joined }, state?.status === 'running' ? 202 : 200);
      }
      try {
        const state = await running;
        const stored = await countStoredVersions(holdersOf(runtime), runtime.plugins.cryptoBackends);
        return json({ ...describeRotation(state), joined, stored_by_version: stored, removable_versions: removableVersions(runtime, stored) });
      } catch (error) {
        if (error instanceof RotationConflictError) throw new KeywayError('conflict', { detail: error.message });
        throw error;
      }
    },
    { body: MasterKeyRotationBodySchema },
  ),
  status: guarded('operator', async (runtime) => json(await status(runtime))),
};
