import { describe, expect, test } from 'bun:test';
import { loadConfig, ConfigError } from '../../core/config.ts';
import { createClientAddressResolver } from '../../core/http/client-address.ts';
import { parseIp } from '../../core/wire/ip-address.ts';
import { compileList, ipAllowlistPolicy, listAllows } from '../../policies/ip-allowlist/index.ts';
import { context, hooksOf, refusalOf, teamsSection } from './helpers.ts';

describe('ip-allowlist', () => {
  test('the key list alone: addresses and CIDR ranges, IPv4 and IPv6, IPv4-mapped addresses', async () => {
    const hooks = await hooksOf(ipAllowlistPolicy, teamsSection(undefined));
    const settings = { allowed_ips: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'] };
    const run = (clientIp: string | undefined) => refusalOf(() => hooks.auth?.(context({ principal: { settings }, clientIp })));
    expect(await run('10.1.2.3')).toBeUndefined();
    expect(await run('::ffff:10.1.2.3')).toBeUndefined();
    expect(await run('192.168.1.7')).toBeUndefined();
    expect(await run('2001:db8:1::5')).toBeUndefined();
    expect(await run('192.168.1.8')).toBe('ip_not_allowed');
    expect(await run('2001:db9::1')).toBe('ip_not_allowed');
    expect(await run(undefined)).toBe('ip_not_allowed');
  });

  test('key and team lists: the address must match both', async () => {
    const hooks = await hooksOf(ipAllowlistPolicy, teamsSection({ allowed_ips: ['10.0.0.0/16'] }));
    const settings = { allowed_ips: ['10.0.5.0/24', '172.16.0.1'] };
    const run = (clientIp: string) => refusalOf(() => hooks.auth?.(context({ principal: { settings }, clientIp })));
    expect(await run('10.0.5.9')).toBeUndefined();
    expect(await run('172.16.0.1')).toBe('ip_not_allowed');
    expect(await run('10.0.6.1')).toBe('ip_not_allowed');
    // The team's list alone.
    expect(await refusalOf(() => hooks.auth?.(context({ clientIp: '10.0.9.9' })))).toBeUndefined();
    expect(await refusalOf(() => hooks.auth?.(context({ clientIp: '10.1.0.1' })))).toBe('ip_not_allowed');
  });

  test('no list, or an empty one, restricts nothing; an entry that is not an address matches nothing', async () => {
    const hooks = await hooksOf(ipAllowlistPolicy, teamsSection({ allowed_ips: [] }));
    expect(await refusalOf(() => hooks.auth?.(context({ clientIp: '8.8.8.8' })))).toBeUndefined();
    const list = compileList(['not-an-ip', '10.0.0.1/40', '10.0.0.5/8']);
    expect(list.invalid).toEqual(['not-an-ip', '10.0.0.1/40']);
    expect(listAllows(list, parseIp('10.200.0.1'))).toBe(true);
    expect(listAllows(compileList(['not-an-ip']), parseIp('10.200.0.1'))).toBe(false);
    // QA12: an IPv4-mapped address with a prefix below /96 is not taken (the write refuses it); a mapped
    // address with /96 or more is its IPv4 range. A zone id is refused when written, but one stored by an
    // older release keeps matching its address, as it did then.
    const mapped = compileList(['fe80::1%eth0', '::ffff:10.0.0.1/24', '::ffff:10.0.0.0/104', '::ffff:192.0.2.7']);
    expect(mapped.invalid).toEqual(['::ffff:10.0.0.1/24']);
    expect(listAllows(mapped, parseIp('10.9.9.9'))).toBe(true);
    expect(listAllows(mapped, parseIp('::ffff:10.9.9.9'))).toBe(true);
    expect(listAllows(mapped, parseIp('192.0.2.7'))).toBe(true);
    expect(listAllows(mapped, parseIp('::1'))).toBe(false);
    expect(listAllows(mapped, parseIp('fe80::1'))).toBe(true);
    expect(listAllows(mapped, parseIp('fe80::2'))).toBe(false);
  });

  test('the refusal names the address but never the list', async () => {
    const hooks = await hooksOf(ipAllowlistPolicy, teamsSection(undefined));
    try {
      await hooks.auth?.(context({ principal: { settings: { allowed_ips: ['10.9.9.9'] } }, clientIp: '1.2.3.4' }));
      throw new Error('not refused');
    } catch (error) {
      expect((error as Error).message).toContain('1.2.3.4');
      expect((error as Error).message).not.toContain('10.9.9.9');
    }
  });
});

describe('the client address behind trusted proxies', () => {
  const headers = (forwarded: string | undefined) => new Headers(forwarded === undefined ? {} : { 'x-forwarded-for': forwarded });

  test('without trusted proxies, X-Forwarded-For is ignored', () => {
    const resolve = createClientAddressResolver([]);
    expect(resolve('203.0.113.9', headers('1.1.1.1'))).toBe('203.0.113.9');
  });

  test('from a trusted proxy, the right-most entry that is not a trusted proxy', () => {
    const resolve = createClientAddressResolver(['10.0.0.0/8', '::1']);
    expect(resolve('10.0.0.2', headers('6.6.6.6, 198.51.100.4, 10.0.0.7'))).toBe('198.51.100.4');
    expect(resolve('::ffff:10.0.0.2', headers('198.51.100.4'))).toBe('198.51.100.4');
    expect(resolve('::1', headers('[2001:db8::7]:443'))).toBe('2001:db8::7');
    expect(resolve('10.0.0.2', headers('198.51.100.4:5555'))).toBe('198.51.100.4');
    // Every hop trusted: the left-most.
    expect(resolve('10.0.0.2', headers('10.0.0.9, 10.0.0.8'))).toBe('10.0.0.9');
    // No header: the proxy itself.
    expect(resolve('10.0.0.2', headers(undefined))).toBe('10.0.0.2');
    // Garbage where an address should be: nothing can be believed.
    expect(resolve('10.0.0.2', headers('1.1.1.1, garbage'))).toBeUndefined();
  });

  test('from an untrusted socket, X-Forwarded-For is ignored', () => {
    const resolve = createClientAddressResolver(['10.0.0.0/8']);
    expect(resolve('203.0.113.9', headers('10.0.0.1'))).toBe('203.0.113.9');
  });

  test('KEYWAY_TRUSTED_PROXIES is read and checked at start', () => {
    const base = { KEYWAY_DATABASE_URL: ':memory:' };
    expect(loadConfig({ ...base, KEYWAY_TRUSTED_PROXIES: '10.0.0.0/8, ::1' }).trustedProxies).toEqual(['10.0.0.0/8', '::1']);
    expect(loadConfig(base).trustedProxies).toEqual([]);
    expect(() => loadConfig({ ...base, KEYWAY_TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(ConfigError);
  });
});
