import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SettingError } from '../../core/spec/settings.ts';
import type { MasterKeyring } from './envelope.ts';
import { MAX_KEY_VERSION } from './envelope.ts';
import { MASTER_KEY_BYTES, weakKeyReason } from './key-strength.ts';

export interface MasterKeyConfig {
  /** `version:key` entries, comma-separated, newest last (the plugin setting beside KEYWAY_MASTER_KEYS). */
  masterKeys?: string;
  masterKey?: string;
  masterKeyFile?: string;
  previousKeys?: string;
}

/** Where start-up notices go; the plugin passes its logger, tests pass a recorder. */
export interface MasterKeyReporter {
  warn(message: string): void;
  info(message: string): void;
}

export interface MasterKeyLoadOptions {
  config: MasterKeyConfig;
  env: Readonly<Record<string, string | undefined>>;
  dataDirectory: string;
  reporter: MasterKeyReporter;
}

export const GENERATED_KEY_FILE_NAME = 'master.key';

/** A key file this process wrote because none existed. */
export interface GeneratedKeyFile {
  path: string;
  /** SHA-256 of what was written: enough to recognise the file, without keeping the key text in memory. */
  digest: string;
}

export interface LoadedKeyring extends MasterKeyring {
  /** Set when this load generated the key file: a refused start removes it again. */
  generatedFile?: GeneratedKeyFile;
}

interface LoadedKeys {
  keys: Map<number, Buffer>;
  generatedFile?: GeneratedKeyFile;
}

const GENERATE_HINT = 'Generate one with: openssl rand -base64 32';
// `v2:key` and `2:key` alike: base64 never holds a colon, so the prefix cannot be mistaken for key text.
const VERSIONED_ENTRY = /^v?(\d+):(.*)$/s;
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;
const HEX_KEY_TEXT = /^[0-9a-fA-F]{64}$/;

/**
 * Refusal to start. Messages name the source and the problem, never the key. A SettingError, so the
 * start stops with the message alone (core/spec/settings.ts), not behind "plugin 'crypto-local': setup failed:".
 */
export class MasterKeyError extends SettingError {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

function present(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** Decodes and vets one key; `label` says where it came from so the operator can find it. */
export function parseMasterKey(text: string, label: string): Buffer {
  const trimmed = text.trim();
  if (HEX_KEY_TEXT.test(trimmed)) throw new MasterKeyError(`The master key from ${label} looks like hex; Keyway expects base64. ${GENERATE_HINT}`);
  const unpadded = trimmed.replace(/=+$/, '');
  const paddingValid = trimmed.length === unpadded.length || trimmed.length % 4 === 0;
  if (!BASE64_TEXT.test(trimmed) || !paddingValid || unpadded.length % 4 === 1) {
    throw new MasterKeyError(`The master key from ${label} is not valid base64 (standard or URL-safe). ${GENERATE_HINT}`);
  }
  const bytes = Buffer.from(unpadded.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw new MasterKeyError(`The master key from ${label} decodes to ${bytes.length} bytes; it must be exactly ${MASTER_KEY_BYTES} bytes. ${GENERATE_HINT}`);
  }
  const weakness = weakKeyReason(bytes);
  if (weakness !== undefined) throw new MasterKeyError(`The master key from ${label} is too weak: ${weakness}. ${GENERATE_HINT}`);
  return bytes;
}

/**
 * Parses `base64` (version 1) or `v<N>:base64` entries separated by commas or new lines. Lines that
 * start with `#` are comments, so a key file can say what it is.
 */
export function parseKeyring(text: string, source: string, options: { requireVersions: boolean }): Map<number, Buffer> {
  const entries = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join(',')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new MasterKeyError(`${source} holds no master key. ${GENERATE_HINT}`);
  const keys = new Map<number, Buffer>();
  for (const entry of entries) {
    const versioned = VERSIONED_ENTRY.exec(entry);
    if (versioned === null && (options.requireVersions || entries.length > 1)) {
      throw new MasterKeyError(`Every entry of ${source} must name its version as <N>:base64 or v<N>:base64 (a bare key is only allowed alone, and means v1).`);
    }
    const version = versioned === null ? 1 : Number(versioned[1]);
    if (!Number.isSafeInteger(version) || version < 1 || version > MAX_KEY_VERSION) {
      throw new MasterKeyError(`${source} has an entry with version v${versioned?.[1] ?? ''}; versions run from 1 to ${MAX_KEY_VERSION}.`);
    }
    if (keys.has(version)) throw new MasterKeyError(`${source} defines master key v${version} more than once.`);
    keys.set(version, parseMasterKey(versioned?.[2] ?? entry, versioned === null ? source : `${source} (v${version})`));
  }
  return keys;
}

function fileError(error: unknown, path: string, source: string): MasterKeyError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new MasterKeyError(`${source} names ${path}, which does not exist.`);
  if (code === 'EACCES' || code === 'EPERM') return new MasterKeyError(`${source} names ${path}, which this process may not read (${code}).`);
  return new MasterKeyError(`${source} names ${path}, which could not be read (${code ?? 'unknown error'}).`);
}

/**
 * Readable by others: refused, the key would be one `cat` away for every local user. Readable by
 * the group: a warning, because Kubernetes `fsGroup` and dedicated secret groups need it.
 * Writable by anyone but the owner: refused, whoever can replace the key can read new secrets.
 */
function checkFileMode(mode: number, path: string, source: string, reporter: MasterKeyReporter): void {
  if (process.platform === 'win32') return;
  const permissions = (mode & 0o777).toString(8).padStart(3, '0');
  if ((mode & 0o022) !== 0)
    throw new MasterKeyError(`${source} names ${path}, which is writable by group or others (mode ${permissions}). Run: chmod 600 ${path}`);
  if ((mode & 0o004) !== 0) throw new MasterKeyError(`${source} names ${path}, which every local user can read (mode ${permissions}). Run: chmod 600 ${path}`);
  if ((mode & 0o040) !== 0)
    reporter.warn(
      `SECURITY WARNING: the master key file ${path} is readable by its group (mode ${permissions}). Unless that group exists only to read this secret, run: chmod 600 ${path}`,
    );
}

function readKeyFile(path: string, source: string, reporter: MasterKeyReporter): Map<number, Buffer> {
  let text: string;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new MasterKeyError(`${source} names ${path}, which is not a regular file.`);
    checkFileMode(stats.mode, path, source, reporter);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof MasterKeyError) throw error;
    throw fileError(error, path, source);
  }
  return parseKeyring(text, `the key file ${path}`, { requireVersions: false });
}

/** A fresh random key in base64, checked like any configured key. */
export function generateMasterKey(): string {
  for (;;) {
    const bytes = randomBytes(MASTER_KEY_BYTES);
    if (weakKeyReason(bytes) === undefined) return bytes.toString('base64');
  }
}

function isSharedDatabase(url: string | undefined): boolean {
  return url !== undefined && url.trim() !== '' && !url.trim().startsWith('file:');
}

/** Whether anything sits at `path`; a dangling link counts, so it is reported rather than overwritten. */
function lstatExists(path: string, source: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fileError(error, path, source);
  }
}

/** Generating the key is a write: say so, naming the folder, instead of "may not read". */
function dataFolderError(error: unknown, folder: string, path: string): MasterKeyError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
  return new MasterKeyError(
    `The data folder ${folder} could not be written (${code}), so the generated master key ${path} cannot be created. Make the folder writable, or set KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE.`,
  );
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function loadOrGenerateKeyFile(options: MasterKeyLoadOptions): LoadedKeys {
  const path = join(options.dataDirectory, GENERATED_KEY_FILE_NAME);
  const source = 'The generated master key';
  if (lstatExists(path, source)) {
    const keys = readKeyFile(path, source, options.reporter);
    options.reporter.info(`Using the generated master key in ${path}. Set KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE to manage it yourself.`);
    return { keys };
  }
  // Instances sharing one database must share one key; a key generated per instance would make
  // every other instance's secrets unreadable.
  if (isSharedDatabase(options.env.KEYWAY_DATABASE_URL)) {
    throw new MasterKeyError(
      'KEYWAY_DATABASE_URL names a shared database, so set KEYWAY_MASTER_KEY or KEYWAY_MASTER_KEY_FILE to the same key on every instance. ' + GENERATE_HINT,
    );
  }
  try {
    mkdirSync(options.dataDirectory, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw dataFolderError(error, options.dataDirectory, path);
  }
  const header = `# Keyway master key, generated ${new Date().toISOString()}.\n# Back this file up: without it, stored provider keys cannot be decrypted.\n`;
  const text = `${header}${generateMasterKey()}\n`;
  let generatedFile: GeneratedKeyFile | undefined;
  try {
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    // The umask can only remove bits, but make the mode exact whatever it was.
    chmodSync(path, 0o600);
    generatedFile = { path, digest: digestOf(text) };
    options.reporter.warn(
      `Generated a new master key in ${path} because neither KEYWAY_MASTER_KEY nor KEYWAY_MASTER_KEY_FILE is set. Back this file up now: without it every stored provider key is lost.`,
    );
  } catch (error) {
    // Another instance on the same data directory won the race; use its key.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw dataFolderError(error, options.dataDirectory, path);
  }
  const keys = readKeyFile(path, source, options.reporter);
  return generatedFile === undefined ? { keys } : { keys, generatedFile };
}

/**
 * Removes a generated key file again, after a refused start: nothing was sealed under it, and left
 * behind it would be presented as the database's key at the next start. A file that no longer holds
 * what was written (replaced by hand meanwhile) is left alone. Answers whether it was removed.
 */
export function discardGeneratedKeyFile(generated: GeneratedKeyFile): boolean {
  try {
    if (digestOf(readFileSync(generated.path, 'utf8')) !== generated.digest) return false;
    unlinkSync(generated.path);
    return true;
  } catch {
    return false;
  }
}

/**
 * `KEYWAY_MASTER_KEYS` (or the masterKeys setting): every version in one list, oldest first, so the
 * last entry is the one new secrets are sealed with. It stands alone: mixed with the single-key
 * variables nobody could tell which key is current, so that is refused rather than guessed.
 */
function loadVersionedList(text: string, name: string, others: ReadonlyArray<readonly [string, string | undefined]>): Map<number, Buffer> {
  const mixed = others.filter(([, value]) => value !== undefined).map(([other]) => other);
  if (mixed.length > 0) {
    throw new MasterKeyError(
      `${name} is set together with ${mixed.join(' and ')}; ${name} lists every master key version on its own (version:key, newest last), so remove ${mixed.join(' and ')}, or put their keys into ${name} as older versions.`,
    );
  }
  const keys = parseKeyring(text, name, { requireVersions: true });
  const versions = [...keys.keys()];
  const outOfOrder = versions.findIndex((version, index) => index > 0 && version <= (versions[index - 1] ?? 0));
  if (outOfOrder > 0) {
    throw new MasterKeyError(
      `${name} lists v${versions[outOfOrder]} after v${versions[outOfOrder - 1]}; list the versions oldest first, so the last entry is the newest (the one new secrets are sealed with).`,
    );
  }
  return keys;
}

function loadPrimaryKeys(options: MasterKeyLoadOptions): LoadedKeys & { source: string } {
  const { config, env } = options;
  const configList = present(config.masterKeys);
  if (configList !== undefined) {
    const others = [
      ['the masterKey setting', present(config.masterKey)],
      ['the masterKeyFile setting', present(config.masterKeyFile)],
      ['the previousKeys setting', present(config.previousKeys)],
    ] as const;
    return { keys: loadVersionedList(configList, 'the masterKeys setting', others), source: 'the masterKeys setting' };
  }
  const envList = present(env.KEYWAY_MASTER_KEYS);
  if (envList !== undefined && present(config.masterKey) === undefined && present(config.masterKeyFile) === undefined) {
    const others = [
      ['KEYWAY_MASTER_KEY', present(env.KEYWAY_MASTER_KEY)],
      ['KEYWAY_MASTER_KEY_FILE', present(env.KEYWAY_MASTER_KEY_FILE)],
      ['KEYWAY_PREVIOUS_MASTER_KEYS', present(env.KEYWAY_PREVIOUS_MASTER_KEYS)],
      ['the previousKeys setting', present(config.previousKeys)],
    ] as const;
    return { keys: loadVersionedList(envList, 'KEYWAY_MASTER_KEYS', others), source: 'KEYWAY_MASTER_KEYS' };
  }
  // The configuration file, when it names a key at all, replaces the environment as a whole so
  // the two never mix into a keyring nobody wrote down.
  const fromConfig = present(config.masterKey) !== undefined || present(config.masterKeyFile) !== undefined;
  const inline = fromConfig ? present(config.masterKey) : present(env.KEYWAY_MASTER_KEY);
  const file = fromConfig ? present(config.masterKeyFile) : present(env.KEYWAY_MASTER_KEY_FILE);
  const inlineName = fromConfig ? 'the masterKey setting' : 'KEYWAY_MASTER_KEY';
  const fileName = fromConfig ? 'The masterKeyFile setting' : 'KEYWAY_MASTER_KEY_FILE';
  if (inline !== undefined && file !== undefined) throw new MasterKeyError(`Set either ${inlineName} or ${fileName}, not both.`);
  if (inline !== undefined) return { keys: parseKeyring(inline, inlineName, { requireVersions: false }), source: inlineName };
  if (file !== undefined) return { keys: readKeyFile(file.trim(), fileName, options.reporter), source: `${fileName.replace(/^The /, 'the ')} ${file.trim()}` };
  const path = join(options.dataDirectory, GENERATED_KEY_FILE_NAME);
  const loaded = loadOrGenerateKeyFile(options);
  // Generated now: the file was not there, which a refusal must say (a database set up before holds another key).
  return { ...loaded, source: loaded.generatedFile === undefined ? `the generated key file ${path}` : `${path}, which was missing` };
}

function sameKeyVersions(keys: ReadonlyMap<number, Buffer>): [number, number] | undefined {
  const entries = [...keys.entries()];
  for (const [index, [version, bytes]] of entries.entries()) {
    const twin = entries.slice(index + 1).find(([, other]) => other.equals(bytes));
    if (twin !== undefined) return [version, twin[0]];
  }
  return undefined;
}

/** Loads every master key, refusing anything that would leave secrets weakly protected. */
export function loadMasterKeyring(options: MasterKeyLoadOptions): LoadedKeyring {
  const { keys, source, generatedFile } = loadPrimaryKeys(options);
  const sources = new Map([...keys.keys()].map((version) => [version, source] as const));
  const current = Math.max(...keys.keys());
  const listed = source === 'KEYWAY_MASTER_KEYS' || source === 'the masterKeys setting';
  const previousText = present(options.config.previousKeys) ?? present(options.env.KEYWAY_PREVIOUS_MASTER_KEYS);
  const previousName = present(options.config.previousKeys) !== undefined ? 'the previousKeys setting' : 'KEYWAY_PREVIOUS_MASTER_KEYS';
  if (previousText !== undefined && !listed) {
    for (const [version, bytes] of parseKeyring(previousText, previousName, { requireVersions: true })) {
      if (version >= current)
        throw new MasterKeyError(`${previousName} holds v${version}, but previous keys must be older than the current master key v${current}.`);
      keys.set(version, bytes);
      sources.set(version, previousName);
    }
  }
  const twins = sameKeyVersions(keys);
  if (twins !== undefined) throw new MasterKeyError(`Master keys v${twins[0]} and v${twins[1]} are the same key; a rotation needs a new one. ${GENERATE_HINT}`);
  const keyObjects = new Map([...keys].map(([version, bytes]) => [version, createSecretKey(bytes)] as const));
  // createSecretKey copied the bytes; wipe ours so only the opaque KeyObjects remain.
  for (const bytes of keys.values()) bytes.fill(0);
  return { current, keys: keyObjects, sources, ...(generatedFile === undefined ? {} : { generatedFile }) };
}

/** "current v2; decrypts v1, v2": safe to log, names no key. */
export function describeKeyring(keyring: MasterKeyring): string {
  const versions = [...keyring.keys.keys()].sort((left, right) => left - right).map((version) => `v${version}`);
  return `current v${keyring.current}; decrypts ${versions.join(', ')}`;
}
