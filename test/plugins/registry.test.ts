import { afterAll, describe, expect, test } from 'bun:test';
import { Type } from '@sinclair/typebox';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHooks } from '../../core/lifecycle/hooks.ts';
import { createLogger } from '../../core/logger.ts';
import { integerSetting, SettingError } from '../../core/spec/settings.ts';
import type { PluginDefinition, ProviderAdapter, RequestContext } from '../../core/spec/plugin.ts';
import {
  importPluginModules,
  loadPlugins,
  orderByDependencies,
  PluginLoadError,
  validateDefinition,
  type PluginEnvironment,
  type PluginSource,
} from '../../core/registry.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { standaloneServices } from '../../core/services.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';

const silentLogger = createLogger('silent', { write: () => undefined } as never);

function environment(config: Record<string, unknown> = {}): PluginEnvironment {
  return { logger: silentLogger, fetch, env: {}, dataDirectory: tmpdir(), config, services: standaloneServices({ logger: silentLogger }) };
}

function policy(name: string, extra: Partial<PluginDefinition> = {}): PluginDefinition {
  return { name, version: '1.0.0', apiVersion: 1, kind: 'policy', ...extra };
}

function source(definition: unknown, from = 'test'): PluginSource {
  return { definition: definition as PluginDefinition, source: from };
}

/** The message of the PluginLoadError `run` throws or rejects with; fails the test otherwise. */
async function loadError(run: () => unknown): Promise<string> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(PluginLoadError);
    return (error as Error).message;
  }
  throw new Error('expected a PluginLoadError, but nothing was thrown');
}

function fakeProvider(name: string): ProviderAdapter {
  const unused = (): never => {
    throw new Error('not called in these tests');
  };
  return { name, defaultBaseUrl: 'http://127.0.0.1:1', modelPatterns: [], chat: unused, chatStream: unused, listModels: unused };
}

function requestContext(): RequestContext {
  const principal = {
    keyId: 'key_test',
    role: 'admin' as const,
    accountId: 'default',
    teamId: undefined,
    byokAccess: true,
    environment: undefined,
    settings: {},
  };
  return createRequestContext('req_test', new Request('http://localhost/'), principal, 'chat', () => undefined, { model: 'gpt-4o-mini', messages: [] });
}

describe('declaration validation', () => {
  test('rejects a name that is not lowercase letters, digits and -_./@', async () => {
    const message = await loadError(() => validateDefinition(source(policy('Bad Name!'))));
    expect(message).toContain('invalid name "Bad Name!"');
  });

  test('rejects a module that exports something other than a plugin object', async () => {
    expect(await loadError(() => validateDefinition(source(undefined, '/plugins/empty.ts')))).toBe('/plugins/empty.ts: does not export a plugin object');
  });

  test('requires a version string', async () => {
    const { version: _dropped, ...definition } = policy('no-version');
    const message = await loadError(() => validateDefinition(source(definition)));
    expect(message).toContain("plugin 'no-version' (test)");
    expect(message).toContain('needs a version string');
  });

  test('refuses an API version this core does not support, saying which one it does', async () => {
    const message = await loadError(() => validateDefinition(source(policy('future', { apiVersion: 2 }))));
    expect(message).toContain('targets plugin API version 2, but this Keyway supports version 1');
  });

  test('refuses an unknown kind and lists the known ones', async () => {
    const message = await loadError(() => validateDefinition(source({ ...policy('odd'), kind: 'middleware' })));
    expect(message).toContain('unknown kind "middleware"');
    expect(message).toContain('provider, strategy, policy, alert-channel, crypto-backend');
  });

  test('refuses a hook for a stage that does not exist', async () => {
    const message = await loadError(() => validateDefinition(source(policy('early', { hooks: { beforeAuth: () => undefined } as never }))));
    expect(message).toContain("has a hook for unknown stage 'beforeAuth'");
    expect(message).toContain('auth, keyResolve, route, call, account');
  });

  test('refuses a hook that is not a function', async () => {
    const message = await loadError(() => validateDefinition(source(policy('stringly', { hooks: { route: 'deny' } as never }))));
    expect(message).toContain("hook 'route' must be a function");
  });

  test('checks the hooks a setup returns as well as the declared ones', async () => {
    const definition = policy('late-hooks', { setup: () => ({ hooks: { respond: () => undefined } as never }) });
    const message = await loadError(() => loadPlugins([source(definition)], environment()));
    expect(message).toContain("unknown stage 'respond'");
  });
});

describe('dependencies', () => {
  test('refuses a plugin declared twice', async () => {
    const message = await loadError(() => orderByDependencies([source(policy('twin'), '/a.ts'), source(policy('twin'), '/b.ts')]));
    expect(message).toContain("plugin 'twin' (/b.ts): is declared twice (also by /a.ts)");
  });

  test('refuses a dependency that is not loaded', async () => {
    const message = await loadError(() => orderByDependencies([source(policy('needy', { dependencies: ['absent'] }))]));
    expect(message).toContain("depends on 'absent', which is not loaded");
  });

  test('refuses a dependency cycle and shows the cycle', async () => {
    const sources = [
      source(policy('alpha', { dependencies: ['beta'] })),
      source(policy('beta', { dependencies: ['gamma'] })),
      source(policy('gamma', { dependencies: ['alpha'] })),
    ];
    const message = await loadError(() => orderByDependencies(sources));
    expect(message).toContain('dependency cycle: alpha -> beta -> gamma -> alpha');
  });

  test('runs hooks dependencies-first even when declared in reverse', async () => {
    const ran: string[] = [];
    const record = (name: string) => policy(name, { hooks: { route: () => void ran.push(name) } });
    // Declared: the dependants first, the base last.
    const sources = [
      source({ ...record('top'), dependencies: ['middle'] }),
      source({ ...record('middle'), dependencies: ['base'] }),
      source(record('base')),
      source(record('independent')),
    ];
    const set = await loadPlugins(sources, environment());
    expect(set.plugins.map((plugin) => plugin.name)).toEqual(['base', 'middle', 'top', 'independent']);
    await runHooks(set.hooks, 'route', requestContext());
    expect(ran).toEqual(['base', 'middle', 'top', 'independent']);
  });
});

describe('configuration', () => {
  const configSchema = Type.Object({ model: Type.String({ default: 'refused-model-x' }), limit: Type.Optional(Type.Integer({ minimum: 1 })) });

  test('fills schema defaults and hands the config to setup', async () => {
    let seen: unknown;
    const definition = policy('configured', { configSchema, setup: (context) => void (seen = context.config) });
    await loadPlugins([source(definition)], environment());
    expect(seen).toEqual({ model: 'refused-model-x' });
  });

  test('reads the plugins.<name> section', async () => {
    let seen: unknown;
    const definition = policy('configured', { configSchema, setup: (context) => void (seen = context.config) });
    await loadPlugins([source(definition)], environment({ configured: { model: 'gpt-4o', limit: 3 }, other: { model: 1 } }));
    expect(seen).toEqual({ model: 'gpt-4o', limit: 3 });
  });

  test('refuses an invalid config, naming the field', async () => {
    const definition = policy('configured', { configSchema });
    const message = await loadError(() => loadPlugins([source(definition)], environment({ configured: { model: 'gpt-4o', limit: 0 } })));
    expect(message).toContain("plugin 'configured' (test): configuration is invalid");
    expect(message).toContain('/limit');
  });

  // QA19 ops M1: `plugins.rotation.intervalMS` was taken without a word and the default stayed in force.
  test('refuses a misspelt setting, naming its place and the nearest name the schema has', async () => {
    const definition = policy('configured', { configSchema });
    const message = await loadError(() => loadPlugins([source(definition)], environment({ configured: { model: 'gpt-4o', limt: 3 } })));
    expect(message).toContain("plugin 'configured' (test): unknown setting plugins[\"configured\"].limt. Did you mean 'limit'?");
  });

  test('refuses a misspelt setting inside a nested object, and one near no name without a suggestion', async () => {
    const nested = Type.Object({ retry: Type.Optional(Type.Object({ baseMs: Type.Integer({ default: 5 }) })) });
    const definition = policy('nested', { configSchema: nested });
    const message = await loadError(() => loadPlugins([source(definition)], environment({ nested: { retry: { basems: 10 } } })));
    expect(message).toContain('unknown setting plugins["nested"].retry.basems. Did you mean \'baseMs\'?');
    const far = await loadError(() => loadPlugins([source(definition)], environment({ nested: { zzzzzzzzzzzz: 1 } })));
    expect(far).toContain('unknown setting plugins["nested"].zzzzzzzzzzzz. The settings it takes: retry.');
  });

  test('a schema that takes names of its own choosing (additionalProperties, a record) takes them', async () => {
    let seen: unknown;
    const open = Type.Object({ model: Type.String() }, { additionalProperties: true });
    const byName = Type.Object({ routes: Type.Record(Type.String(), Type.String()) });
    await loadPlugins(
      [source(policy('open', { configSchema: open, setup: (context) => void (seen = context.config) })), source(policy('by-name', { configSchema: byName }))],
      environment({ open: { model: 'x', anything: 1 }, 'by-name': { routes: { a: 'b' } } }),
    );
    expect(seen).toEqual({ model: 'x', anything: 1 });
  });

  test('the built-in plugins refuse a misspelt setting of theirs (plugins.rotation.intervalMS)', async () => {
    const message = await loadError(() => loadPlugins(builtinPlugins(), environment({ rotation: { intervalMS: 5000 } })));
    expect(message).toContain("plugin 'rotation' (builtin): unknown setting plugins[\"rotation\"].intervalMS. Did you mean 'intervalMs'?");
  });
});

describe('setup', () => {
  test('a provider plugin must return a provider', async () => {
    const definition = { ...policy('provider-empty'), kind: 'provider', setup: () => ({}) };
    const message = await loadError(() => loadPlugins([source(definition)], environment()));
    expect(message).toContain("is a provider plugin but its setup returned no 'provider'");
  });

  test('a strategy plugin without setup contributes nothing and is refused', async () => {
    const message = await loadError(() => loadPlugins([source({ ...policy('strategy-empty'), kind: 'strategy' })], environment()));
    expect(message).toContain("returned no 'strategy'");
  });

  test('two plugins may not register the same provider name', async () => {
    const provider = (name: string) => source({ ...policy(name), kind: 'provider', setup: () => ({ provider: fakeProvider('acme') }) });
    const message = await loadError(() => loadPlugins([provider('provider-acme'), provider('provider-acme-fork')], environment()));
    expect(message).toContain("plugin 'provider-acme-fork' (test): registers provider 'acme', which another plugin already registered");
  });

  test('a failing setup stops the start with the plugin named and its reason', async () => {
    const definition = policy('broken', {
      setup: () => {
        throw new Error('cannot reach the policy server');
      },
    });
    const message = await loadError(() => loadPlugins([source(definition, '/opt/plugins/broken.ts')], environment()));
    expect(message).toBe("plugin 'broken' (/opt/plugins/broken.ts): setup failed: cannot reach the policy server");
  });

  test('an async setup that rejects is reported the same way', async () => {
    const definition = policy('broken-async', { setup: async () => Promise.reject(new Error('timed out')) });
    expect(await loadError(() => loadPlugins([source(definition)], environment()))).toContain('setup failed: timed out');
  });

  test("a variable the plugin cannot read is the variable's refusal alone, as a SettingError (by class, or by name from the binary)", async () => {
    const typed = policy('widget', {
      setup: ({ env }) => {
        integerSetting('KEYWAY_WIDGET_TIMEOUT_MS', env.KEYWAY_WIDGET_TIMEOUT_MS, 1000, 1, 60_000);
      },
    });
    const refused = await loadPlugins([source(typed)], { ...environment(), env: { KEYWAY_WIDGET_TIMEOUT_MS: 'abc' } }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SettingError);
    expect((refused as Error).message).toBe('KEYWAY_WIDGET_TIMEOUT_MS must be an integer between 1 and 60000; got "abc".');
    const named = policy('widget-binary', {
      setup: () => {
        throw Object.assign(new Error('KEYWAY_WIDGET_URL is not a URL'), { name: 'SettingError' });
      },
    });
    const fromBinary = await loadPlugins([source(named)], environment()).catch((error: unknown) => error);
    expect(fromBinary).toBeInstanceOf(SettingError);
    expect((fromBinary as Error).message).toBe('KEYWAY_WIDGET_URL is not a URL');
  });
});

describe('importPluginModules', () => {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-plugin-modules-'));
  const write = (file: string, text: string): string => {
    const path = join(directory, file);
    writeFileSync(path, text);
    return path;
  };
  const declaration = (name: string) => `{ name: '${name}', version: '1.0.0', apiVersion: 1, kind: 'policy' }`;
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test('takes the default export', async () => {
    const path = write('default-export.ts', `export default ${declaration('from-default')};\n`);
    const sources = await importPluginModules([path]);
    expect(sources.map((entry) => [entry.definition.name, entry.source])).toEqual([['from-default', path]]);
  });

  test("takes a named 'plugin' export", async () => {
    const path = write('named-export.js', `export const plugin = ${declaration('from-named')};\n`);
    expect((await importPluginModules([path])).map((entry) => entry.definition.name)).toEqual(['from-named']);
  });

  test("takes every plugin of a 'plugins' array", async () => {
    const path = write('many.ts', `export const plugins = [${declaration('first')}, ${declaration('second')}];\n`);
    expect((await importPluginModules([path])).map((entry) => entry.definition.name)).toEqual(['first', 'second']);
  });

  test('resolves relative paths against the base directory', async () => {
    write('relative.ts', `export default ${declaration('relative')};\n`);
    const sources = await importPluginModules(['./relative.ts'], directory);
    expect(sources[0]?.source).toBe(join(directory, 'relative.ts'));
  });

  test('a missing file names the path', async () => {
    const missing = join(directory, 'nowhere.ts');
    const message = await loadError(() => importPluginModules([missing]));
    expect(message).toBe(`KEYWAY_PLUGINS: ${missing} does not exist`);
  });

  test('a module without a plugin export says which exports count', async () => {
    const path = write('nothing.ts', 'export const unrelated = 1;\n');
    expect(await loadError(() => importPluginModules([path]))).toContain("exports no plugin (use a default export, 'plugin' or 'plugins')");
  });

  test('the refuse-model example validates and loads with its default config', async () => {
    const sources = await importPluginModules([new URL('./refuse-model/index.ts', import.meta.url).pathname]);
    const set = await loadPlugins(sources, environment());
    expect(set.plugins.map((plugin) => [plugin.name, plugin.kind])).toEqual([['refuse-model', 'policy']]);
    expect(set.hooks.route.map((hook) => hook.plugin)).toEqual(['refuse-model']);
  });
});
