import { expect, test } from 'bun:test';
import { ConfigError, loadConfig } from '../../core/config.ts';

test('KEYWAY_UPSTREAM_CLIENT: fetch by default, pool on request, anything else refused at start', () => {
  expect(loadConfig({}).upstreamClient).toBe('fetch');
  expect(loadConfig({ KEYWAY_UPSTREAM_CLIENT: 'pool' }).upstreamClient).toBe('pool');
  expect(loadConfig({ KEYWAY_UPSTREAM_CLIENT: 'Fetch' }).upstreamClient).toBe('fetch');
  expect(() => loadConfig({ KEYWAY_UPSTREAM_CLIENT: 'curl' })).toThrow(ConfigError);
});
