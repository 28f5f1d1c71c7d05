import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseCidr, parseIp } from './wire/ip-address.ts';
import { parseUpstreamList } from './wire/upstream-entries.ts';
import { effectiveFetchCapacity } from './process/fetch-capacity.ts';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_MAX_JSON_DEPTH } from './http/kit/body.ts';
import { parseCorsOrigins, type CorsOrigins } from './http/cors.ts';
import { closestNames } from './closest-names.ts';
import { choiceSetting, integerSetting, onOffSetting, secretSetting, SettingError } from './spec/settings.ts';

export interface GatewayConfig {
  host: string;
  port: number;
  databaseUrl: string;
  redisUrl: string | undefined;
  dataDirectory: string;
  adminKey: string | undefined;
  firstByteTimeoutMs: number;
  /**
   * How long a stream's events that carry no generated content (its opening, keep-alives) may be held
   * back after its first byte (`KEYWAY_STREAM_OPENING_HOLD_MS`; 0: not at all), so an error that
   * follows them can still fall back (core/lifecycle/opening-hold.ts).
   */
  streamOpeningHoldMs: number;
  totalTimeoutMs: number;
  maxBodyBytes: number;
  /** How deeply a request body's arrays and objects may nest (`KEYWAY_MAX_JSON_DEPTH`). */
  maxJsonDepth: number;
  /** How long a request body may take to arrive in full (`KEYWAY_BODY_TIMEOUT_MS`); then 408 `request_timeout`. */
  bodyTimeoutMs: number;
  pluginPaths: string[];
  /** Per-plugin configuration from the `KEYWAY_CONFIG` file's `plugins` section. */
  pluginConfig: Record<string, unknown>;
  logLevel: string;
  usageFlushIntervalMs: number;
  usageBatchSize: number;
  /** Usage rows held in memory at most (`KEYWAY_USAGE_BUFFER_MAX`); beyond, they live only in the journal until written. */
  usageBufferMax: number;
  /** The crash journal of usage rows (KEYWAY_USAGE_JOURNAL=off turns it off: a crash may then lose a flush interval of rows). */
  usageJournal: boolean;
  /** How often a running process looks for the usage journals of processes that died (`KEYWAY_USAGE_JOURNAL_RESCAN_MS`). */
  usageJournalRescanMs: number;
  /** How long in-flight streams may run once shutdown begins (`KEYWAY_DRAIN_TIMEOUT_MS`) before they are ended. */
  drainTimeoutMs: number;
  /**
   * Under KEYWAY_WORKERS, a worker whose event loop has not answered the primary this long
   * (`KEYWAY_WORKER_TIMEOUT_MS`) is killed and replaced; 0: never.
   */
  workerTimeoutMs: number;
  /**
   * Under KEYWAY_WORKERS, a worker that has not listened this long after it was started
   * (`KEYWAY_WORKER_START_TIMEOUT_MS`) is killed: the start stops, or a restarted worker is restarted
   * again (core/process/primary.ts); 0: never.
   */
  workerStartTimeoutMs: number;
  /**
   * On a database served over the network (libSQL server, PostgreSQL) without shared counters
   * (KEYWAY_REDIS_URL), how long the instance lease lasts unrenewed (`KEYWAY_INSTANCE_LEASE_MS`):
   * the longest an instance that died blocks the next start (core/process/instance-lease.ts).
   */
  instanceLeaseMs: number;
  modelsCacheTtlMs: number;
  /** With a shared cluster bus, the configuration is also reloaded this often (`KEYWAY_CONFIG_RELOAD_MS`), in case a message was missed. */
  configReloadMs: number;
  /**
   * With a shared cluster bus, the store's configuration change version is read this often
   * (`KEYWAY_CONFIG_POLL_MS`; 0: never), so a change whose message was missed arrives within it.
   */
  configPollMs: number;
  /** /ready answers 503 when the data directory has less free space than this (0: never). */
  minFreeDiskMb: number;
  /** Bun's fetch connection limit in this process: BUN_CONFIG_MAX_HTTP_REQUESTS as it was at start, else 256. */
  upstreamConnections: number;
  /** In-flight upstream attempts one account may hold (`KEYWAY_MAX_INFLIGHT_PER_ACCOUNT`); a quarter of the connections by default. */
  maxInflightPerAccount: number;
  /** In-flight upstream attempts to one upstream origin (`KEYWAY_MAX_INFLIGHT_PER_UPSTREAM`); half the connections by default. */
  maxInflightPerUpstream: number;
  /** The longest an attempt waits for those slots (`KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS`), never past its first-byte deadline. */
  upstreamQueueTimeoutMs: number;
  /** Hosts, `*.suffix` globs, IPs and CIDRs (each with an optional port) a key's base_url may reach beyond the built-in rule (`KEYWAY_UPSTREAM_ALLOW`). */
  upstreamAllow: string[];
  /** What calls upstreams (`KEYWAY_UPSTREAM_CLIENT`): Bun's fetch, or Keyway's keep-alive pool over Bun.connect (core/wire/http1). */
  upstreamClient: 'fetch' | 'pool';
  /** `KEYWAY_THREAD_SCHEDULING`: `batch` takes wake-up preemption from the helper threads (core/process/thread-scheduling.ts), `default` leaves them be. */
  threadScheduling: 'batch' | 'default';
  /** The same, refused for a key's base_url whatever else allows it (`KEYWAY_UPSTREAM_DENY`). */
  upstreamDeny: string[];
  /**
   * Addresses and CIDR ranges of the reverse proxies in front of Keyway (`KEYWAY_TRUSTED_PROXIES`): only
   * a request whose socket address is one of them has its client address read from `X-Forwarded-For`.
   */
  trustedProxies: string[];
  /** The browser origins that may call Keyway cross-origin (`KEYWAY_CORS_ORIGINS`); undefined: no CORS (core/http/cors.ts). */
  corsOrigins: CorsOrigins | undefined;
  /** A price table in LiteLLM's format merged over the embedded one (`KEYWAY_PRICES_FILE`), re-read by POST /v1/platform/prices/reload. */
  pricesFile: string | undefined;
  /**
   * `KEYWAY_START_FRESH`: start a new installation on an empty store even though the data directory
   * holds the embedded database of an earlier one (core/earlier-installation.ts refuses that otherwise).
   */
  startFresh: boolean;
  /** Rows per re-wrap transaction of a master key rotation (`KEYWAY_MASTER_KEY_REWRAP_BATCH`). */
  masterKeyRewrapBatch: number;
  /** The pause between re-wrap batches (`KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS`; 0: none). */
  masterKeyRewrapPauseMs: number;
  /** The KEYWAY_CONFIG file and the variable names (`KEYWAY_…`) it holds, checked against the plugins' declarations once they load. */
  configFile?: ConfigFileVariables;
  /** Everything else a plugin may read (`KEYWAY_<PROVIDER>_BASE_URL`, master key variables…). */
  env: Record<string, string | undefined>;
}

export interface ConfigFileVariables {
  path: string;
  variableNames: string[];
}

/** A configuration the start cannot use; a SettingError, so it is printed as one line naming what is wrong. */
export class ConfigError extends SettingError {
  override name = 'ConfigError';
}

const ENVIRONMENT_KEYS: Record<string, string> = {
  host: 'KEYWAY_HOST',
  port: 'KEYWAY_PORT',
  databaseUrl: 'KEYWAY_DATABASE_URL',
  redisUrl: 'KEYWAY_REDIS_URL',
  dataDirectory: 'KEYWAY_DATA_DIR',
  adminKey: 'KEYWAY_ADMIN_KEY',
  firstByteTimeoutMs: 'KEYWAY_FIRST_BYTE_TIMEOUT_MS',
  streamOpeningHoldMs: 'KEYWAY_STREAM_OPENING_HOLD_MS',
  totalTimeoutMs: 'KEYWAY_TOTAL_TIMEOUT_MS',
  maxBodyBytes: 'KEYWAY_MAX_BODY_BYTES',
  maxJsonDepth: 'KEYWAY_MAX_JSON_DEPTH',
  bodyTimeoutMs: 'KEYWAY_BODY_TIMEOUT_MS',
  pluginPaths: 'KEYWAY_PLUGINS',
  upstreamAllow: 'KEYWAY_UPSTREAM_ALLOW',
  upstreamDeny: 'KEYWAY_UPSTREAM_DENY',
  trustedProxies: 'KEYWAY_TRUSTED_PROXIES',
  corsOrigins: 'KEYWAY_CORS_ORIGINS',
  logLevel: 'KEYWAY_LOG_LEVEL',
  usageFlushIntervalMs: 'KEYWAY_USAGE_FLUSH_MS',
  usageBatchSize: 'KEYWAY_USAGE_BATCH_SIZE',
  usageBufferMax: 'KEYWAY_USAGE_BUFFER_MAX',
  usageJournal: 'KEYWAY_USAGE_JOURNAL',
  usageJournalRescanMs: 'KEYWAY_USAGE_JOURNAL_RESCAN_MS',
  drainTimeoutMs: 'KEYWAY_DRAIN_TIMEOUT_MS',
  workerTimeoutMs: 'KEYWAY_WORKER_TIMEOUT_MS',
  workerStartTimeoutMs: 'KEYWAY_WORKER_START_TIMEOUT_MS',
  instanceLeaseMs: 'KEYWAY_INSTANCE_LEASE_MS',
  minFreeDiskMb: 'KEYWAY_MIN_FREE_DISK_MB',
  modelsCacheTtlMs: 'KEYWAY_MODELS_CACHE_TTL_MS',
  configReloadMs: 'KEYWAY_CONFIG_RELOAD_MS',
  configPollMs: 'KEYWAY_CONFIG_POLL_MS',
  maxInflightPerAccount: 'KEYWAY_MAX_INFLIGHT_PER_ACCOUNT',
  maxInflightPerUpstream: 'KEYWAY_MAX_INFLIGHT_PER_UPSTREAM',
  upstreamQueueTimeoutMs: 'KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS',
  upstreamClient: 'KEYWAY_UPSTREAM_CLIENT',
  threadScheduling: 'KEYWAY_THREAD_SCHEDULING',
  pricesFile: 'KEYWAY_PRICES_FILE',
  startFresh: 'KEYWAY_START_FRESH',
};

/**
 * The variables the core reads besides those of ENVIRONMENT_KEYS (core/process/workers.ts,
 * fetch-capacity.ts, credentials/, runtime.ts); with them, every name the core declares.
 */
export const CORE_VARIABLES: readonly string[] = [
  ...Object.values(ENVIRONMENT_KEYS),
  'KEYWAY_CONFIG',
  'KEYWAY_WORKERS',
  'KEYWAY_WORKER_INDEX',
  'KEYWAY_MAX_UPSTREAM_CONNECTIONS',
  'KEYWAY_CRYPTO_BACKEND',
  'KEYWAY_ALLOW_MISSING_KEY_VERSIONS',
  'KEYWAY_MASTER_KEY_REWRAP_BATCH',
  'KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS',
];

/** The file's section of per-plugin settings (`plugins.<plugin name>`). */
const PLUGINS_SECTION = 'plugins';

/**
 * A variable's name: read by the core or by a plugin (plugins read their own, `KEYWAY_VAULT_ADDR`), so
 * any such name is taken here and handed on; once the plugins have loaded, one that nobody declares is
 * refused (core/variable-names.ts).
 */
export const VARIABLE_NAME = /^KEYWAY_[A-Z0-9_]+$/;

/** The names the file may hold besides variable names: the camelCase settings and the plugins section. */
const FILE_NAMES: readonly string[] = [...Object.keys(ENVIRONMENT_KEYS), PLUGINS_SECTION];

/** The known name nearest to `name`, ignoring case (`PORT`, `porrt` → `port`). */
function closestFileName(name: string): string | undefined {
  const candidates = [...FILE_NAMES, ...Object.values(ENVIRONMENT_KEYS)];
  const byLowerCase = new Map(candidates.map((candidate) => [candidate.toLowerCase(), candidate]));
  const [nearest] = closestNames(name.toLowerCase(), byLowerCase.keys(), 1);
  return nearest === undefined ? undefined : byLowerCase.get(nearest);
}

/**
 * Every top-level name of the file must be one Keyway reads: a misspelt one (`porrt`) would otherwise
 * be ignored without a word and the default used, which is the mistake the operator wanted to avoid.
 */
function refuseUnknownFileNames(file: Record<string, unknown>, path: string): void {
  // A variable name, but one the file cannot set: the file is read once, and one it names would not be.
  if ('KEYWAY_CONFIG' in file) {
    throw new ConfigError(
      `KEYWAY_CONFIG file ${path}: KEYWAY_CONFIG cannot be set in the file (a file it named would not be read); put every setting in this file, or point KEYWAY_CONFIG at the other.`,
    );
  }
  for (const name of Object.keys(file)) {
    if (FILE_NAMES.includes(name) || VARIABLE_NAME.test(name)) continue;
    const nearest = closestFileName(name);
    const suggestion = nearest === undefined ? '' : ` Did you mean '${nearest}'?`;
    throw new ConfigError(
      `KEYWAY_CONFIG file ${path}: unknown setting '${name.slice(0, 100)}'.${suggestion} The file takes variable names (KEYWAY_PORT), ` +
        `their camelCase names (port) and plugin settings under "${PLUGINS_SECTION}"; see docs/configuration.md.`,
    );
  }
  const plugins = file[PLUGINS_SECTION];
  if (plugins !== undefined && (plugins === null || typeof plugins !== 'object' || Array.isArray(plugins))) {
    throw new ConfigError(`KEYWAY_CONFIG file ${path}: "${PLUGINS_SECTION}" must be an object of plugin name → settings.`);
  }
}

/** The embedded database's file name in the data directory, where a default start keeps it. */
export const EMBEDDED_DATABASE_FILE = 'keyway.db';

const SUPPORTED_DATABASE_URL = /^(file:|:memory:$|(libsql|https?|wss?|postgres(ql)?):\/\/)/;

const POSTGRES_DATABASE_URL = /^postgres(ql)?:\/\//;
const SERVER_DATABASE_URL = /^(libsql|https?|wss?|postgres(ql)?):\/\//;

/** How to write a server's URL, for a message. */
function databaseUrlForm(url: string): string {
  return POSTGRES_DATABASE_URL.test(url) ? 'postgres://user:password@host[:port]/database' : 'libsql://host[:port] (or https://)';
}

/**
 * Why a database URL cannot be used, naming only its scheme: what follows can hold a password. A server's
 * URL must name the server: the PostgreSQL client fills in the local one and its default database for
 * `postgres://` or `postgres:///keyway` (an unset `${DB_HOST}`), and a start used to create a new
 * installation in the server's `postgres` database (QA20 ops). A socket folder in `?host=` names it too.
 */
export function unsupportedDatabaseUrl(url: string): string | undefined {
  if (!SUPPORTED_DATABASE_URL.test(url)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    const got = scheme === undefined ? 'a value without a scheme (a file path needs file:)' : `the scheme ${scheme}:`;
    return `KEYWAY_DATABASE_URL must start with file:, libsql://, http(s):// or postgres://; got ${got}.`;
  }
  if (!SERVER_DATABASE_URL.test(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `KEYWAY_DATABASE_URL is not a URL; write it as ${databaseUrlForm(url)}.`;
  }
  const socketFolder = POSTGRES_DATABASE_URL.test(url) ? (parsed.searchParams.get('host') ?? '') : '';
  if (parsed.hostname === '' && socketFolder === '') return `KEYWAY_DATABASE_URL names no host; write it as ${databaseUrlForm(url)}.`;
  return undefined;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`KEYWAY_CONFIG names ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`KEYWAY_CONFIG file ${path} is not a JSON object: ${(error as Error).message}`);
  }
}

/** An upstream allow/deny list, every entry checked now so a typo stops the start instead of opening or closing the wrong range. */
function upstreamList(key: 'upstreamAllow' | 'upstreamDeny', text: string | undefined, fromEnvironment: boolean, configPath: string | undefined): string[] {
  const source = fromEnvironment ? ENVIRONMENT_KEYS[key] : `${key} in the KEYWAY_CONFIG file ${configPath ?? ''}`.trim();
  try {
    return parseUpstreamList(text, source ?? key).map((entry) => entry.text);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

function corsOrigins(text: string | undefined): CorsOrigins | undefined {
  try {
    return parseCorsOrigins(text);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** `KEYWAY_TRUSTED_PROXIES`: every entry an address or CIDR range, checked now so a typo stops the start. */
function trustedProxyList(text: string | undefined): string[] {
  const entries = (text ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  for (const entry of entries) {
    try {
      parseCidr(entry);
    } catch (error) {
      throw new ConfigError(`KEYWAY_TRUSTED_PROXIES: ${(error as Error).message}.`);
    }
  }
  return entries;
}

/** pino's levels, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Where a default start keeps its data, relative to the working directory. */
const DEFAULT_DATA_DIRECTORY = './data';

/** The embedded database in the data directory: `./data/keyway.db` by default, `<KEYWAY_DATA_DIR>/keyway.db` when that is set. */
function defaultDatabaseUrl(dataDirectory: string | undefined): string {
  if (dataDirectory === undefined) return `file:${DEFAULT_DATA_DIRECTORY}/${EMBEDDED_DATABASE_FILE}`;
  return `file:${join(resolve(dataDirectory), EMBEDDED_DATABASE_FILE)}`;
}

/**
 * Until QA17 a start with KEYWAY_DATA_DIR and no KEYWAY_DATABASE_URL kept the database in ./data under
 * the working directory, and only the master key and the usage journal in the data directory. Such an
 * installation must not meet an empty database in the data directory and begin anew without a word
 * (its accounts, keys and teams would seem gone): the start stops and says how to move the file.
 */
function refuseDatabaseLeftBehind(dataDirectory: string): void {
  const expected = join(dataDirectory, EMBEDDED_DATABASE_FILE);
  const earlier = resolve(DEFAULT_DATA_DIRECTORY, EMBEDDED_DATABASE_FILE);
  if (expected === earlier || existsSync(expected) || !existsSync(earlier)) return;
  throw new ConfigError(
    `KEYWAY_DATA_DIR is ${dataDirectory}, which holds no ${EMBEDDED_DATABASE_FILE}, but ${earlier} exists: releases before this one kept ` +
      `the database there even with KEYWAY_DATA_DIR set, and now keep it in KEYWAY_DATA_DIR. Stop every Keyway using it and move it ` +
      `(mv ${earlier} ${dataDirectory}/, with ${EMBEDDED_DATABASE_FILE}-wal and ${EMBEDDED_DATABASE_FILE}-shm if present), or keep it where it is ` +
      `with KEYWAY_DATABASE_URL=file:${earlier}; KEYWAY_START_FRESH=on begins a new installation instead.`,
  );
}

/** `KEYWAY_HOST`: an IP address or a host name, so a typo is named now rather than as a failed listen. */
function listenHost(text: string | undefined): string {
  if (text === undefined || text.trim() === '') return '127.0.0.1';
  const host = text.trim();
  const bracketless = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (parseIp(bracketless) !== undefined) return bracketless;
  // Four dotted numbers are an IPv4 address or nothing: 999.1.1.1 is no host name either. Underscores
  // are taken: container names (a compose service) have them and resolve.
  const hostName = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
  if (!/^[0-9.]+$/.test(host) && hostName.test(host)) return host;
  throw new ConfigError(`KEYWAY_HOST must be an IP address of this machine (0.0.0.0 for all) or a host name; got ${JSON.stringify(text)}.`);
}

/**
 * Longer than the usual wait between a provider's opening events and its first token (a few hundred
 * milliseconds), where an overloaded or failed generation reports itself; short enough that a
 * reasoning model, which sends its opening at once and then thinks for seconds, has its opening sent
 * after a pause no client notices (docs/routing.md, "Streams").
 */
const DEFAULT_STREAM_OPENING_HOLD_MS = 1_000;

/**
 * gunicorn's default. A report blocks a worker's event loop for tens of milliseconds and a GC pause for
 * less, but a management write may wait 5 s for SQLite's lock (busy_timeout), and converting a provider
 * key or ending a master-key rotation VACUUMs the embedded database on the loop (seconds a gigabyte): a
 * sound worker must outlast those.
 * Nothing waits for a silent worker meanwhile; only the connections the kernel hands it do.
 */
const DEFAULT_WORKER_TIMEOUT_MS = 30_000;

/** `KEYWAY_WORKER_TIMEOUT_MS`: 0 (never), or a second or more: below that, heartbeats would be too close for a busy machine. */
function workerTimeout(value: string | undefined): number {
  const timeout = integerSetting('KEYWAY_WORKER_TIMEOUT_MS', value, DEFAULT_WORKER_TIMEOUT_MS, 0, 3_600_000);
  if (timeout > 0 && timeout < 1_000) throw new ConfigError(`KEYWAY_WORKER_TIMEOUT_MS must be 0 (never) or at least 1000; got ${JSON.stringify(value)}.`);
  return timeout;
}

/**
 * A worker's start: loading plugins, migrating the database (worker 1, on a new version: seconds
 * usually, minutes for a large table on PostgreSQL), replaying usage journals a crash left, a key
 * source's first answers. Five minutes outlasts all of those on a sound machine, and a start that
 * hangs (a key source, a database or a plugin's setup that never answers) is reported within five
 * minutes instead of never. A migration cut by the kill is rolled back (each runs in one transaction).
 */
const DEFAULT_WORKER_START_TIMEOUT_MS = 300_000;

/** `KEYWAY_WORKER_START_TIMEOUT_MS`: 0 (never), or a second or more: no worker starts faster. */
function workerStartTimeout(value: string | undefined): number {
  const timeout = integerSetting('KEYWAY_WORKER_START_TIMEOUT_MS', value, DEFAULT_WORKER_START_TIMEOUT_MS, 0, 86_400_000);
  if (timeout > 0 && timeout < 1_000) {
    throw new ConfigError(`KEYWAY_WORKER_START_TIMEOUT_MS must be 0 (never) or at least 1000; got ${JSON.stringify(value)}.`);
  }
  return timeout;
}

/**
 * Reads the configuration: environment variables win over the optional JSON file named by
 * `KEYWAY_CONFIG`, whose keys are the camelCase names of GatewayConfig (or the variable names).
 */
export function loadConfig(environment: Record<string, string | undefined> = process.env): GatewayConfig {
  try {
    return readConfig(environment);
  } catch (error) {
    // The shared readers (core/spec/settings.ts) throw SettingErrors; the core's own are ConfigErrors.
    if (error instanceof SettingError && !(error instanceof ConfigError)) throw new ConfigError(error.message);
    throw error;
  }
}

function readConfig(environment: Record<string, string | undefined>): GatewayConfig {
  const file = environment.KEYWAY_CONFIG ? readConfigFile(environment.KEYWAY_CONFIG) : {};
  if (environment.KEYWAY_CONFIG) refuseUnknownFileNames(file, environment.KEYWAY_CONFIG);
  const value = (key: string): string | undefined => {
    const variable = ENVIRONMENT_KEYS[key] ?? key;
    const fromEnvironment = environment[variable];
    if (fromEnvironment !== undefined && fromEnvironment !== '') return fromEnvironment;
    const fromFile = file[key] ?? file[variable];
    if (fromFile === undefined || fromFile === null) return undefined;
    return Array.isArray(fromFile) ? fromFile.join(',') : String(fromFile);
  };
  const configuredDataDirectory = value('dataDirectory');
  const configuredDatabaseUrl = value('databaseUrl');
  const startFresh = onOffSetting('KEYWAY_START_FRESH', value('startFresh'), false);
  // Without a database URL the embedded database lives in the data directory, beside the master key
  // and the usage journal, so one volume at KEYWAY_DATA_DIR keeps the whole installation.
  const databaseUrl = configuredDatabaseUrl ?? defaultDatabaseUrl(configuredDataDirectory);
  if (configuredDatabaseUrl === undefined && configuredDataDirectory !== undefined && !startFresh) {
    refuseDatabaseLeftBehind(resolve(configuredDataDirectory));
  }
  // Checked here, before any plugin runs, so crypto-local does not report it as a master key problem.
  const databaseProblem = unsupportedDatabaseUrl(databaseUrl);
  if (databaseProblem !== undefined) throw new ConfigError(databaseProblem);
  const defaultDataDirectory = databaseUrl.startsWith('file:') ? dirname(databaseUrl.slice('file:'.length)) : DEFAULT_DATA_DIRECTORY;
  const pluginConfig = file[PLUGINS_SECTION];
  const merged: Record<string, string | undefined> = { ...environment };
  for (const [key, fileValue] of Object.entries(file)) {
    // An empty variable is unset, as value() reads it: the file's value then applies.
    if (key.startsWith('KEYWAY_') && (merged[key] === undefined || merged[key] === '') && typeof fileValue !== 'object') merged[key] = String(fileValue);
  }
  merged.KEYWAY_DATABASE_URL = databaseUrl;
  const upstreamConnections = effectiveFetchCapacity(environment);
  const pricesFile = value('pricesFile');
  const configPath = environment.KEYWAY_CONFIG;
  return {
    host: listenHost(value('host')),
    port: integerSetting('KEYWAY_PORT', value('port'), 8080, 0, 65535),
    databaseUrl,
    redisUrl: value('redisUrl'),
    dataDirectory: resolve(configuredDataDirectory ?? defaultDataDirectory),
    adminKey: secretSetting('KEYWAY_ADMIN_KEY', value('adminKey')),
    firstByteTimeoutMs: integerSetting('KEYWAY_FIRST_BYTE_TIMEOUT_MS', value('firstByteTimeoutMs'), 60_000, 1, 3_600_000),
    streamOpeningHoldMs: integerSetting('KEYWAY_STREAM_OPENING_HOLD_MS', value('streamOpeningHoldMs'), DEFAULT_STREAM_OPENING_HOLD_MS, 0, 10_000),
    totalTimeoutMs: integerSetting('KEYWAY_TOTAL_TIMEOUT_MS', value('totalTimeoutMs'), 600_000, 1, 86_400_000),
    maxBodyBytes: integerSetting('KEYWAY_MAX_BODY_BYTES', value('maxBodyBytes'), 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxJsonDepth: integerSetting('KEYWAY_MAX_JSON_DEPTH', value('maxJsonDepth'), DEFAULT_MAX_JSON_DEPTH, 1, 10_000),
    // At least 100 ms: no client sends a body faster than a round trip or two, so less would refuse sound requests.
    bodyTimeoutMs: integerSetting('KEYWAY_BODY_TIMEOUT_MS', value('bodyTimeoutMs'), DEFAULT_BODY_TIMEOUT_MS, 100, 3_600_000),
    pluginPaths: (value('pluginPaths') ?? '')
      .split(',')
      .map((path) => path.trim())
      .filter((path) => path.length > 0),
    pluginConfig: pluginConfig !== null && typeof pluginConfig === 'object' ? (pluginConfig as Record<string, unknown>) : {},
    logLevel: choiceSetting('KEYWAY_LOG_LEVEL', value('logLevel'), LOG_LEVELS, 'info'),
    usageFlushIntervalMs: integerSetting('KEYWAY_USAGE_FLUSH_MS', value('usageFlushIntervalMs'), 1000, 10, 600_000),
    usageBatchSize: integerSetting('KEYWAY_USAGE_BATCH_SIZE', value('usageBatchSize'), 2000, 1, 100_000),
    usageBufferMax: integerSetting('KEYWAY_USAGE_BUFFER_MAX', value('usageBufferMax'), 100_000, 1, 10_000_000),
    usageJournal: onOffSetting('KEYWAY_USAGE_JOURNAL', value('usageJournal'), true),
    usageJournalRescanMs: integerSetting('KEYWAY_USAGE_JOURNAL_RESCAN_MS', value('usageJournalRescanMs'), 30_000, 100, 3_600_000),
    drainTimeoutMs: integerSetting('KEYWAY_DRAIN_TIMEOUT_MS', value('drainTimeoutMs'), 10_000, 0, 3_600_000),
    workerTimeoutMs: workerTimeout(value('workerTimeoutMs')),
    workerStartTimeoutMs: workerStartTimeout(value('workerStartTimeoutMs')),
    instanceLeaseMs: integerSetting('KEYWAY_INSTANCE_LEASE_MS', value('instanceLeaseMs'), 15_000, 1_000, 600_000),
    minFreeDiskMb: integerSetting('KEYWAY_MIN_FREE_DISK_MB', value('minFreeDiskMb'), 100, 0, 1_000_000_000),
    modelsCacheTtlMs: integerSetting('KEYWAY_MODELS_CACHE_TTL_MS', value('modelsCacheTtlMs'), 600_000, 0, 86_400_000),
    configReloadMs: integerSetting('KEYWAY_CONFIG_RELOAD_MS', value('configReloadMs'), 30_000, 100, 86_400_000),
    configPollMs: integerSetting('KEYWAY_CONFIG_POLL_MS', value('configPollMs'), 1_000, 0, 3_600_000),
    upstreamConnections,
    maxInflightPerAccount: integerSetting(
      'KEYWAY_MAX_INFLIGHT_PER_ACCOUNT',
      value('maxInflightPerAccount'),
      Math.max(1, Math.floor(upstreamConnections / 4)),
      1,
      1_000_000,
    ),
    maxInflightPerUpstream: integerSetting(
      'KEYWAY_MAX_INFLIGHT_PER_UPSTREAM',
      value('maxInflightPerUpstream'),
      Math.max(1, Math.floor(upstreamConnections / 2)),
      1,
      1_000_000,
    ),
    upstreamQueueTimeoutMs: integerSetting('KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS', value('upstreamQueueTimeoutMs'), 10_000, 1, 3_600_000),
    upstreamClient: choiceSetting('KEYWAY_UPSTREAM_CLIENT', value('upstreamClient'), ['fetch', 'pool'], 'fetch'),
    threadScheduling: choiceSetting('KEYWAY_THREAD_SCHEDULING', value('threadScheduling'), ['batch', 'default'], 'batch'),
    upstreamAllow: upstreamList('upstreamAllow', value('upstreamAllow'), Boolean(environment.KEYWAY_UPSTREAM_ALLOW), environment.KEYWAY_CONFIG),
    upstreamDeny: upstreamList('upstreamDeny', value('upstreamDeny'), Boolean(environment.KEYWAY_UPSTREAM_DENY), environment.KEYWAY_CONFIG),
    trustedProxies: trustedProxyList(value('trustedProxies')),
    corsOrigins: corsOrigins(value('corsOrigins')),
    pricesFile: pricesFile === undefined ? undefined : resolve(pricesFile),
    startFresh,
    masterKeyRewrapBatch: integerSetting('KEYWAY_MASTER_KEY_REWRAP_BATCH', merged.KEYWAY_MASTER_KEY_REWRAP_BATCH, 25, 1, 10_000),
    masterKeyRewrapPauseMs: integerSetting('KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS', merged.KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS, 20, 0, 60_000),
    ...(configPath ? { configFile: { path: configPath, variableNames: Object.keys(file).filter((name) => VARIABLE_NAME.test(name)) } } : {}),
    env: merged,
  };
}
