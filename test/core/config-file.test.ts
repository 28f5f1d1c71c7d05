// The KEYWAY_CONFIG file as an operator writes it: every top-level name is one Keyway reads (a variable
// name, its camelCase name, or the plugins section), and a misspelt one stops the start naming it and
// the nearest known name, instead of leaving the default in force without a word. And a
// KEYWAY_REDIS_URL no loaded counters plugin accepts stops the start, naming the schemes the plugins
// accept, instead of keeping counters in memory.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../core/config.ts';
import type { Contributed } from '../../core/registry.ts';
import { refuseUnacceptedRedisUrl } from '../../core/plugin-drivers.ts';
import type { Counters, CountersDriver } from '../../core/spec/counters.ts';
import { startTestGateway } from '../helpers/gateway.ts';

const directory = mkdtempSync(join(tmpdir(), 'keyway-config-file-'));
const base = { KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}` };

afterAll(() => rmSync(directory, { recursive: true, force: true }));

let written = 0;

/** Loads the configuration with a KEYWAY_CONFIG file holding `content`. */
function withFile(content: unknown, environment: Record<string, string> = {}) {
  const file = join(directory, `keyway-${++written}.json`);
  writeFileSync(file, JSON.stringify(content));
  return { file, load: () => loadConfig({ ...base, ...environment, KEYWAY_CONFIG: file }) };
}

describe('unknown names in the KEYWAY_CONFIG file', () => {
  test('a misspelt setting stops the start, naming it and the nearest known name', () => {
    const { file, load } = withFile({ porrt: 9000 });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`KEYWAY_CONFIG file ${file}: unknown setting 'porrt'. Did you mean 'port'?`);
  });

  test('the suggestion ignores case, and a name near nothing gets none', () => {
    expect(withFile({ LogLevel: 'warn' }).load).toThrow("unknown setting 'LogLevel'. Did you mean 'logLevel'?");
    expect(withFile({ keyway_port: 9000 }).load).toThrow("unknown setting 'keyway_port'. Did you mean 'KEYWAY_PORT'?");
    expect(withFile({ plugin: {} }).load).toThrow("unknown setting 'plugin'. Did you mean 'plugins'?");
    expect(withFile({ zzzzzzzzzzzzzzzzzzzz: 1 }).load).toThrow(/unknown setting 'zzzzzzzzzzzzzzzzzzzz'\. The file takes variable names/);
  });

  test('variable names, camelCase names and the plugins section are taken, as documented', () => {
    const config = withFile({
      KEYWAY_PORT: 9001,
      logLevel: 'warn',
      KEYWAY_REDIS_PREFIX: 'plugin-variable:',
      plugins: { 'refuse-model': { model: 'gpt-4' } },
    }).load();
    expect(config).toMatchObject({ port: 9001, logLevel: 'warn', pluginConfig: { 'refuse-model': { model: 'gpt-4' } } });
    // A variable only a plugin reads reaches the plugins through the environment they are given.
    expect(config.env.KEYWAY_REDIS_PREFIX).toBe('plugin-variable:');
  });

  test('every setting the file may name is read from it, by either name (none is taken and then ignored)', () => {
    expect(withFile({ KEYWAY_USAGE_FLUSH_MS: 250, usageBatchSize: 77, minFreeDiskMb: 5, KEYWAY_MODELS_CACHE_TTL_MS: 1000 }).load()).toMatchObject({
      usageFlushIntervalMs: 250,
      usageBatchSize: 77,
      minFreeDiskMb: 5,
      modelsCacheTtlMs: 1000,
    });
    // The environment still wins over the file.
    expect(withFile({ usageFlushIntervalMs: 250 }, { KEYWAY_USAGE_FLUSH_MS: '300' }).load().usageFlushIntervalMs).toBe(300);
  });

  // QA20 ops: KEYWAY_CONFIG in the file was taken as a variable name and then never read.
  test('KEYWAY_CONFIG inside the file is refused: the file it names would not be read', () => {
    const { file, load } = withFile({ KEYWAY_CONFIG: '/etc/keyway/other.json', port: 9000 });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`KEYWAY_CONFIG file ${file}: KEYWAY_CONFIG cannot be set in the file`);
  });

  test('a plugins section that is not an object is refused, not dropped', () => {
    expect(withFile({ plugins: ['refuse-model'] }).load).toThrow('"plugins" must be an object of plugin name → settings');
  });
});

describe('plugin sections of the KEYWAY_CONFIG file', () => {
  test('a section no loaded plugin reads is said at start with the nearest loaded name; the gateway still starts', async () => {
    const { file } = withFile({ plugins: { alertz: { intervalMs: 1000 }, alerts: { intervalMs: 60_000 } } });
    const gateway = await startTestGateway({ env: { KEYWAY_CONFIG: file } });
    try {
      const warnings = gateway.output.filter((line) => line.includes('has settings for a plugin that is not loaded'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 'warn', section: 'plugins.alertz', nearest: 'plugins.alerts' });
    } finally {
      await gateway.stop();
    }
  });
});

function countersDriver(name: string, pattern: RegExp, schemes?: readonly string[]): Contributed<CountersDriver> {
  return {
    plugin: name,
    value: {
      name,
      accepts: (url) => pattern.test(url),
      ...(schemes === undefined ? {} : { schemes }),
      open: () => Promise.resolve({} as Counters),
    },
  };
}

describe('a KEYWAY_REDIS_URL no loaded counters plugin accepts', () => {
  const redis = countersDriver('counters-redis', /^rediss?:\/\//, ['redis://', 'rediss://']);

  test('stops the start naming the schemes the plugins accept, and only the scheme of the URL', () => {
    for (const [url, got] of [
      ['http://x', 'the scheme http:'],
      ['valkey://default:Sup3rSecretRedisPassword@cache.internal:6379', 'the scheme valkey:'],
      ['redis//cache.internal:6379', 'a value without a scheme'],
    ] as const) {
      const refuse = () => refuseUnacceptedRedisUrl({ countersDrivers: [redis] }, url);
      expect(refuse).toThrow(ConfigError);
      expect(refuse).toThrow(`KEYWAY_REDIS_URL must start with redis:// or rediss:// (counters plugins: counters-redis); got ${got}.`);
    }
    try {
      refuseUnacceptedRedisUrl({ countersDrivers: [redis] }, 'valkey://default:Sup3rSecretRedisPassword@cache.internal:6379');
    } catch (error) {
      expect((error as Error).message).not.toContain('Sup3rSecret');
    }
  });

  test('a URL a plugin accepts, or none set, starts', () => {
    expect(() => refuseUnacceptedRedisUrl({ countersDrivers: [redis] }, 'rediss://cache.internal:6380/2')).not.toThrow();
    expect(() => refuseUnacceptedRedisUrl({ countersDrivers: [] }, undefined)).not.toThrow();
  });

  test('the schemes come from every loaded plugin; one that declares none is named by its plugin', () => {
    const memcached = countersDriver('counters-memcached', /^memcached:\/\//, ['memcached://']);
    expect(() => refuseUnacceptedRedisUrl({ countersDrivers: [redis, memcached] }, 'http://x')).toThrow(
      'KEYWAY_REDIS_URL must start with redis://, rediss:// or memcached:// (counters plugins: counters-redis, counters-memcached); got the scheme http:.',
    );
    const silent = countersDriver('counters-custom', /^custom:/);
    expect(() => refuseUnacceptedRedisUrl({ countersDrivers: [silent] }, 'http://x')).toThrow(
      'KEYWAY_REDIS_URL must start with a URL a loaded counters plugin accepts (counters plugins: counters-custom); got the scheme http:.',
    );
  });

  test('with no counters plugin loaded, the URL is refused as unusable', () => {
    expect(() => refuseUnacceptedRedisUrl({ countersDrivers: [] }, 'redis://cache.internal:6379')).toThrow(
      'KEYWAY_REDIS_URL is set (the scheme redis:), but no counters plugin is loaded to use it',
    );
  });
});
