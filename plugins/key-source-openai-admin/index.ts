// Key source `openai-admin`: mints OpenAI keys through the organisation admin API, for rotation
// schedules. A key is a project service account's: `POST /v1/organization/projects/{project_id}/
// service_accounts` answers `api_key.value` once; revoking deletes the service account
// (`DELETE …/service_accounts/{service_account_id}`). OpenAI never shows a key again, so this source
// mints and revokes but cannot fetch an existing key: a never-store reference needs a source that
// reads (Vault KV, file…). The admin key is the operator's; an account may mint only in the projects
// the operator assigned it. See docs/key-lifecycle.md, "Key sources".

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource, type KeySourceContext } from '../../core/spec/plugin.ts';
import { SettingError, urlSetting } from '../../core/spec/settings.ts';

export const DEFAULT_OPENAI_ADMIN_BASE_URL = 'https://api.openai.com/v1';
const PROJECT = /^proj_[A-Za-z0-9_-]{1,128}$/;
const SERVICE_ACCOUNT = /^[A-Za-z0-9_-]{1,128}$/;
const TIMEOUT_MS = 15_000;

export interface OpenAIAdminSettings {
  adminKey: string | undefined;
  baseUrl: string;
  /** Account id → the projects it may mint keys in; the operator's platform keys may use any project. */
  projects: Readonly<Record<string, readonly string[]>>;
}

export const keySourceOpenAIAdminConfigSchema = Type.Object(
  {
    baseUrl: Type.Optional(Type.String({ description: `OpenAI API base (KEYWAY_OPENAI_ADMIN_BASE_URL, default ${DEFAULT_OPENAI_ADMIN_BASE_URL})` })),
    projects: Type.Optional(
      Type.Record(Type.String(), Type.Array(Type.String()), {
        description: 'Account id → projects it may mint keys in (KEYWAY_OPENAI_ADMIN_PROJECTS as JSON)',
      }),
    ),
  },
  { additionalProperties: false },
);

function validate(reference: KeyReference, settings: OpenAIAdminSettings): string | undefined {
  if (settings.adminKey === undefined || settings.adminKey === '') return 'the operator configured no OpenAI admin key (KEYWAY_OPENAI_ADMIN_KEY)';
  if (typeof reference.locator !== 'string' || !PROJECT.test(reference.locator)) return 'the locator must be an OpenAI project id (proj_…)';
  const options = reference.options ?? {};
  const unknown = Object.keys(options).filter((name) => name !== 'name');
  if (unknown.length > 0) return `unknown option(s) ${unknown.join(', ')}; the openai-admin source takes name (the service account's name prefix)`;
  if (options.name !== undefined && (typeof options.name !== 'string' || !/^[\w .-]{1,64}$/.test(options.name)))
    return 'the name must be 1 to 64 letters, digits, spaces, dots or dashes';
  return undefined;
}

function allowed(project: string, context: KeySourceContext, settings: OpenAIAdminSettings): string | undefined {
  if (context.accountId === null) return undefined;
  return settings.projects[context.accountId]?.includes(project) === true
    ? undefined
    : `this account may not mint keys in ${project} (the operator assigns projects)`;
}

function failure(status: number, what: string): Error {
  if (status === 401) return new Error(`OpenAI refused the admin key (401) while trying to ${what}`);
  if (status === 403) return new Error(`the admin key may not ${what} (403 insufficient permissions)`);
  if (status === 404) return new Error(`OpenAI found nothing to ${what} (404)`);
  return new Error(`OpenAI answered ${status} while trying to ${what}`);
}

export function createOpenAIAdminKeySource(settings: OpenAIAdminSettings, fetchImpl: typeof fetch = fetch): KeySource {
  const base = settings.baseUrl.replace(/\/+$/, '');
  const call = async (method: 'POST' | 'DELETE', path: string, what: string, body?: unknown): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetchImpl(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${settings.adminKey}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      throw new Error(`OpenAI's admin API did not answer while trying to ${what}`);
    }
    if (!response.ok) throw failure(response.status, what);
    return response.json().catch(() => undefined);
  };
  const checked = (reference: KeyReference, context: KeySourceContext): string => {
    const problem = validate(reference, settings) ?? allowed(reference.locator, context, settings);
    if (problem !== undefined) throw new Error(problem);
    return reference.locator;
  };
  return {
    name: 'openai-admin',
    validate: (reference, context) => validate(reference, settings) ?? (context === undefined ? undefined : allowed(reference.locator, context, settings)),
    async fetch() {
      throw new Error(
        'openai-admin mints new keys for rotation but cannot read an existing one back (OpenAI shows a key once); reference the key in Vault KV, a file or a command instead',
      );
    },
    async mint(reference, context) {
      const project = checked(reference, context);
      const prefix = typeof reference.options?.name === 'string' ? reference.options.name : 'keyway';
      const name = `${prefix}-${context.keyId ?? context.provider}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}`;
      const answer = (await call('POST', `/organization/projects/${encodeURIComponent(project)}/service_accounts`, `create a service account in ${project}`, {
        name,
      })) as { id?: unknown; api_key?: { value?: unknown } | null } | undefined;
      const value = answer?.api_key?.value;
      if (typeof answer?.id !== 'string' || typeof value !== 'string' || value === '')
        throw new Error(`OpenAI created no API key with the service account in ${project}`);
      return { apiKey: value, version: answer.id };
    },
    async revoke(reference, version, context) {
      const project = checked(reference, context);
      if (!SERVICE_ACCOUNT.test(version)) throw new Error('the version to revoke must be a service account id');
      await call(
        'DELETE',
        `/organization/projects/${encodeURIComponent(project)}/service_accounts/${encodeURIComponent(version)}`,
        `delete service account ${version} in ${project}`,
      );
    },
  };
}

export function parseProjects(text: string | undefined): Record<string, string[]> {
  if (text === undefined || text.trim() === '') return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (
      parsed !== null &&
      typeof parsed === 'object' &&
      !Array.isArray(parsed) &&
      Object.values(parsed).every((list) => Array.isArray(list) && list.every((item) => typeof item === 'string'))
    )
      return parsed as Record<string, string[]>;
  } catch {
    // reported below
  }
  throw new SettingError('KEYWAY_OPENAI_ADMIN_PROJECTS must be JSON: {"<account id>": ["proj_…"]}');
}

export const keySourceOpenAIAdminPlugin = definePlugin({
  name: 'key-source-openai-admin',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'key-source',
  environment: [
    { name: 'KEYWAY_OPENAI_ADMIN_KEY', description: 'The OpenAI admin key that mints project keys' },
    { name: 'KEYWAY_OPENAI_ADMIN_BASE_URL', description: 'The OpenAI admin API address' },
    { name: 'KEYWAY_OPENAI_ADMIN_PROJECTS', description: 'Account id → projects it may mint keys in, as JSON' },
  ],
  description: 'Mints and revokes OpenAI project service-account keys through the organisation admin API (rotation)',
  configSchema: keySourceOpenAIAdminConfigSchema,
  setup({ config, env, fetch: fetchImpl }) {
    const settings: OpenAIAdminSettings = {
      adminKey: env.KEYWAY_OPENAI_ADMIN_KEY,
      // Checked now: a typo used to start, then fail every mint.
      baseUrl:
        (config.baseUrl !== undefined
          ? urlSetting('plugins["key-source-openai-admin"].baseUrl', config.baseUrl)
          : urlSetting('KEYWAY_OPENAI_ADMIN_BASE_URL', env.KEYWAY_OPENAI_ADMIN_BASE_URL)) ?? DEFAULT_OPENAI_ADMIN_BASE_URL,
      projects: config.projects ?? parseProjects(env.KEYWAY_OPENAI_ADMIN_PROJECTS),
    };
    return { keySource: createOpenAIAdminKeySource(settings, fetchImpl) };
  },
});
