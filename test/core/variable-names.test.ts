// The `KEYWAY_…` variables Keyway knows: the core's and those every loaded plugin declares
// (PluginDefinition.environment). A name in the KEYWAY_CONFIG file nobody declares stops the start with
// the nearest known name, unless a third-party plugin declares nothing (then a warning); one in the
// process environment is only reported, once. And every built-in plugin declares what it reads.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, CORE_VARIABLES } from '../../core/config.ts';
import { declaredVariableNames, PluginLoadError, validateDefinition, type PluginSource } from '../../core/registry.ts';
import { definePlugin, PLUGIN_API_VERSION, type PluginDefinition } from '../../core/spec/plugin.ts';
import { builtinPluginDefinitions } from '../../plugins/builtin.ts';
import { startTestGateway } from '../helpers/gateway.ts';

const directory = mkdtempSync(join(tmpdir(), 'keyway-variable-names-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let written = 0;

function configFile(content: unknown): string {
  const file = join(directory, `keyway-${++written}.json`);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

function extension(name: string, declarations: Partial<Pick<PluginDefinition, 'environment' | 'env'>>): PluginSource {
  const definition = definePlugin({ name, version: '1.0.0', apiVersion: PLUGIN_API_VERSION, kind: 'extension', ...declarations });
  return { definition: definition as PluginDefinition, source: join(directory, `${name}.ts`) };
}

function warningsAbout(output: readonly string[], text: string): Array<Record<string, unknown>> {
  return output.filter((line) => line.includes(text)).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('KEYWAY_ names in the KEYWAY_CONFIG file', () => {
  test('a name nobody declares stops the start, with the nearest declared name', async () => {
    const file = configFile({ KEYWAY_PORTT: 9000 });
    const start = startTestGateway({ env: { KEYWAY_CONFIG: file } });
    await expect(start).rejects.toThrow(ConfigError);
    await expect(startTestGateway({ env: { KEYWAY_CONFIG: file } })).rejects.toThrow(
      `KEYWAY_CONFIG file ${file}: unknown setting 'KEYWAY_PORTT'. Did you mean 'KEYWAY_PORT'?`,
    );
  });

  test('a plugin variable misspelt gets the plugin variable as suggestion', async () => {
    const file = configFile({ KEYWAY_REDIS_PREFX: 'x:' });
    await expect(startTestGateway({ env: { KEYWAY_CONFIG: file } })).rejects.toThrow(
      "unknown setting 'KEYWAY_REDIS_PREFX'. Did you mean 'KEYWAY_REDIS_PREFIX'?",
    );
  });

  test('a name a built-in or a loaded plugin declares is taken, by name or by a declared prefix', async () => {
    const file = configFile({ KEYWAY_REDIS_PREFIX: 'x:', KEYWAY_WIDGET_URL: 'http://widget', KEYWAY_KEY_OPENAI: 'sk-test', KEYWAY_WORKERS: 1 });
    await expect(startTestGateway({ env: { KEYWAY_CONFIG: file } })).rejects.toThrow("unknown setting 'KEYWAY_WIDGET_URL'");
    const declaring = extension('widget', { environment: [{ name: 'KEYWAY_WIDGET_URL', description: 'Where the widget is' }] });
    const gateway = await startTestGateway({ env: { KEYWAY_CONFIG: file }, extraPlugins: [declaring] });
    try {
      expect(gateway.runtime.config.env.KEYWAY_WIDGET_URL).toBe('http://widget');
      expect(warningsAbout(gateway.output, 'neither Keyway nor a plugin declares')).toHaveLength(0);
    } finally {
      await gateway.stop();
    }
  });

  test('the short `env` field declares the same, names alone', async () => {
    const file = configFile({ KEYWAY_WIDGET_URL: 'http://widget' });
    const gateway = await startTestGateway({ env: { KEYWAY_CONFIG: file }, extraPlugins: [extension('widget', { env: ['KEYWAY_WIDGET_URL'] })] });
    await gateway.stop();
  });

  test('a third-party plugin that declares nothing turns the refusal into one warning', async () => {
    const file = configFile({ KEYWAY_WIDGET_URLL: 'http://widget' });
    const gateway = await startTestGateway({ env: { KEYWAY_CONFIG: file }, extraPlugins: [extension('widget', {}), extension('gadget', { env: [] })] });
    try {
      const warnings = warningsAbout(gateway.output, 'neither Keyway nor a plugin declares');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', setting: 'KEYWAY_WIDGET_URLL', undeclaring: ['widget'] });
    } finally {
      await gateway.stop();
    }
  });

  test('a third-party plugin that declares an empty list keeps the refusal', async () => {
    const file = configFile({ KEYWAY_WIDGET_URLL: 'http://widget' });
    await expect(startTestGateway({ env: { KEYWAY_CONFIG: file }, extraPlugins: [extension('gadget', { environment: [] })] })).rejects.toThrow(
      "unknown setting 'KEYWAY_WIDGET_URLL'",
    );
  });
});

describe('KEYWAY_ names in the process environment', () => {
  test('one nobody declares is said once, with the nearest name; the gateway starts', async () => {
    const gateway = await startTestGateway({ env: { KEYWAY_PORTT: '9000', KEYWAY_REDIS_PREFIX: 'x:' } });
    try {
      const warnings = warningsAbout(gateway.output, 'is read by neither Keyway nor a loaded plugin');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', variable: 'KEYWAY_PORTT', nearest: 'KEYWAY_PORT' });
      expect(warnings[0]?.msg).toContain("Did you mean 'KEYWAY_PORT'?");
    } finally {
      await gateway.stop();
    }
  });

  test('a worker after the first does not repeat it', async () => {
    const gateway = await startTestGateway({ env: { KEYWAY_PORTT: '9000', KEYWAY_WORKER_INDEX: '2' } });
    try {
      expect(warningsAbout(gateway.output, 'is read by neither Keyway nor a loaded plugin')).toHaveLength(0);
    } finally {
      await gateway.stop();
    }
  });
});

describe('the environment field of a plugin definition', () => {
  test('an invalid entry, or both fields, stop the load', () => {
    expect(() => validateDefinition(extension('widget', { environment: ['keyway_lower'] }))).toThrow(PluginLoadError);
    expect(() => validateDefinition(extension('widget', { environment: 'KEYWAY_X' as never }))).toThrow('environment must be an array');
    expect(() => validateDefinition(extension('widget', { environment: [], env: [] }))).toThrow('declares both environment and env');
    expect(() => validateDefinition(extension('widget', { environment: ['KEYWAY_X', { name: 'KEYWAY_Y_*' }] }))).not.toThrow();
  });
});

const ROOT = join(import.meta.dir, '..', '..');
const PLUGIN_FOLDERS = ['plugins', 'providers', 'policies'].flatMap((top) =>
  readdirSync(join(ROOT, top))
    .filter((name) => statSync(join(ROOT, top, name)).isDirectory())
    .map((name) => join(top, name)),
);
const NAME_LITERAL = /KEYWAY_[A-Z0-9_]+/g;
/** Names a plugin mentions without reading them, with the reason. */
const MENTIONED_NOT_READ: Record<string, readonly string[]> = {
  // Set for the command it runs, which reads them.
  'plugins/key-source-command': ['KEYWAY_KEY_ACCOUNT', 'KEYWAY_KEY_ID', 'KEYWAY_KEY_PROVIDER'],
  // Named in an error message: alert-email reads it.
  'plugins/alerts': ['KEYWAY_SMTP_URL'],
  // Named in a comment: an account's key variables in upper case, read under the declared prefix.
  'plugins/key-source-env': ['KEYWAY_KEY_ACC_'],
};

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((path) => /\.tsx?$/.test(path))
    .map((path) => join(folder, path));
}

/** The `KEYWAY_…` names a file mentions, less its own constants named so (`const KEYWAY_FIELDS`). */
function mentionedNames(path: string): string[] {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const constants = new Set([...text.matchAll(/\b(?:const|let)\s+(KEYWAY_[A-Z0-9_]+)/g)].map((match) => match[1]));
  return [...new Set(text.match(NAME_LITERAL) ?? [])].filter((name) => !constants.has(name));
}

function isPluginDefinition(value: unknown): value is PluginDefinition {
  return typeof value === 'object' && value !== null && 'apiVersion' in value && 'kind' in value && 'name' in value;
}

/** The plugins a folder defines: the exports of its index.ts, or of each of its files when it has none (strategies). */
async function definitionsIn(folder: string): Promise<PluginDefinition[]> {
  const files = readdirSync(join(ROOT, folder));
  const modules = files.includes('index.ts') ? ['index.ts'] : files.filter((name) => name.endsWith('.ts'));
  const definitions: PluginDefinition[] = [];
  for (const module of modules) {
    const exported = Object.values((await import(join(ROOT, folder, module))) as Record<string, unknown>);
    definitions.push(...exported.flatMap((value) => (Array.isArray(value) ? value : [value])).filter(isPluginDefinition));
  }
  return definitions;
}

function covers(declared: readonly string[], name: string): boolean {
  if (name.endsWith('_')) return declared.some((entry) => entry.startsWith(name));
  return declared.some((entry) => entry === name || (entry.endsWith('*') && name.startsWith(entry.slice(0, -1))));
}

describe('every built-in plugin declares the variables it reads', () => {
  test("each KEYWAY_ name in a plugin folder's source is declared by its plugins or by the core", async () => {
    const found = new Set<PluginDefinition>();
    const undeclared: string[] = [];
    for (const folder of PLUGIN_FOLDERS) {
      const definitions = await definitionsIn(folder);
      for (const definition of definitions) found.add(definition);
      const declared = [...CORE_VARIABLES, ...definitions.flatMap((definition) => declaredVariableNames(definition) ?? [])];
      const mentioned = new Set(sourceFiles(folder).flatMap(mentionedNames));
      for (const name of mentioned) {
        if (!covers(declared, name) && !(MENTIONED_NOT_READ[folder] ?? []).includes(name)) undeclared.push(`${folder}: ${name}`);
      }
    }
    expect(undeclared).toEqual([]);
    // Every built-in was found in a folder, so none escapes the check.
    expect(builtinPluginDefinitions.filter((definition) => !found.has(definition)).map((definition) => definition.name)).toEqual([]);
  });

  test("each KEYWAY_ name in the core's source is declared by the core or a built-in plugin", () => {
    const declared = [...CORE_VARIABLES, ...builtinPluginDefinitions.flatMap((definition) => declaredVariableNames(definition) ?? [])];
    const undeclared = sourceFiles('core')
      .flatMap((path) => mentionedNames(path).map((name) => ({ path, name })))
      .filter(({ name }) => !covers(declared, name))
      .map(({ path, name }) => `${path}: ${name}`);
    expect(undeclared).toEqual([]);
  });

  test('each OpenAI-compatible provider declares its own KEYWAY_<NAME>_BASE_URL', () => {
    for (const definition of builtinPluginDefinitions.filter((entry) => entry.kind === 'provider')) {
      const provider = definition.name.replace(/^provider-/, '').toUpperCase();
      expect(declaredVariableNames(definition) ?? []).toContain(`KEYWAY_${provider}_BASE_URL`);
    }
  });
});
