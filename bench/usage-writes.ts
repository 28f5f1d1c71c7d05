// bun bench/usage-writes.ts — what writing usage (the row, its journal entry and the roll-ups) costs the
// request path: throughput and latency at c=64 of the real gateway against a build whose store drops
// usage rows (bench/entrypoints/no-usage-writes.ts, journal off), interleaved rounds, each Keyway pinned
// to the same core, wrk and the stub to the other (bench/load/pinned-keyway.ts). Target (issue 10): no
// measurable difference. ABLATIONS=1 adds the builds that show where the cost is; ROUNDS and SECONDS
// set the length.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Build, compareBuilds, median, ROOT } from './load/pinned-keyway.ts';

const MAIN = join(ROOT, 'plugins', 'main.ts');
const DROPPING = join(ROOT, 'bench', 'entrypoints', 'no-usage-writes.ts');
const builds: Build[] = [
  { name: 'usage written (row, journal, roll-up)', entrypoint: MAIN, env: {} },
  { name: 'usage not written', entrypoint: DROPPING, env: { KEYWAY_USAGE_JOURNAL: 'off' } },
];
if (process.env.ABLATIONS === '1') {
  builds.push(
    { name: 'written on the gateway thread', entrypoint: MAIN, env: { KEYWAY_USAGE_WRITER: 'inline' } },
    { name: 'written, journal off', entrypoint: MAIN, env: { KEYWAY_USAGE_JOURNAL: 'off' } },
    { name: 'written, no roll-ups', entrypoint: DROPPING, env: { KEYWAY_BENCH_DROP: 'rollups' } },
  );
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-usage-bench-'));
try {
  const [written, dropped] = await compareBuilds(directory, builds, Number(process.env.ROUNDS ?? 5), Number(process.env.SECONDS ?? 6));
  if (written !== undefined && dropped !== undefined) {
    console.log(`written / not written: ${((median(written.rates) / median(dropped.rates)) * 100).toFixed(1)}% throughput`);
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
