// The master key check: proof, kept in the database, that the configured master key is the one the
// stored provider keys were sealed with. Without it a valid-looking but wrong key starts fine, every
// stored key fails to decrypt, and keys added in that state are sealed under a key nobody keeps.
//
// At first start the active crypto backend seals a fixed text under every key version it holds; the
// ciphertexts go in the platform setting `crypto_key_check`. Every later start opens each stored check
// whose backend and version are configured, and refuses to start when one does not open. The check
// works for any CryptoBackend: it uses only encrypt/decrypt (and, when offered, the optional
// keyVersions/encryptWithKeyVersion/keySource).

import { ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { CryptoBackend } from '../spec/crypto-backend.ts';
import type { Store, StoredProviderKey } from '../spec/store.ts';
import { providerKeyBinding } from './snapshot.ts';
import { KEY_REFERENCE_BACKEND } from '../spec/key-source.ts';

/** The platform setting that holds the checks. */
export const KEY_CHECK_SETTING = 'crypto_key_check';
/** The known text every check seals. Not a secret: the check proves the key, not the text. */
export const KEY_CHECK_PLAINTEXT = 'keyway master key check: this text was sealed with the configured master key';
/** How many stored provider keys prove a version that has no check yet (a database from before checks). */
const LEGACY_SAMPLE = 5;

export interface KeyCheck {
  backend: string;
  keyVersion: number;
  ciphertext: string;
  createdAt: string;
}

export interface KeyCheckFailure {
  backend: string;
  keyVersion: number;
  /** Where the key came from, as the backend says (never the key). */
  source: string | undefined;
  /** What failed, in words, for the one-line refusal. */
  problem: string;
}

/** A refused start: the configured master key is not the one this database was set up with. */
export class MasterKeyCheckError extends ConfigError {
  override name = 'MasterKeyCheckError';
  constructor(readonly failures: readonly KeyCheckFailure[]) {
    super(describeKeyCheckFailures(failures));
  }
}

/** Fixed per backend and version, so a check cannot be moved to another version's slot. */
export function keyCheckBinding(backend: string, keyVersion: number): string {
  return `keyway:master-key-check:${backend}:v${keyVersion}`;
}

/** The checks in a platform setting's value; anything malformed is ignored rather than trusted. */
export function parseKeyChecks(value: unknown): KeyCheck[] {
  const list = (value as { checks?: unknown } | null | undefined)?.checks;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (entry): entry is KeyCheck =>
      entry !== null &&
      typeof entry === 'object' &&
      typeof entry.backend === 'string' &&
      Number.isSafeInteger(entry.keyVersion) &&
      typeof entry.ciphertext === 'string' &&
      typeof entry.createdAt === 'string',
  );
}

/** Every version the backend can decrypt; a backend without versions has only its current one. */
export function backendKeyVersions(backend: CryptoBackend): number[] {
  const versions = backend.keyVersions?.() ?? [backend.currentKeyVersion()];
  // A backend that lists no version is loaded but not configured (another backend is the active one).
  if (versions.length === 0) return [];
  return [...new Set([...versions, backend.currentKeyVersion()])].sort((left, right) => left - right);
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 197)}...` : flat;
}

function sourceOf(backend: CryptoBackend, keyVersion: number): string | undefined {
  try {
    return backend.keySource?.(keyVersion);
  } catch {
    return undefined;
  }
}

/** One line for the operator: which version, where its key came from, what to do. Never the key. */
export function describeKeyCheckFailures(failures: readonly KeyCheckFailure[]): string {
  const parts = failures.map((failure) => {
    const from = failure.source === undefined ? '' : ` (from ${failure.source})`;
    const backend = failure.backend === 'local' ? '' : ` of crypto backend '${failure.backend}'`;
    return `master key v${failure.keyVersion}${backend}${from} ${failure.problem}`;
  });
  return (
    `Wrong master key: ${parts.join('; ')}. Starting would leave every provider key stored under it unreadable, ` +
    'so nothing was changed. Configure the key this database was set up with (a new key goes next to it as the next version; see docs/security.md, "Master key check").'
  );
}

/** Opens every stored check whose backend and version are configured; checks for retired versions are kept, unopened. */
export async function verifyKeyChecks(checks: readonly KeyCheck[], backends: ReadonlyMap<string, CryptoBackend>): Promise<KeyCheckFailure[]> {
  const failures: KeyCheckFailure[] = [];
  for (const check of checks) {
    const backend = backends.get(check.backend);
    if (backend === undefined || !backendKeyVersions(backend).includes(check.keyVersion)) continue;
    let problem: string | undefined;
    try {
      const text = await backend.decrypt(check.ciphertext, keyCheckBinding(check.backend, check.keyVersion));
      if (text !== KEY_CHECK_PLAINTEXT) problem = `does not match this database: its key check, written ${check.createdAt}, opened to the wrong text`;
    } catch (error) {
      const said = error instanceof Error ? ` (${oneLine(error.message)})` : '';
      problem = `does not match this database: its key check, written ${check.createdAt}, does not decrypt${said}`;
    }
    if (problem !== undefined) failures.push({ backend: check.backend, keyVersion: check.keyVersion, source: sourceOf(backend, check.keyVersion), problem });
  }
  return failures;
}

/** The stored checks, verified; for readiness, which re-runs it now and then. */
export async function verifyStoredKeyChecks(store: Store, backends: ReadonlyMap<string, CryptoBackend>): Promise<KeyCheckFailure[]> {
  return verifyKeyChecks(parseKeyChecks((await store.listPlatformSettings())[KEY_CHECK_SETTING]), backends);
}

/**
 * A version with no check yet, in a database that already holds provider keys sealed under it (a
 * database from before key checks, or a check lost): the keys themselves are the proof. Any one
 * that opens proves the key; none opening out of a sample refuses.
 */
async function proveWithStoredKeys(
  backendName: string,
  backend: CryptoBackend,
  keyVersion: number,
  stored: readonly StoredProviderKey[],
): Promise<KeyCheckFailure | undefined> {
  const sample = stored.filter((row) => row.cryptoBackend === backendName && row.keyVersion === keyVersion).slice(0, LEGACY_SAMPLE);
  if (sample.length === 0) return undefined;
  for (const row of sample) {
    try {
      await backend.decrypt(row.ciphertext, providerKeyBinding(row.id, row.owner, row.accountId, row.provider));
      return undefined;
    } catch {
      // Try the next one: a single damaged row does not prove a wrong key.
    }
  }
  const ids = sample.map((row) => row.id).join(', ');
  return {
    backend: backendName,
    keyVersion,
    source: sourceOf(backend, keyVersion),
    problem: `does not decrypt the provider keys stored under v${keyVersion} (${ids})`,
  };
}

async function sealCheck(backendName: string, backend: CryptoBackend, keyVersion: number): Promise<KeyCheck | undefined> {
  const binding = keyCheckBinding(backendName, keyVersion);
  let ciphertext: string;
  if (keyVersion === backend.currentKeyVersion()) ciphertext = await backend.encrypt(KEY_CHECK_PLAINTEXT, binding);
  else if (backend.encryptWithKeyVersion !== undefined) ciphertext = await backend.encryptWithKeyVersion(KEY_CHECK_PLAINTEXT, binding, keyVersion);
  else return undefined;
  return { backend: backendName, keyVersion, ciphertext, createdAt: new Date().toISOString() };
}

/**
 * Verifies the stored checks without writing anything. Runs before migrations, so a wrong key is
 * refused before the database is touched; a database whose settings cannot be read yet (new, or
 * older than the settings table) is checked by `enforceKeyChecks` after the migrations.
 */
export async function verifyKeyChecksBeforeMigrations(store: Store, backends: ReadonlyMap<string, CryptoBackend>): Promise<void> {
  let settings: Record<string, unknown>;
  try {
    settings = await store.listPlatformSettings();
  } catch {
    return;
  }
  const failures = await verifyKeyChecks(parseKeyChecks(settings[KEY_CHECK_SETTING]), backends);
  if (failures.length > 0) throw new MasterKeyCheckError(failures);
}

/**
 * At start: every stored check must open with the configured keys (else MasterKeyCheckError, and
 * nothing is written); then a check is sealed for each configured version that has none.
 */
export async function enforceKeyChecks(store: Store, backends: ReadonlyMap<string, CryptoBackend>, logger: Logger): Promise<void> {
  const checks = parseKeyChecks((await store.listPlatformSettings())[KEY_CHECK_SETTING]);
  const failures = await verifyKeyChecks(checks, backends);
  if (failures.length > 0) throw new MasterKeyCheckError(failures);
  const missing = [...backends].flatMap(([name, backend]) =>
    backendKeyVersions(backend)
      .filter((version) => !checks.some((check) => check.backend === name && check.keyVersion === version))
      .map((version) => ({ name, backend, version })),
  );
  const stored = await store.listActiveProviderKeys();
  warnAboutUnconfiguredVersions(stored, backends, logger);
  if (missing.length === 0) return;
  for (const { name, backend, version } of missing) {
    const failure = await proveWithStoredKeys(name, backend, version, stored);
    if (failure !== undefined) failures.push(failure);
  }
  if (failures.length > 0) throw new MasterKeyCheckError(failures);
  const sealed: KeyCheck[] = [];
  for (const { name, backend, version } of missing) {
    const check = await sealCheck(name, backend, version);
    if (check !== undefined) sealed.push(check);
  }
  if (sealed.length === 0) return;
  // Another instance on the same database may have written checks meanwhile: keep and verify theirs.
  const latest = parseKeyChecks((await store.listPlatformSettings())[KEY_CHECK_SETTING]);
  const raced = await verifyKeyChecks(
    latest.filter((check) => !checks.some((known) => known.backend === check.backend && known.keyVersion === check.keyVersion)),
    backends,
  );
  if (raced.length > 0) throw new MasterKeyCheckError(raced);
  const added = sealed.filter((check) => !latest.some((known) => known.backend === check.backend && known.keyVersion === check.keyVersion));
  if (added.length === 0) return;
  await store.setPlatformSetting(KEY_CHECK_SETTING, { checks: [...latest, ...added] });
  logger.info({ checks: added.map((check) => `${check.backend}:v${check.keyVersion}`) }, 'master key check written');
}

/** Rows sealed under a version nobody configured cannot be served; say so once at start. */
function warnAboutUnconfiguredVersions(stored: readonly StoredProviderKey[], backends: ReadonlyMap<string, CryptoBackend>, logger: Logger): void {
  const stranded = new Map<string, number>();
  for (const row of stored) {
    // Already reported when its version was declared lost (core/credentials/missing-key-versions.ts).
    if (row.status === 'needs_reentry') continue;
    // A reference (never-store mode) holds no ciphertext: no master key is involved.
    if (row.cryptoBackend === KEY_REFERENCE_BACKEND) continue;
    const backend = backends.get(row.cryptoBackend);
    if (backend !== undefined && backendKeyVersions(backend).includes(row.keyVersion)) continue;
    const label = backend === undefined ? `crypto backend '${row.cryptoBackend}'` : `master key v${row.keyVersion}`;
    stranded.set(label, (stranded.get(label) ?? 0) + 1);
  }
  for (const [label, count] of stranded) {
    logger.warn({ providerKeys: count }, `${count} stored provider key(s) were sealed with ${label}, which is not configured: they cannot be used until it is`);
  }
}
