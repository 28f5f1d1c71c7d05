// Starting Keyway runs a large part of the runtime's own machine code once (the parser, the transpiler,
// the module loader, SQLite's schema code): about 35 MiB of the Bun executable's text and read-only
// data stay mapped and resident afterwards, counted in the idle process's RSS, though a quiet gateway
// never runs them again. They are clean pages of a file: the kernel may drop them at any time and read
// them back on use. Asking it to drop them once start-up is over (madvise MADV_DONTNEED on the
// executable's read-only, never-copied mappings) leaves resident only what serving touches again; a
// page that is needed comes back from the page cache on its first use (a minor fault, no disk read
// while the file stays cached). Writable mappings and any mapping holding a private copy of a page
// (a relocation, say) are left alone: dropping those would lose data.

import { readFileSync, readlinkSync } from 'node:fs';

const MADV_DONTNEED = 4;

export interface CodeRange {
  start: number;
  length: number;
}

/**
 * The executable's mappings that can be dropped losslessly, read from /proc/self/smaps text: mapped
 * from `executable`, not writable, and with no anonymous (copied-on-write) page.
 */
export function releasableRanges(smaps: string, executable: string): CodeRange[] {
  const ranges: CodeRange[] = [];
  let current: { start: number; end: number; eligible: boolean } | undefined;
  const close = (): void => {
    if (current?.eligible === true) ranges.push({ start: current.start, length: current.end - current.start });
    current = undefined;
  };
  for (const line of smaps.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      close();
      const [, start = '0', end = '0', permissions = '', path = ''] = header;
      current = { start: Number.parseInt(start, 16), end: Number.parseInt(end, 16), eligible: path === executable && !permissions.includes('w') };
      continue;
    }
    const anonymous = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anonymous !== null && current !== undefined && anonymous[1] !== '0') current.eligible = false;
  }
  close();
  return ranges;
}

/**
 * Drops the runtime's resident code pages that start-up left behind; answers how many bytes were
 * offered back (0 where it cannot run: not Linux, no libc to call, no /proc).
 */
export async function releaseRuntimeCodePages(): Promise<number> {
  if (process.platform !== 'linux') return 0;
  try {
    const executable = readlinkSync('/proc/self/exe');
    const ranges = releasableRanges(readFileSync('/proc/self/smaps', 'utf8'), executable);
    if (ranges.length === 0) return 0;
    const { dlopen, FFIType } = await import('bun:ffi');
    const libc = dlopen('libc.so.6', { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
    let released = 0;
    for (const range of ranges) if (libc.symbols.madvise(range.start, range.length, MADV_DONTNEED) === 0) released += range.length;
    libc.close();
    return released;
  } catch {
    // Best effort: a libc other than glibc, or a kernel without /proc, keeps the pages where they are.
    return 0;
  }
}
