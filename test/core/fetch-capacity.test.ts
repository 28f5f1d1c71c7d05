// Sizing Bun's fetch connection limit: the re-exec the entry point performs, from source and from a
// compiled binary, and the limits the gateway derives from it.

import { describe, expect, test } from 'bun:test';
import { loadConfig } from '../../core/config.ts';
import {
  BUN_DEFAULT_FETCH_LIMIT,
  DEFAULT_UPSTREAM_CONNECTIONS,
  desiredUpstreamConnections,
  effectiveFetchCapacity,
  fetchCapacityReexec,
  isCompiledBinary,
  parseOpenFilesLimit,
} from '../../core/process/fetch-capacity.ts';

const BUN = '/usr/local/bin/bun';
const SCRIPT = '/srv/keyway/plugins/main.ts';

describe('the re-exec', () => {
  test('from source: the same Bun, its runtime flags, the script and its arguments, with the limit set', () => {
    const reexec = fetchCapacityReexec({ env: { PATH: '/bin', KEYWAY_PORT: '8080' }, argv: [BUN, SCRIPT, '--flag'], execArgv: ['--smol'], execPath: BUN });
    expect(reexec).toEqual({
      file: BUN,
      args: [BUN, '--smol', SCRIPT, '--flag'],
      env: { PATH: '/bin', KEYWAY_PORT: '8080', BUN_CONFIG_MAX_HTTP_REQUESTS: String(DEFAULT_UPSTREAM_CONNECTIONS) },
      connections: DEFAULT_UPSTREAM_CONNECTIONS,
    });
  });

  test('from a compiled binary: the binary itself, without the embedded script path', () => {
    const argv = ['bun', '/$bunfs/root/keyway', 'serve'];
    expect(isCompiledBinary(argv)).toBe(true);
    expect(isCompiledBinary([BUN, SCRIPT])).toBe(false);
    const reexec = fetchCapacityReexec({ env: {}, argv, execArgv: [], execPath: '/opt/keyway/keyway' });
    expect(reexec?.file).toBe('/opt/keyway/keyway');
    expect(reexec?.args).toEqual(['/opt/keyway/keyway', 'serve']);
  });

  test('happens once: not when the variable is already set, by the operator or by the re-exec itself', () => {
    expect(fetchCapacityReexec({ env: { BUN_CONFIG_MAX_HTTP_REQUESTS: '512' }, argv: [BUN, SCRIPT], execPath: BUN })).toBeUndefined();
    const first = fetchCapacityReexec({ env: {}, argv: [BUN, SCRIPT], execPath: BUN });
    expect(fetchCapacityReexec({ env: first?.env ?? {}, argv: [BUN, SCRIPT], execPath: BUN })).toBeUndefined();
  });

  test('not when the wanted limit is Bun’s default anyway', () => {
    expect(fetchCapacityReexec({ env: { KEYWAY_MAX_UPSTREAM_CONNECTIONS: '256' }, argv: [BUN, SCRIPT], execPath: BUN })).toBeUndefined();
  });

  test('KEYWAY_MAX_UPSTREAM_CONNECTIONS overrides; a malformed value is refused naming the variable', () => {
    expect(fetchCapacityReexec({ env: { KEYWAY_MAX_UPSTREAM_CONNECTIONS: '2048' }, argv: [BUN, SCRIPT], execPath: BUN })?.connections).toBe(2048);
    for (const bad of ['0', '-5', '1.5', 'many', '65536']) {
      expect(() => fetchCapacityReexec({ env: { KEYWAY_MAX_UPSTREAM_CONNECTIONS: bad }, argv: [BUN, SCRIPT], execPath: BUN })).toThrow(
        /KEYWAY_MAX_UPSTREAM_CONNECTIONS must be an integer between 1 and 65535/,
      );
    }
  });

  test('the default stays within half the open-files limit (a proxied call holds two sockets), never below Bun’s own', () => {
    expect(desiredUpstreamConnections({}, 1_048_576)).toBe(DEFAULT_UPSTREAM_CONNECTIONS);
    expect(desiredUpstreamConnections({}, 20_000)).toBe(10_000);
    expect(desiredUpstreamConnections({}, 256)).toBe(BUN_DEFAULT_FETCH_LIMIT);
    expect(desiredUpstreamConnections({ KEYWAY_MAX_UPSTREAM_CONNECTIONS: '30000' }, 20_000)).toBe(30_000);
    const limits =
      'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                1048576              files\n';
    expect(parseOpenFilesLimit(limits)).toBe(20_000);
    expect(parseOpenFilesLimit('Max open files            unlimited            unlimited            files')).toBeUndefined();
  });
});

describe('the limits the gateway runs with', () => {
  test('the effective limit is the variable as set at start, else Bun’s 256', () => {
    expect(effectiveFetchCapacity({})).toBe(256);
    expect(effectiveFetchCapacity({ BUN_CONFIG_MAX_HTTP_REQUESTS: '16384' })).toBe(16_384);
    expect(effectiveFetchCapacity({ BUN_CONFIG_MAX_HTTP_REQUESTS: 'lots' })).toBe(256);
  });

  test('per account a quarter, per upstream half, queue 10 s; each can be set', () => {
    const defaults = loadConfig({ KEYWAY_DATABASE_URL: ':memory:', BUN_CONFIG_MAX_HTTP_REQUESTS: '16384' });
    expect(defaults).toMatchObject({ upstreamConnections: 16_384, maxInflightPerAccount: 4096, maxInflightPerUpstream: 8192, upstreamQueueTimeoutMs: 10_000 });
    const bare = loadConfig({ KEYWAY_DATABASE_URL: ':memory:' });
    expect(bare).toMatchObject({ upstreamConnections: 256, maxInflightPerAccount: 64, maxInflightPerUpstream: 128 });
    const set = loadConfig({
      KEYWAY_DATABASE_URL: ':memory:',
      KEYWAY_MAX_INFLIGHT_PER_ACCOUNT: '20',
      KEYWAY_MAX_INFLIGHT_PER_UPSTREAM: '30',
      KEYWAY_UPSTREAM_QUEUE_TIMEOUT_MS: '1500',
    });
    expect(set).toMatchObject({ maxInflightPerAccount: 20, maxInflightPerUpstream: 30, upstreamQueueTimeoutMs: 1500 });
    expect(() => loadConfig({ KEYWAY_DATABASE_URL: ':memory:', KEYWAY_MAX_INFLIGHT_PER_ACCOUNT: '0' })).toThrow(
      /KEYWAY_MAX_INFLIGHT_PER_ACCOUNT must be an integer/,
    );
  });
});
