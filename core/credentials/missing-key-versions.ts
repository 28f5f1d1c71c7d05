// Start refuses a keyring that misses a master key version the database still needs: provider keys
// or values of any registered ciphertext holder (stored Responses, webhook secrets, reconciliation
// admin keys, a plugin's own table) sealed under a version nobody configured, or a key check proving
// that a version newer than every configured one was in use (the newest key forgotten in a
// deployment, or lost). Starting anyway would leave those values unreadable, failing later and one by
// one (a stored response, a webhook that cannot be signed), and seal new ones under an older key.
//
// The recovery path for a key that is lost for good: the operator says so explicitly with
// KEYWAY_ALLOW_MISSING_KEY_VERSIONS=<version>. Then, and only then, the keys sealed under it are marked
// `needs_reentry` (routing skips them; nothing is deleted) and the version is recorded as lost, so
// later starts need no flag. Each such key is re-sealed in place when its owner enters it again
// (POST /v1/providers/keys with the same key); if the lost key turns up and is configured again, the
// marked keys that open are made active again at the next start. A holder's values have no status to
// mark: they are kept as they are (unreadable) and counted under the lost version in the status.

import { ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { CiphertextHolder, CryptoBackend } from '../spec/crypto-backend.ts';
import type { Store, StoredProviderKey } from '../spec/store.ts';
import { countHolderVersions, type HolderVersionCount, recordHolderVersions } from './held-versions.ts';
import { backendKeyVersions, KEY_CHECK_SETTING, parseKeyChecks } from './key-check.ts';
import { NEEDS_REENTRY } from './provider-key-holder.ts';
import { providerKeyBinding } from './snapshot.ts';
import { KEY_REFERENCE_BACKEND, WIPED_BACKEND } from '../spec/key-source.ts';

export const LOST_VERSIONS_SETTING = 'master_key_lost_versions';
export const ALLOW_MISSING_VARIABLE = 'KEYWAY_ALLOW_MISSING_KEY_VERSIONS';
const IDS_SHOWN = 10;

export interface LostVersion {
  backend: string;
  key_version: number;
  acknowledged_at: string;
  /** The provider keys that were sealed under it and now wait to be entered again. */
  provider_keys: string[];
}

/** How many values of one holder a version seals. */
export interface HeldByHolder {
  holder: string;
  count: number;
}

interface MissingVersion {
  backend: string;
  version: number;
  keyIds: string[];
  /** The values other ciphertext holders keep under it. */
  held: HeldByHolder[];
  /** Known from a key check only: a version newer than every configured one. */
  newer: boolean;
}

interface Allowance {
  backend: string | undefined;
  version: number;
}

export class MissingKeyVersionError extends ConfigError {
  override name = 'MissingKeyVersionError';
}

export function parseLostVersions(value: unknown): LostVersion[] {
  const list = (value as { versions?: unknown } | null | undefined)?.versions;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (entry): entry is LostVersion =>
      entry !== null &&
      typeof entry === 'object' &&
      typeof entry.backend === 'string' &&
      Number.isSafeInteger(entry.key_version) &&
      Array.isArray(entry.provider_keys),
  );
}

/** `3`, `v3`, `local:3`, `vault-transit:v3`, comma-separated. */
export function parseAllowances(text: string | undefined): Allowance[] {
  const entries = (text ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  return entries.map((entry) => {
    const match = /^(?:([a-z0-9@][a-z0-9@/._-]*):)?v?([1-9]\d{0,8})$/.exec(entry);
    if (match === null)
      throw new ConfigError(`${ALLOW_MISSING_VARIABLE} has the entry ${JSON.stringify(entry)}; write versions as 3, v3 or backend:3, comma-separated.`);
    return { backend: match[1], version: Number(match[2]) };
  });
}

const allows = (allowance: Allowance, missing: MissingVersion): boolean =>
  allowance.version === missing.version && (allowance.backend === undefined || allowance.backend === missing.backend);

function label(missing: { backend: string; version: number }): string {
  return missing.backend === 'local' ? `master key v${missing.version}` : `key v${missing.version} of crypto backend '${missing.backend}'`;
}

/** `3 stored value(s) of responses:responses_stored, 1 of webhooks:webhook_secrets`. */
export function describeHeld(held: readonly HeldByHolder[]): string {
  return held.map((entry, index) => `${entry.count}${index === 0 ? ' stored value(s)' : ''} of ${entry.holder}`).join(', ');
}

function describe(missing: MissingVersion): string {
  if (missing.keyIds.length === 0 && missing.held.length === 0)
    return `${label(missing)} is newer than every configured version and was in use here (its key check is stored)`;
  if (missing.keyIds.length === 0) return `${label(missing)} is not configured, but ${describeHeld(missing.held)} are sealed under it`;
  const shown = missing.keyIds.slice(0, IDS_SHOWN).join(', ');
  const more = missing.keyIds.length > IDS_SHOWN ? ` and ${missing.keyIds.length - IDS_SHOWN} more` : '';
  const alsoHeld = missing.held.length === 0 ? '' : `, and so are ${describeHeld(missing.held)}`;
  return `${label(missing)} is not configured, but ${missing.keyIds.length} stored provider key(s) are sealed under it (${shown}${more})${alsoHeld}`;
}

/** What acknowledging the loss does, for what is actually sealed under the missing versions. */
function consequences(missing: readonly MissingVersion[]): string {
  const parts: string[] = [];
  if (missing.some((entry) => entry.keyIds.length > 0))
    parts.push('the provider keys sealed under it are marked needs_reentry (nothing is deleted) and must be entered again');
  if (missing.some((entry) => entry.held.length > 0))
    parts.push('the other values sealed under it are kept but cannot be opened until they are set again where they were set');
  if (parts.length === 0) parts.push('it is recorded as lost and a new key goes in as the next version');
  return parts.join('; ');
}

function refusal(missing: readonly MissingVersion[], written: boolean): MissingKeyVersionError {
  const versions = missing.map((entry) => (entry.backend === 'local' ? String(entry.version) : `${entry.backend}:${entry.version}`)).join(',');
  // After the migrations (a database that could not be read before them) the schema is new; nothing else is.
  const changed = written ? 'Nothing was changed but the schema migrations.' : 'Nothing was changed.';
  return new MissingKeyVersionError(
    `Missing master key: ${missing.map(describe).join('; ')}. ${changed} Configure it (${missing.every((entry) => entry.backend === 'local') ? 'KEYWAY_MASTER_KEYS lists every version, newest last' : 'the key service must still hold that version'}). ` +
      `If it is lost for good, start once with ${ALLOW_MISSING_VARIABLE}=${versions}: ${consequences(missing)}; ` +
      'everything sealed under the versions you still have keeps working (docs/key-lifecycle.md, "Lost the newest master key").',
  );
}

/** A backend that sealed stored values but is not loaded, or loaded without any key version. */
function unconfiguredBackend(what: string, backendName: string, backend: CryptoBackend | undefined): MissingKeyVersionError {
  const state = backend === undefined ? 'not loaded' : 'loaded but not configured';
  return new MissingKeyVersionError(
    `${what} were sealed by crypto backend '${backendName}', which is ${state}. Configure it (docs/key-lifecycle.md); nothing was changed.`,
  );
}

const isLost = (lost: readonly LostVersion[], backend: string, version: number): boolean =>
  lost.some((entry) => entry.backend === backend && entry.key_version === version);

function findMissing(
  rows: readonly StoredProviderKey[],
  held: readonly HolderVersionCount[],
  settings: Record<string, unknown>,
  backends: ReadonlyMap<string, CryptoBackend>,
): MissingVersion[] {
  const lost = parseLostVersions(settings[LOST_VERSIONS_SETTING]);
  const missing = new Map<string, MissingVersion>();
  const entry = (backend: string, version: number, newer: boolean): MissingVersion => {
    const name = `${backend}\u0000${version}`;
    const found = missing.get(name) ?? { backend, version, keyIds: [], held: [], newer };
    missing.set(name, found);
    return found;
  };
  for (const row of rows) {
    if (row.status === NEEDS_REENTRY) continue;
    // A reference (never-store mode) or a wiped deleted key holds no ciphertext: no key version is involved.
    if (row.cryptoBackend === KEY_REFERENCE_BACKEND || row.cryptoBackend === WIPED_BACKEND) continue;
    const backend = backends.get(row.cryptoBackend);
    if (backend === undefined || backendKeyVersions(backend).length === 0) {
      const count = rows.filter((other) => other.cryptoBackend === row.cryptoBackend).length;
      throw unconfiguredBackend(`${count} stored provider key(s)`, row.cryptoBackend, backend);
    }
    if (!backendKeyVersions(backend).includes(row.keyVersion)) entry(row.cryptoBackend, row.keyVersion, false).keyIds.push(row.id);
  }
  for (const count of held) {
    const backend = backends.get(count.backend);
    if (backend === undefined || backendKeyVersions(backend).length === 0) throw unconfiguredBackend(describeHeld([count]), count.backend, backend);
    // A version neither the holder nor the backend can tell is not known to be missing.
    if (count.keyVersion === undefined || backendKeyVersions(backend).includes(count.keyVersion)) continue;
    // Lost and acknowledged: these values have no status to mark, they stay as they are.
    if (isLost(lost, count.backend, count.keyVersion)) continue;
    entry(count.backend, count.keyVersion, false).held.push({ holder: count.holder, count: count.count });
  }
  for (const check of parseKeyChecks(settings[KEY_CHECK_SETTING])) {
    const backend = backends.get(check.backend);
    if (backend === undefined) continue;
    const versions = backendKeyVersions(backend);
    if (versions.length === 0 || check.keyVersion <= Math.max(...versions)) continue;
    if (isLost(lost, check.backend, check.keyVersion)) continue;
    entry(check.backend, check.keyVersion, true);
  }
  return [...missing.values()].sort((left, right) => left.backend.localeCompare(right.backend) || left.version - right.version);
}

/**
 * Refuses a keyring missing a version the database needs. `write: false` (before migrations) only
 * reads, and skips a database it cannot read yet; `write: true` also applies an acknowledged loss and
 * restores re-configured keys.
 */
export async function checkKeyVersionsInUse(
  store: Store,
  backends: ReadonlyMap<string, CryptoBackend>,
  holders: readonly CiphertextHolder[],
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
  options: { write: boolean },
): Promise<void> {
  let settings: Record<string, unknown>;
  let rows: StoredProviderKey[];
  try {
    settings = await store.listPlatformSettings();
    rows = await store.listActiveProviderKeys();
  } catch (error) {
    if (!options.write) return;
    throw error;
  }
  // Counted by version in the database (one query per holder table), never by decrypting.
  const held = await countHolderVersions(holders, store, backends, logger, { beforeMigrations: !options.write });
  const missing = findMissing(rows, held, settings, backends);
  const allowances = parseAllowances(env[ALLOW_MISSING_VARIABLE]);
  const unacknowledged = missing.filter((entry) => !allowances.some((allowance) => allows(allowance, entry)));
  if (unacknowledged.length > 0) throw refusal(unacknowledged, options.write);
  if (!options.write) return;
  for (const allowance of allowances) {
    if (!missing.some((entry) => allows(allowance, entry))) {
      logger.info(
        { allowance: `${allowance.backend ?? ''}${allowance.backend === undefined ? '' : ':'}v${allowance.version}` },
        `${ALLOW_MISSING_VARIABLE} names a version nothing is missing; it changes nothing`,
      );
    }
  }
  if (missing.length > 0) await recordLoss(store, settings, missing, logger);
  await restoreFoundKeys(store, rows, backends, logger);
  await recordHolderVersions(holders, store, backends);
}

async function recordLoss(store: Store, settings: Record<string, unknown>, missing: readonly MissingVersion[], logger: Logger): Promise<void> {
  for (const entry of missing) {
    for (const id of entry.keyIds) await store.updateProviderKeyStatus(id, NEEDS_REENTRY);
    logger.warn(
      { backend: entry.backend, keyVersion: entry.version, providerKeys: entry.keyIds },
      `${label(entry)} declared lost (${ALLOW_MISSING_VARIABLE}): ${entry.keyIds.length} provider key(s) marked needs_reentry; their owners must enter them again (POST /v1/providers/keys with the same key re-seals each in place)`,
    );
    if (entry.held.length > 0) {
      logger.warn(
        { backend: entry.backend, keyVersion: entry.version, held: entry.held },
        `${label(entry)} declared lost: ${describeHeld(entry.held)} stay stored but cannot be opened until they are set again where they were set (GET /v1/admin/master-key/status counts them under lost_versions)`,
      );
    }
  }
  const lost = parseLostVersions(settings[LOST_VERSIONS_SETTING]);
  const acknowledgedAt = new Date().toISOString();
  for (const entry of missing) {
    const known = lost.find((version) => version.backend === entry.backend && version.key_version === entry.version);
    if (known !== undefined) known.provider_keys = [...new Set([...known.provider_keys, ...entry.keyIds])];
    else lost.push({ backend: entry.backend, key_version: entry.version, acknowledged_at: acknowledgedAt, provider_keys: entry.keyIds });
  }
  await store.setPlatformSetting(LOST_VERSIONS_SETTING, { versions: lost });
}

/** A lost key configured again: the marked keys it opens serve again. */
async function restoreFoundKeys(store: Store, rows: readonly StoredProviderKey[], backends: ReadonlyMap<string, CryptoBackend>, logger: Logger): Promise<void> {
  for (const row of rows) {
    if (row.status !== NEEDS_REENTRY) continue;
    const backend = backends.get(row.cryptoBackend);
    if (backend === undefined || !backendKeyVersions(backend).includes(row.keyVersion)) continue;
    try {
      await backend.decrypt(row.ciphertext, providerKeyBinding(row.id, row.owner, row.accountId, row.provider));
    } catch {
      continue;
    }
    await store.updateProviderKeyStatus(row.id, 'active');
    logger.info({ providerKey: row.id, keyVersion: row.keyVersion }, 'provider key readable again (its master key version is configured): active again');
  }
}
