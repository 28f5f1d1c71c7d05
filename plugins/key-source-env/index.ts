// Key source `env`: a provider key from an environment variable of the Keyway process. An account
// admin names the variable, so only names under the operator's prefix are readable (default
// `KEYWAY_KEY_`), and Keyway's own settings (the master key, the admin key, database URLs…) never
// are, whatever the prefix.
//
// Each account reads only its own names (scope.ts): an account created with POST /v1/accounts those
// that go on with its id, `KEYWAY_KEY_<account id>_…`, the `default` account every other name under
// the prefix, the operator's platform keys any. Before QA15 F1 any account admin could name another
// tenant's variable and be served on its key. See docs/key-lifecycle.md, "Key sources".

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource } from '../../core/spec/plugin.ts';
import { SettingError } from '../../core/spec/settings.ts';
import { envScopeOf } from './scope.ts';

export const DEFAULT_ENV_PREFIX = 'KEYWAY_KEY_';
/** Lower-case letters too: an account's names carry its id as it is (`KEYWAY_KEY_acc_…_OPENAI`). */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/**
 * Keyway's own secrets and settings: never a provider key, never readable through this source. Any
 * case: where the environment ignores case (Windows), `KEYWAY_key_source_…` would read the setting.
 */
const RESERVED =
  /^KEYWAY_(MASTER_KEY|MASTER_KEYS|PREVIOUS_MASTER_KEYS|ADMIN_KEY|DATABASE_URL|REDIS_URL|SMTP_URL|VAULT_TOKEN|OPENAI_ADMIN_KEY|CONFIG|KEY_SOURCE)(_|$)/i;

export const keySourceEnvConfigSchema = Type.Object(
  {
    prefix: Type.Optional(
      Type.String({ description: `Readable variable names start with this (default ${DEFAULT_ENV_PREFIX}; KEYWAY_KEY_SOURCE_ENV_PREFIX)` }),
    ),
  },
  { additionalProperties: false },
);

/** What sets the prefix, as the operator wrote it: named in a refusal. */
export const ENV_PREFIX_VARIABLE = 'KEYWAY_KEY_SOURCE_ENV_PREFIX';

/**
 * A prefix of at least four characters ending in `_`: an empty or one-letter prefix would open the whole
 * environment. `source` is the variable or setting that gave it, which the refusal names.
 */
export function checkPrefix(prefix: string, source = ENV_PREFIX_VARIABLE): string {
  if (!/^[A-Z][A-Z0-9_]{2,62}_$/.test(prefix))
    throw new SettingError(
      `${source}: the prefix '${prefix}' must be upper-case, at least 4 characters long, and end with '_' (for example ${DEFAULT_ENV_PREFIX})`,
    );
  if (RESERVED.test(prefix) || prefix === 'KEYWAY_') throw new SettingError(`${source}: the prefix '${prefix}' would expose Keyway's own settings`);
  return prefix;
}

export function createEnvKeySource(env: Readonly<Record<string, string | undefined>>, prefix: string, source = ENV_PREFIX_VARIABLE): KeySource {
  checkPrefix(prefix, source);
  const validate = (reference: KeyReference): string | undefined => {
    const name = reference.locator;
    if (typeof name !== 'string' || !NAME.test(name)) return 'the locator must be an environment variable name (letters, digits, _)';
    if (RESERVED.test(name)) return `${name} is one of Keyway's own settings and is never readable as a provider key`;
    if (!name.startsWith(prefix) || name.length === prefix.length) return `only variables named ${prefix}… are readable (the operator's allowlist)`;
    if (Object.keys(reference.options ?? {}).length > 0) return 'the env source takes no options';
    return undefined;
  };
  return {
    name: 'env',
    validate(reference, context) {
      const problem = validate(reference);
      if (problem !== undefined || context === undefined) return problem;
      const scope = envScopeOf(prefix, context.accountId);
      return scope.includes(reference.locator) ? undefined : scope.notSet(reference.locator);
    },
    async fetch(reference, context) {
      const problem = validate(reference);
      if (problem !== undefined) throw new Error(problem);
      const scope = envScopeOf(prefix, context.accountId);
      // Another account's name is answered as an unset one, before it is read: the answer says
      // nothing of which variables exist.
      if (!scope.includes(reference.locator)) throw new Error(scope.notSet(reference.locator));
      const value = env[reference.locator]?.trim();
      if (value === undefined || value === '') throw new Error(scope.notSet(reference.locator));
      return { apiKey: value };
    },
  };
}

export const keySourceEnvPlugin = definePlugin({
  name: 'key-source-env',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'key-source',
  environment: [
    { name: 'KEYWAY_KEY_SOURCE_ENV_PREFIX', description: 'The prefix of the variables provider keys may be read from' },
    { name: 'KEYWAY_KEY_*', description: 'Provider keys, named by key references (under the default prefix)' },
  ],
  description: "Provider keys from the process environment, under the operator's prefix, one name space per account",
  configSchema: keySourceEnvConfigSchema,
  setup({ config, env }) {
    const prefix = config.prefix ?? env.KEYWAY_KEY_SOURCE_ENV_PREFIX ?? DEFAULT_ENV_PREFIX;
    const source = config.prefix !== undefined ? 'plugins["key-source-env"].prefix' : ENV_PREFIX_VARIABLE;
    return { keySource: createEnvKeySource(env, prefix, source) };
  },
});
