// Key source `file`: a provider key from a file under the one directory the operator named
// (`KEYWAY_KEY_SOURCE_FILE_DIR`, e.g. where Docker or Kubernetes mounts secrets). The locator is a
// path relative to that directory; the real path (symbolic links followed) must stay inside it, the
// file must be a regular file of at most 16 KiB that others cannot read and only its owner can
// write. The content is trimmed.
//
// Each account reads only its own part of the directory (scope.ts): an account created with
// POST /v1/accounts its folder `<account id>/`, the `default` account everything outside account
// folders, the operator's platform keys anything. Before QA15 F1 any account admin could name another
// tenant's file and be served on its key. See docs/key-lifecycle.md, "Key sources".

import { open, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION, type KeyReference, type KeySource } from '../../core/spec/plugin.ts';
import { readableFolderSetting } from '../../core/spec/settings.ts';
import { inScope, lexicallyInScope, scopeOf } from './scope.ts';

const MAX_BYTES = 16 * 1024;

export const keySourceFileConfigSchema = Type.Object(
  {
    directory: Type.Optional(
      Type.String({ description: 'The only directory keys are read from (KEYWAY_KEY_SOURCE_FILE_DIR); unset: the source refuses every reference' }),
    ),
  },
  { additionalProperties: false },
);

function validate(reference: KeyReference, directory: string | undefined): string | undefined {
  if (directory === undefined) return 'the operator configured no key directory (KEYWAY_KEY_SOURCE_FILE_DIR)';
  const path = reference.locator;
  if (typeof path !== 'string' || path === '' || path.length > 512) return 'the locator must be a file path relative to the key directory';
  if (isAbsolute(path) || path.includes('\0') || path.split(/[\\/]/).some((part) => part === '..' || part === ''))
    return 'the locator must be a relative path inside the key directory, without ".." or empty parts';
  if (Object.keys(reference.options ?? {}).length > 0) return 'the file source takes no options';
  return undefined;
}

/** What is wrong with the file's mode for a secret, or undefined. */
function modeProblem(mode: number): string | undefined {
  if ((mode & 0o007) !== 0) return 'is accessible to other users (chmod o-rwx)';
  if ((mode & 0o020) !== 0) return 'is writable by its group (chmod g-w)';
  return undefined;
}

export function createFileKeySource(directory: string | undefined): KeySource {
  return {
    name: 'file',
    validate(reference, context) {
      const problem = validate(reference, directory);
      if (problem !== undefined || context === undefined) return problem;
      const scope = scopeOf(context.accountId);
      return lexicallyInScope(reference.locator, scope) ? undefined : scope.notFound(reference.locator);
    },
    async fetch(reference, context) {
      const problem = validate(reference, directory);
      if (problem !== undefined || directory === undefined) throw new Error(problem);
      const scope = scopeOf(context.accountId);
      // Outside the caller's part of the directory, before anything is read: the answer is the one a
      // missing file gets, so it says nothing of what exists there.
      if (!lexicallyInScope(reference.locator, scope)) throw new Error(scope.notFound(reference.locator));
      const root = await realpath(directory).catch(() => undefined);
      if (root === undefined) throw new Error('the key directory does not exist');
      const real = await realpath(join(root, reference.locator)).catch(() => undefined);
      if (real === undefined) throw new Error(scope.notFound(reference.locator));
      const inside = relative(root, real);
      if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside))
        throw new Error(`${reference.locator} leads outside the key directory`);
      // Symbolic links followed: a link in one account's part may not lead into another's.
      if (!(await inScope(root, inside, scope))) throw new Error(scope.notFound(reference.locator));
      const handle = await open(real, 'r').catch(() => undefined);
      if (handle === undefined) throw new Error(`${reference.locator} is not readable by Keyway`);
      try {
        const stats = await handle.stat();
        if (!stats.isFile()) throw new Error(`${reference.locator} is not a regular file`);
        const wrongMode = modeProblem(stats.mode);
        if (wrongMode !== undefined) throw new Error(`${reference.locator} ${wrongMode}`);
        if (stats.size > MAX_BYTES) throw new Error(`${reference.locator} is larger than ${MAX_BYTES} bytes`);
        const text = (await handle.readFile('utf8')).trim();
        if (text === '') throw new Error(`${reference.locator} is empty`);
        if (/\s/.test(text)) throw new Error(`${reference.locator} holds more than one line or word; it must hold the key alone`);
        return { apiKey: text };
      } finally {
        await handle.close();
      }
    },
  };
}

export const keySourceFilePlugin = definePlugin({
  name: 'key-source-file',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'key-source',
  environment: [{ name: 'KEYWAY_KEY_SOURCE_FILE_DIR', description: 'The directory key files may be read from' }],
  description: "Provider keys from files under the operator's key directory, one folder per account, permissions checked",
  configSchema: keySourceFileConfigSchema,
  setup({ config, env }) {
    // Checked now: a folder that is missing or unreadable used to start, then fail every key that names it.
    const directory =
      config.directory !== undefined
        ? readableFolderSetting('plugins["key-source-file"].directory', config.directory)
        : readableFolderSetting('KEYWAY_KEY_SOURCE_FILE_DIR', env.KEYWAY_KEY_SOURCE_FILE_DIR);
    return { keySource: createFileKeySource(directory) };
  },
});
