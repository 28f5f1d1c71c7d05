import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { releasableRanges, releaseRuntimeCodePages } from '../../core/process/release-code-pages.ts';

const EXECUTABLE = '/opt/bun/bin/bun';

function mapping(range: string, permissions: string, path: string, anonymousKb: number): string {
  return [`${range} ${permissions} 00000000 fe:00 42  ${path}`, 'Size:  100 kB', 'Rss:  80 kB', `Anonymous:  ${anonymousKb} kB`, 'VmFlags: rd mr mw me'].join(
    '\n',
  );
}

describe('releasableRanges', () => {
  test('keeps only the executable’s read-only mappings that hold no private copy of a page', () => {
    const smaps = [
      mapping('00200000-00300000', 'r--p', EXECUTABLE, 0),
      mapping('00300000-00500000', 'r-xp', EXECUTABLE, 0),
      mapping('00500000-00510000', 'rw-p', EXECUTABLE, 0),
      mapping('00510000-00520000', 'r--p', EXECUTABLE, 12),
      mapping('00600000-00700000', 'r-xp', '/usr/lib/x86_64-linux-gnu/libc.so.6', 0),
      mapping('00700000-00800000', 'rw-p', '', 1024),
      mapping('00800000-00900000', 'r-xp', `${EXECUTABLE} (deleted)`, 0),
    ].join('\n');
    expect(releasableRanges(smaps, EXECUTABLE)).toEqual([
      { start: 0x200000, length: 0x100000 },
      { start: 0x300000, length: 0x200000 },
    ]);
  });

  test('a mapping without an Anonymous line is judged by its permissions alone', () => {
    expect(releasableRanges(`00200000-00201000 r-xp 00000000 fe:00 42  ${EXECUTABLE}`, EXECUTABLE)).toEqual([{ start: 0x200000, length: 0x1000 }]);
    expect(releasableRanges(`00200000-00201000 rwxp 00000000 fe:00 42  ${EXECUTABLE}`, EXECUTABLE)).toEqual([]);
  });
});

const residentFileKb = (): number => Number(/^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'NaN');

describe.skipIf(process.platform !== 'linux')('releaseRuntimeCodePages', () => {
  test('drops resident pages of the runtime, and the runtime keeps working', async () => {
    const before = residentFileKb();
    const released = await releaseRuntimeCodePages();
    const after = residentFileKb();
    expect(released).toBeGreaterThan(0);
    expect(after).toBeLessThan(before);
    // Code the release dropped comes back from the file on use: parse, hash, serve and fetch.
    expect(JSON.parse('{"a":[1,2,3]}')).toEqual({ a: [1, 2, 3] });
    expect(new Bun.CryptoHasher('sha256').update('keyway').digest('hex')).toHaveLength(64);
    const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => Response.json({ ok: true }) });
    try {
      expect(await (await fetch(`http://127.0.0.1:${server.port}/`)).json()).toEqual({ ok: true });
    } finally {
      server.stop(true);
    }
  });
});
