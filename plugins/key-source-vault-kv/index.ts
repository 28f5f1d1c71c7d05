// Key source `vault-kv`: a provider key from HashiCorp Vault's KV secrets engine, version 2
// (`GET /v1/{mount}/data/{path}[?version=N]`, `X-Vault-Token`, optional `X-Vault-Namespace`; the key is
// `data.data[field]`). Address, token and namespace are the operator's; an account admin names a path,
// a field and a version, and only under its own prefix (`keyway/{account}/` by default) in the mounts
// the operator allowed: Keyway's token could otherwise read another account's keys. See
// docs/key-lifecycle.md, "Key sources".

import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource, type KeySourceContext } from '../../core/spec/plugin.ts';
import { readableFileSetting, SettingError, urlSetting } from '../../core/spec/settings.ts';

export const DEFAULT_ACCOUNT_PREFIX = 'keyway/{account}/';
const SEGMENT = /^[A-Za-z0-9._@+=-]{1,128}$/;
const FIELD = /^[A-Za-z0-9._-]{1,128}$/;
const TIMEOUT_MS = 10_000;

export interface VaultKvSettings {
  address: string | undefined;
  token: string | undefined;
  tokenFile: string | undefined;
  namespace: string | undefined;
  mounts: string[];
  /** `{account}` is replaced by the account id; the operator's platform keys may use any path. */
  accountPrefix: string;
}

export const keySourceVaultKvConfigSchema = Type.Object(
  {
    address: Type.Optional(Type.String({ description: 'Vault address, e.g. https://vault.internal:8200 (KEYWAY_VAULT_ADDR)' })),
    tokenFile: Type.Optional(Type.String({ description: 'File holding the token, re-read on each fetch (KEYWAY_VAULT_TOKEN_FILE); or KEYWAY_VAULT_TOKEN' })),
    namespace: Type.Optional(Type.String({ description: 'Vault Enterprise namespace (KEYWAY_VAULT_NAMESPACE)' })),
    mounts: Type.Optional(
      Type.Array(Type.String(), { description: 'KV v2 mounts references may name; the first is the default (KEYWAY_VAULT_KV_MOUNTS, default secret)' }),
    ),
    accountPrefix: Type.Optional(
      Type.String({ description: `Path prefix an account may read, {account} = its id (KEYWAY_VAULT_KV_ACCOUNT_PREFIX, default ${DEFAULT_ACCOUNT_PREFIX})` }),
    ),
  },
  { additionalProperties: false },
);

interface Parsed {
  mount: string;
  path: string;
  field: string;
  version: number | undefined;
}

function parse(reference: KeyReference, settings: VaultKvSettings): Parsed | string {
  if (settings.address === undefined) return 'the operator configured no Vault address (KEYWAY_VAULT_ADDR)';
  const options = reference.options ?? {};
  const unknown = Object.keys(options).filter((name) => name !== 'mount' && name !== 'field' && name !== 'version');
  if (unknown.length > 0) return `unknown option(s) ${unknown.join(', ')}; the vault-kv source takes mount, field and version`;
  const mount = options.mount ?? settings.mounts[0];
  if (typeof mount !== 'string' || !settings.mounts.includes(mount)) return `the mount must be one the operator allowed: ${settings.mounts.join(', ')}`;
  const path = reference.locator;
  if (typeof path !== 'string' || path.length > 512 || !path.split('/').every((segment) => SEGMENT.test(segment) && segment !== '.' && segment !== '..'))
    return 'the locator must be a secret path such as keyway/acme/openai (letters, digits, . _ - @ + = between slashes)';
  const field = options.field ?? 'api_key';
  if (typeof field !== 'string' || !FIELD.test(field)) return 'the field must be a key name of the secret (default api_key)';
  const version = options.version;
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 1)) return 'the version must be a positive integer';
  return { mount, path, field, version };
}

function allowedFor(path: string, context: KeySourceContext, settings: VaultKvSettings): string | undefined {
  if (context.accountId === null) return undefined;
  const prefix = settings.accountPrefix.replaceAll('{account}', context.accountId);
  return path.startsWith(prefix) ? undefined : `this account may read only paths under ${prefix}`;
}

async function tokenOf(settings: VaultKvSettings): Promise<string> {
  if (settings.tokenFile !== undefined) {
    const text = await readFile(settings.tokenFile, 'utf8').catch(() => undefined);
    if (text === undefined || text.trim() === '') throw new Error('the Vault token file is missing or empty');
    return text.trim();
  }
  if (settings.token === undefined || settings.token === '')
    throw new Error('the operator configured no Vault token (KEYWAY_VAULT_TOKEN or KEYWAY_VAULT_TOKEN_FILE)');
  return settings.token;
}

interface KvReadAnswer {
  data?: { data?: Record<string, unknown> | null; metadata?: { version?: number; deletion_time?: string; destroyed?: boolean } | null };
}

export function createVaultKvKeySource(settings: VaultKvSettings, fetchImpl: typeof fetch = fetch): KeySource {
  return {
    name: 'vault-kv',
    validate(reference, context) {
      const parsed = parse(reference, settings);
      if (typeof parsed === 'string') return parsed;
      return context === undefined ? undefined : allowedFor(parsed.path, context, settings);
    },
    async fetch(reference, context) {
      const parsed = parse(reference, settings);
      if (typeof parsed === 'string') throw new Error(parsed);
      const refused = allowedFor(parsed.path, context, settings);
      if (refused !== undefined) throw new Error(refused);
      const where = `${parsed.mount}/${parsed.path}${parsed.version === undefined ? '' : ` version ${parsed.version}`}`;
      const url = new URL(
        `${(settings.address as string).replace(/\/+$/, '')}/v1/${encodeURIComponent(parsed.mount)}/data/${parsed.path.split('/').map(encodeURIComponent).join('/')}`,
      );
      if (parsed.version !== undefined) url.searchParams.set('version', String(parsed.version));
      const headers: Record<string, string> = { 'X-Vault-Token': await tokenOf(settings), Accept: 'application/json' };
      if (settings.namespace !== undefined && settings.namespace !== '') headers['X-Vault-Namespace'] = settings.namespace;
      let response: Response;
      try {
        response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch {
        throw new Error(`Vault at ${url.host} did not answer`);
      }
      const body = (await response.json().catch(() => undefined)) as KvReadAnswer | undefined;
      if (response.status === 403) throw new Error(`Vault refused the token for ${where} (403 permission denied)`);
      if (response.status === 404) {
        const metadata = body?.data?.metadata;
        if (metadata?.destroyed === true) throw new Error(`${where} was destroyed in Vault`);
        if (metadata?.deletion_time) throw new Error(`${where} was deleted in Vault`);
        throw new Error(`no secret at ${where} in Vault (404)`);
      }
      if (!response.ok) throw new Error(`Vault answered ${response.status} for ${where}`);
      const value = body?.data?.data?.[parsed.field];
      if (typeof value !== 'string' || value.trim() === '') throw new Error(`the secret at ${where} has no string field '${parsed.field}'`);
      const version = body?.data?.metadata?.version;
      return { apiKey: value.trim(), ...(typeof version === 'number' ? { version: String(version) } : {}) };
    },
  };
}

/** A KV mount as it goes in the request path: one segment, since the URL encodes it whole. */
const MOUNT = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The mounts references may name, checked at start: an empty entry, a slash (`secret/` as the Vault CLI
 * prints it) or an empty list used to start and then refuse every reference, or ask Vault for a path
 * that is no mount.
 */
function mountsSetting(source: string, mounts: readonly string[]): string[] {
  if (mounts.length === 0) throw new SettingError(`${source} names no mount; write mount names comma-separated, e.g. secret,kv-team.`);
  for (const mount of mounts) {
    if (mount === '') throw new SettingError(`${source} has an empty entry; write mount names comma-separated, e.g. secret,kv-team.`);
    if (!MOUNT.test(mount) || mount === '.' || mount === '..')
      throw new SettingError(
        `${source} has the entry ${JSON.stringify(mount.slice(0, 140))}, which is not a mount name (letters, digits, . _ -, no slashes: secret, not secret/).`,
      );
  }
  return [...mounts];
}

export function vaultKvSettings(config: Partial<VaultKvSettings>, env: Readonly<Record<string, string | undefined>>): VaultKvSettings {
  const variable = env.KEYWAY_VAULT_KV_MOUNTS;
  const mounts =
    config.mounts !== undefined
      ? mountsSetting(
          'plugins["key-source-vault-kv"].mounts',
          config.mounts.map((mount) => mount.trim()),
        )
      : variable === undefined || variable.trim() === ''
        ? ['secret']
        : mountsSetting(
            'KEYWAY_VAULT_KV_MOUNTS',
            variable.split(',').map((mount) => mount.trim()),
          );
  const accountPrefix = config.accountPrefix ?? env.KEYWAY_VAULT_KV_ACCOUNT_PREFIX ?? DEFAULT_ACCOUNT_PREFIX;
  const source = config.accountPrefix !== undefined ? 'plugins["key-source-vault-kv"].accountPrefix' : 'KEYWAY_VAULT_KV_ACCOUNT_PREFIX';
  if (!accountPrefix.includes('{account}'))
    throw new SettingError(`${source}: the account prefix must contain {account}, or every account could read every other account’s keys`);
  return {
    address: config.address ?? urlSetting('KEYWAY_VAULT_ADDR', env.KEYWAY_VAULT_ADDR),
    token: env.KEYWAY_VAULT_TOKEN,
    // Checked now, re-read at each fetch (Vault Agent renews it): a missing file used to fail the first key.
    tokenFile:
      config.tokenFile !== undefined
        ? readableFileSetting('plugins["key-source-vault-kv"].tokenFile', config.tokenFile)
        : readableFileSetting('KEYWAY_VAULT_TOKEN_FILE', env.KEYWAY_VAULT_TOKEN_FILE),
    namespace: config.namespace ?? env.KEYWAY_VAULT_NAMESPACE,
    mounts,
    accountPrefix,
  };
}

export const keySourceVaultKvPlugin = definePlugin({
  name: 'key-source-vault-kv',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'key-source',
  environment: [
    { name: 'KEYWAY_VAULT_ADDR', description: 'The Vault server address' },
    { name: 'KEYWAY_VAULT_TOKEN', description: 'The Vault token' },
    { name: 'KEYWAY_VAULT_TOKEN_FILE', description: 'A file holding the Vault token' },
    { name: 'KEYWAY_VAULT_NAMESPACE', description: 'The Vault Enterprise namespace' },
    { name: 'KEYWAY_VAULT_KV_MOUNTS', description: 'The KV v2 mounts references may name' },
    { name: 'KEYWAY_VAULT_KV_ACCOUNT_PREFIX', description: 'The path prefix an account may read ({account}: its id)' },
  ],
  description: 'Provider keys from HashiCorp Vault KV v2, per-account path prefixes',
  configSchema: keySourceVaultKvConfigSchema,
  setup({ config, env, fetch: fetchImpl }) {
    return { keySource: createVaultKvKeySource(vaultKvSettings(config, env), fetchImpl) };
  },
});
