// The upstream address policy on its own: address parsing, CIDR matching, the built-in rules, the
// operator's lists, DNS resolution and its cache, and the loop-to-self rule.

import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../core/config.ts';
import { canonicalIp, cidrContains, formatIp, parseCidr, parseIp } from '../../core/wire/ip-address.ts';
import { parseUpstreamEntry, parseUpstreamList } from '../../core/wire/upstream-entries.ts';
import { UpstreamPolicy, type UpstreamPolicyOptions, type UpstreamTrust, type UpstreamVerdict, viaNamesKeyway } from '../../core/wire/upstream-policy.ts';

/** A resolver that answers from a table and counts its lookups. */
function fakeResolver(table: Record<string, string[]>) {
  const lookups: string[] = [];
  return {
    lookups,
    resolve: async (host: string): Promise<string[]> => {
      lookups.push(host);
      const answer = table[host];
      if (answer === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return answer;
    },
  };
}

function policy(options: UpstreamPolicyOptions = {}): UpstreamPolicy {
  return new UpstreamPolicy({ resolve: fakeResolver({}).resolve, localAddresses: [], ...options });
}

async function verdict(subject: UpstreamPolicy, url: string, trust: UpstreamTrust = 'key'): Promise<UpstreamVerdict> {
  return await subject.check(url, trust);
}

async function ruleFor(subject: UpstreamPolicy, url: string, trust: UpstreamTrust = 'key'): Promise<string> {
  const result = await verdict(subject, url, trust);
  if (result.allowed) return 'allowed';
  return result.kind === 'refused' ? result.rule : 'unresolved';
}

describe('IP addresses and CIDR ranges', () => {
  test('parses IPv4 and IPv6, with brackets, embedded dotted quads and ::', () => {
    expect(parseIp('10.1.2.3')).toEqual({ version: 4, value: 0x0a010203n });
    expect(parseIp('[::1]')).toEqual({ version: 6, value: 1n });
    expect(parseIp('::')).toEqual({ version: 6, value: 0n });
    expect(parseIp('::ffff:169.254.169.254')).toEqual({ version: 6, value: 0xffffa9fea9fen });
    expect(parseIp('fe80::1:2')?.value).toBe((0xfe80n << 112n) | (1n << 16n) | 2n);
    expect(parseIp('2001:db8:0:0:0:0:0:1')?.value).toBe((0x20010db8n << 96n) | 1n);
    expect(parseIp('example.com')).toBeUndefined();
    // Only canonical dotted quads are literals here: the URL parser has already turned the rest into one.
    expect(parseIp('0xA9FEA9FE')).toBeUndefined();
    expect(parseIp('2852039166')).toBeUndefined();
  });

  test('formats addresses back, compressing the longest zero run', () => {
    expect(formatIp(parseIp('169.254.169.254') as never)).toBe('169.254.169.254');
    expect(formatIp(parseIp('fd00:ec2:0:0:0:0:0:254') as never)).toBe('fd00:ec2::254');
    expect(formatIp(parseIp('::1') as never)).toBe('::1');
  });

  test('IPv4 CIDR matching', () => {
    const range = parseCidr('172.16.0.0/12');
    expect(cidrContains(range, parseIp('172.16.0.1') as never)).toBe(true);
    expect(cidrContains(range, parseIp('172.31.255.255') as never)).toBe(true);
    expect(cidrContains(range, parseIp('172.32.0.0') as never)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), parseIp('8.8.8.8') as never)).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.5'), parseIp('10.0.0.5') as never)).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.5'), parseIp('10.0.0.6') as never)).toBe(false);
  });

  test('IPv6 CIDR matching, and a v4 range never matches a v6 address', () => {
    const linkLocal = parseCidr('fe80::/10');
    expect(cidrContains(linkLocal, parseIp('fe80::1') as never)).toBe(true);
    expect(cidrContains(linkLocal, parseIp('febf:ffff::1') as never)).toBe(true);
    expect(cidrContains(linkLocal, parseIp('fec0::1') as never)).toBe(false);
    expect(cidrContains(parseCidr('10.0.0.0/8'), parseIp('::ffff:10.0.0.1') as never)).toBe(false);
  });

  test('an IPv4-mapped IPv6 address is its IPv4 address', () => {
    expect(canonicalIp(parseIp('::ffff:169.254.169.254') as never)).toEqual(parseIp('169.254.169.254') as never);
    expect(canonicalIp(parseIp('::ffff:a9fe:a9fe') as never)).toEqual(parseIp('169.254.169.254') as never);
  });

  test('malformed CIDRs are refused with what is wrong', () => {
    expect(() => parseCidr('10.0.0.1/8')).toThrow("'10.0.0.1/8' has host bits set after the /8 prefix; did you mean 10.0.0.0/8?");
    expect(() => parseCidr('10.0.0.0/33')).toThrow("the prefix length '/33' must be a number from 0 to 32");
    expect(() => parseCidr('fd00::/129')).toThrow('from 0 to 128');
    expect(() => parseCidr('10.0.0.0/')).toThrow('prefix length');
    expect(() => parseCidr('10.0.0/8')).toThrow("'10.0.0' is not an IPv4 or IPv6 address");
  });
});

describe('operator entries', () => {
  test('hosts, globs, IPs, CIDRs, each with an optional port', () => {
    expect(parseUpstreamEntry('Ollama.Internal.')).toEqual({ text: 'Ollama.Internal.', match: { kind: 'host', host: 'ollama.internal' }, port: undefined });
    expect(parseUpstreamEntry('*.corp.example:8443').match).toEqual({ kind: 'suffix', suffix: 'corp.example' });
    expect(parseUpstreamEntry('*.corp.example:8443').port).toBe(8443);
    expect(parseUpstreamEntry('127.0.0.1:11434')).toMatchObject({ match: { kind: 'cidr', cidr: { version: 4, prefix: 32 } }, port: 11434 });
    expect(parseUpstreamEntry('10.0.0.0/8')).toMatchObject({ match: { kind: 'cidr', cidr: { prefix: 8 } }, port: undefined });
    expect(parseUpstreamEntry('10.0.0.0/8:8000').port).toBe(8000);
    expect(parseUpstreamEntry('fd00::/8')).toMatchObject({ match: { kind: 'cidr', cidr: { version: 6, prefix: 8 } }, port: undefined });
    expect(parseUpstreamEntry('[::1]:8000')).toMatchObject({ match: { kind: 'cidr', cidr: { version: 6, prefix: 128 } }, port: 8000 });
    expect(parseUpstreamEntry('[fd00::/8]:8000')).toMatchObject({ match: { kind: 'cidr', cidr: { prefix: 8 } }, port: 8000 });
    // Numeric host spellings become the address they mean, as they do for fetch.
    expect(parseUpstreamEntry('0xA9FEA9FE').match).toEqual({ kind: 'cidr', cidr: parseCidr('169.254.169.254') });
  });

  test('bad entries say what is wrong', () => {
    expect(() => parseUpstreamEntry('http://ollama:11434')).toThrow("is a URL; write only the host (and port), e.g. 'ollama:11434'");
    expect(() => parseUpstreamEntry('*')).toThrow("only a leading '*.' glob");
    expect(() => parseUpstreamEntry('a.*.example')).toThrow("only a leading '*.' glob");
    expect(() => parseUpstreamEntry('host:99999')).toThrow("port '99999'");
    expect(() => parseUpstreamEntry('[::1')).toThrow("opens '[' without closing it");
    expect(() => parseUpstreamEntry('bad host')).toThrow('is not a host name, an IP address or a CIDR range');
    expect(() => parseUpstreamList('10.0.0.0/8, 192.168.1.1/16', 'KEYWAY_UPSTREAM_ALLOW')).toThrow(
      "KEYWAY_UPSTREAM_ALLOW: '192.168.1.1/16' has host bits set after the /16 prefix; did you mean 192.168.0.0/16?",
    );
    expect(parseUpstreamList(' 10.0.0.0/8 ,, ollama ', 'X').map((entry) => entry.text)).toEqual(['10.0.0.0/8', 'ollama']);
  });

  test('loadConfig reads both lists from the environment or the KEYWAY_CONFIG file, and refuses a malformed CIDR', () => {
    const directory = mkdtempSync(join(tmpdir(), 'keyway-upstream-'));
    try {
      const base = { KEYWAY_DATABASE_URL: `file:${join(directory, 'k.db')}` };
      expect(loadConfig({ ...base, KEYWAY_UPSTREAM_ALLOW: '127.0.0.1:11434,10.0.0.0/8', KEYWAY_UPSTREAM_DENY: '*.evil.example' })).toMatchObject({
        upstreamAllow: ['127.0.0.1:11434', '10.0.0.0/8'],
        upstreamDeny: ['*.evil.example'],
      });
      expect(loadConfig(base)).toMatchObject({ upstreamAllow: [], upstreamDeny: [] });
      const file = join(directory, 'keyway.json');
      writeFileSync(file, JSON.stringify({ upstreamAllow: ['vllm.corp.example:8000', 'fd00::/8'], upstreamDeny: '10.9.0.0/16' }));
      expect(loadConfig({ ...base, KEYWAY_CONFIG: file })).toMatchObject({
        upstreamAllow: ['vllm.corp.example:8000', 'fd00::/8'],
        upstreamDeny: ['10.9.0.0/16'],
      });
      expect(() => loadConfig({ ...base, KEYWAY_UPSTREAM_ALLOW: '10.0.0.0/33' })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, KEYWAY_UPSTREAM_DENY: '10.1.0.0/8' })).toThrow("KEYWAY_UPSTREAM_DENY: '10.1.0.0/8' has host bits set");
      writeFileSync(file, JSON.stringify({ upstreamAllow: ['10.0.0.0/99'] }));
      expect(() => loadConfig({ ...base, KEYWAY_CONFIG: file })).toThrow(`upstreamAllow in the KEYWAY_CONFIG file ${file}: the prefix length '/99'`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('built-in rules for a key base_url', () => {
  const subject = policy();

  test.each([
    ['http://169.254.169.254/latest/meta-data', 'cloud metadata'],
    ['http://[fd00:ec2::254]/', 'cloud metadata'],
    ['http://169.254.170.2/v2/credentials', 'cloud metadata'],
    ['http://100.100.100.200/', 'cloud metadata'],
    ['http://169.254.1.1/', 'link-local (169.254.0.0/16)'],
    ['http://[fe80::1]/', 'link-local (fe80::/10)'],
    ['http://127.0.0.1:11434/v1', 'loopback (127.0.0.0/8)'],
    ['http://127.1/', 'loopback (127.0.0.0/8)'],
    ['http://[::1]:8000/', 'loopback (::1/128)'],
    ['http://0.0.0.0:8080/', 'the unspecified address (0.0.0.0/8)'],
    ['http://0/', 'the unspecified address (0.0.0.0/8)'],
    ['http://[::]/', 'the unspecified address (::/128)'],
    ['http://10.1.2.3/', 'a private range (10.0.0.0/8)'],
    ['http://172.20.0.1/', 'a private range (172.16.0.0/12)'],
    ['https://192.168.1.10/', 'a private range (192.168.0.0/16)'],
    ['http://100.64.0.1/', 'shared address space (carrier-grade NAT) (100.64.0.0/10)'],
    ['http://[fd12:3456::1]/', 'unique local (a private range) (fc00::/7)'],
    ['http://224.0.0.1/', 'multicast (224.0.0.0/4)'],
    ['http://255.255.255.255/', 'reserved (240.0.0.0/4)'],
  ])('%s is refused: %s', async (url, rule) => {
    expect(await ruleFor(subject, url)).toBe(rule);
  });

  test('metadata hidden in other spellings: what reaches the check is the address the URL parser made of it', async () => {
    // Decimal, hex and octal IPv4 spellings are normalised by the URL parser (as fetch would connect).
    for (const url of ['http://2852039166/', 'http://0xA9FEA9FE/', 'http://0251.0376.0251.0376/', 'http://169.254.43518/', 'http://0xa9.0xfe.0xa9.0xfe/']) {
      expect(new URL(url).hostname).toBe('169.254.169.254');
      expect(await ruleFor(subject, url)).toBe('cloud metadata');
    }
    // IPv4-mapped, in both spellings; NAT64 and 6to4 carry it too.
    for (const url of [
      'http://[::ffff:169.254.169.254]/',
      'http://[0:0:0:0:0:ffff:a9fe:a9fe]/',
      'http://[64:ff9b::a9fe:a9fe]/',
      'http://[2002:a9fe:a9fe::1]/',
    ]) {
      expect(await ruleFor(subject, url)).toBe('cloud metadata');
    }
    expect(await ruleFor(subject, 'http://[::ffff:127.0.0.1]:11434/')).toBe('loopback (127.0.0.0/8)');
    expect(await ruleFor(subject, 'http://[64:ff9b::10.0.0.1]/')).toBe('a private range (10.0.0.0/8)');
  });

  test('public addresses are allowed', async () => {
    expect(await ruleFor(subject, 'https://8.8.8.8/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'https://[2606:4700::1111]/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://[64:ff9b::808:808]/')).toBe('allowed');
  });

  test('special-use domains are refused by name, before any lookup', async () => {
    const resolver = fakeResolver({ 'metadata.google.internal': ['169.254.169.254'] });
    const named = policy({ resolve: resolver.resolve });
    expect(await ruleFor(named, 'http://metadata.google.internal/computeMetadata/v1')).toContain('.internal');
    expect(await ruleFor(named, 'http://METADATA.google.internal./x')).toContain('.internal');
    expect(await ruleFor(named, 'http://printer.local/')).toContain('.local');
    expect(await ruleFor(named, 'http://app.localhost/')).toContain('.localhost');
    expect(resolver.lookups).toEqual([]);
  });

  test('only http and https', async () => {
    expect(await ruleFor(subject, 'ftp://8.8.8.8/')).toBe('scheme');
    expect(await ruleFor(subject, 'file:///etc/passwd')).toBe('scheme');
    expect(await ruleFor(subject, 'not a url')).toBe('invalid URL');
  });
});

describe('resolution: every address a name resolves to is checked', () => {
  test('one private address among public ones refuses the name; messages do not give the address away', async () => {
    const resolver = fakeResolver({
      'mixed.example': ['8.8.8.8', '10.0.0.7'],
      'public.example': ['8.8.8.8', '2606:4700::1111'],
      'mapped.example': ['::ffff:169.254.169.254'],
    });
    const subject = policy({ resolve: resolver.resolve });
    const mixed = await verdict(subject, 'https://mixed.example/v1');
    expect(mixed).toMatchObject({ allowed: false, kind: 'refused', rule: 'a private range (10.0.0.0/8)', address: '10.0.0.7' });
    expect((mixed as { message: string }).message).not.toContain('10.0.0.7');
    expect(await ruleFor(subject, 'https://public.example/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'https://mapped.example/v1')).toBe('cloud metadata');
  });

  test('a name that does not resolve is refused for a key, not for the operator', async () => {
    const subject = policy();
    subject.listening(8080);
    expect(await verdict(subject, 'https://nowhere.example/v1')).toEqual({ allowed: false, kind: 'unresolved', message: 'could not be resolved (ENOTFOUND)' });
    expect(await ruleFor(subject, 'http://nowhere.example:8080/v1', 'operator')).toBe('allowed');
  });

  test('answers are cached (bounded, for a while); concurrent checks share one lookup; failures are not cached', async () => {
    const resolver = fakeResolver({ 'a.example': ['8.8.8.8'], 'b.example': ['8.8.4.4'], 'c.example': ['1.1.1.1'] });
    const subject = policy({ resolve: resolver.resolve, cacheTtlMs: 50, cacheSize: 2 });
    await Promise.all([verdict(subject, 'https://a.example/'), verdict(subject, 'https://a.example/x'), verdict(subject, 'https://a.example/y')]);
    expect(resolver.lookups).toEqual(['a.example']);
    // A cached name decides synchronously: no lookup, no promise.
    expect(subject.check('https://a.example/z', 'key')).toEqual({ allowed: true });
    await verdict(subject, 'https://b.example/');
    await verdict(subject, 'https://c.example/'); // evicts a.example (two names at most)
    await verdict(subject, 'https://a.example/');
    expect(resolver.lookups).toEqual(['a.example', 'b.example', 'c.example', 'a.example']);
    await Bun.sleep(80);
    await verdict(subject, 'https://a.example/');
    expect(resolver.lookups.length).toBe(5);
    await verdict(subject, 'https://missing.example/');
    await verdict(subject, 'https://missing.example/');
    expect(resolver.lookups.filter((host) => host === 'missing.example').length).toBe(2);
  });

  test('a name that resolves elsewhere later is refused then: each check uses the current answer', async () => {
    const table: Record<string, string[]> = { 'rebind.example': ['8.8.8.8'] };
    const subject = policy({ resolve: async (host) => table[host] ?? [], cacheTtlMs: 10 });
    expect(await ruleFor(subject, 'https://rebind.example/')).toBe('allowed');
    table['rebind.example'] = ['169.254.169.254'];
    await Bun.sleep(30);
    expect(await ruleFor(subject, 'https://rebind.example/')).toBe('cloud metadata');
  });

  test('IP literals need no lookup', async () => {
    const resolver = fakeResolver({});
    const subject = policy({ resolve: resolver.resolve });
    expect(subject.check('https://8.8.8.8/', 'key')).toEqual({ allowed: true });
    expect(subject.check('https://[2606:4700::1111]/', 'key')).toEqual({ allowed: true });
    expect(resolver.lookups).toEqual([]);
  });
});

describe('the operator lists', () => {
  test('an allow entry opens an address, a range, a name or a glob, on its port when it names one', async () => {
    const resolver = fakeResolver({ 'llm.corp.example': ['10.1.1.1'], 'corp.example': ['10.1.1.2'], 'ollama.lan': ['192.168.1.5'] });
    const subject = policy({ resolve: resolver.resolve, allow: '127.0.0.1:11434, 10.20.0.0/16, *.corp.example, ollama.lan:11434, [::1]:8000, fd00::/8' });
    expect(await ruleFor(subject, 'http://127.0.0.1:11434/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://127.0.0.1:11435/v1')).toBe('loopback (127.0.0.0/8)');
    expect(await ruleFor(subject, 'http://[::1]:8000/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://[::1]:8001/v1')).toBe('loopback (::1/128)');
    expect(await ruleFor(subject, 'http://10.20.3.4:8000/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://10.21.0.1/v1')).toBe('a private range (10.0.0.0/8)');
    expect(await ruleFor(subject, 'https://llm.corp.example/v1')).toBe('allowed');
    // A glob covers the subdomains, not the name itself.
    expect(await ruleFor(subject, 'https://corp.example/v1')).toBe('a private range (10.0.0.0/8)');
    expect(await ruleFor(subject, 'http://ollama.lan:11434/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://ollama.lan/v1')).toBe('a private range (192.168.0.0/16)');
    expect(await ruleFor(subject, 'http://[fd00::5]/v1')).toBe('allowed');
  });

  test('a port defaults to the scheme: an entry with :443 matches https without a port', async () => {
    const subject = policy({ allow: '10.0.0.1:443' });
    expect(await ruleFor(subject, 'https://10.0.0.1/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://10.0.0.1/v1')).toBe('a private range (10.0.0.0/8)');
  });

  test('deny wins over allow, by name, glob or resolved address', async () => {
    const resolver = fakeResolver({ 'api.evil.example': ['8.8.8.8'], 'sneaky.example': ['9.9.9.9'] });
    const subject = policy({ resolve: resolver.resolve, allow: '10.0.0.0/8, *.evil.example', deny: '10.6.6.0/24, *.evil.example, 9.9.9.9:443' });
    expect(await ruleFor(subject, 'http://10.6.6.6/')).toBe("KEYWAY_UPSTREAM_DENY entry '10.6.6.0/24'");
    expect(await ruleFor(subject, 'http://10.7.7.7/')).toBe('allowed');
    expect(await ruleFor(subject, 'https://api.evil.example/')).toBe("KEYWAY_UPSTREAM_DENY entry '*.evil.example'");
    expect(await ruleFor(subject, 'https://sneaky.example/')).toBe("KEYWAY_UPSTREAM_DENY entry '9.9.9.9:443'");
    expect(await ruleFor(subject, 'http://sneaky.example/')).toBe('allowed');
    expect(resolver.lookups).not.toContain('api.evil.example');
  });

  test('a metadata address opens only to an entry naming exactly that address', async () => {
    const resolver = fakeResolver({ 'imds.corp.example': ['169.254.169.254'] });
    const broad = policy({ resolve: resolver.resolve, allow: '169.254.0.0/16, *.corp.example' });
    expect(await ruleFor(broad, 'http://169.254.169.254/')).toBe('cloud metadata');
    expect(await ruleFor(broad, 'http://imds.corp.example/')).toBe('cloud metadata');
    expect(await ruleFor(broad, 'http://169.254.10.10/')).toBe('allowed');
    const exact = policy({ allow: '169.254.169.254' });
    expect(await ruleFor(exact, 'http://169.254.169.254/')).toBe('allowed');
  });

  test('an allow entry opens a special-use domain name too', async () => {
    const resolver = fakeResolver({ 'vllm.internal': ['10.0.0.9'] });
    const subject = policy({ resolve: resolver.resolve, allow: 'vllm.internal:8000' });
    expect(await ruleFor(subject, 'http://vllm.internal:8000/v1')).toBe('allowed');
    expect(await ruleFor(subject, 'http://vllm.internal:9000/v1')).toContain('.internal');
  });
});

describe('loop to self', () => {
  test("Keyway's own port on this machine is refused for every trust level, whatever the allow list says", async () => {
    const resolver = fakeResolver({ localhost: ['127.0.0.1', '::1'], 'me.example': ['10.9.9.9'] });
    const subject = policy({ resolve: resolver.resolve, allow: '127.0.0.0/8, 10.0.0.0/8', localAddresses: ['10.9.9.9', 'fe80::1%eth0'] });
    subject.listening(8080);
    for (const trust of ['key', 'operator'] as const) {
      expect(await ruleFor(subject, 'http://127.0.0.1:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://localhost:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://0.0.0.0:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://[::1]:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://10.9.9.9:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://me.example:8080/v1', trust)).toBe('loop to self');
      expect(await ruleFor(subject, 'http://127.0.0.1:8081/v1', trust)).toBe('allowed');
    }
    const refusal = await verdict(subject, 'http://localhost:8080/v1');
    expect((refusal as { message: string }).message).toBe("resolves to Keyway's own listening address (port 8080)");
  });

  test('the operator trust checks nothing else, and resolves only a name on an own port', async () => {
    const resolver = fakeResolver({ 'api.example': ['10.0.0.1'] });
    const subject = policy({ resolve: resolver.resolve });
    subject.listening(8080);
    expect(subject.check('http://169.254.169.254/', 'operator')).toEqual({ allowed: true });
    expect(subject.check('http://127.0.0.1:11434/v1', 'operator')).toEqual({ allowed: true });
    expect(subject.check('https://api.example/v1', 'operator')).toEqual({ allowed: true });
    expect(resolver.lookups).toEqual([]);
    expect(await ruleFor(subject, 'http://api.example:8080/v1', 'operator')).toBe('allowed');
    expect(resolver.lookups).toEqual(['api.example']);
  });
});

describe('the Via marker', () => {
  test('every policy has its own instance marker', () => {
    const subject = new UpstreamPolicy({ instanceId: 'abc123' });
    expect(subject.via).toBe('1.1 keyway-abc123');
    expect(new UpstreamPolicy().via).toMatch(/^1\.1 keyway-[0-9a-f]{8}$/);
  });

  test('any Keyway hop is recognised; other proxies are not', () => {
    expect(viaNamesKeyway('1.1 keyway-abc123')).toBe(true);
    expect(viaNamesKeyway('1.1 keyway')).toBe(true);
    expect(viaNamesKeyway('1.0 fred, 1.1 KEYWAY-x (Keyway)')).toBe(true);
    expect(viaNamesKeyway('HTTP/1.1 squid.example (squid/6.1), 1.1 keyway-ff')).toBe(true);
    expect(viaNamesKeyway(null)).toBe(false);
    expect(viaNamesKeyway('1.1 varnish, 1.1 proxy.keyway.example')).toBe(false);
    expect(viaNamesKeyway('1.1 nginx (keyway)')).toBe(false);
  });
});
