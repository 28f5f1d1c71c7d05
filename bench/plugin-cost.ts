// bun bench/plugin-cost.ts <plugin,…> — what built-in plugins cost the request path: throughput and
// p99 at c=64 of the full gateway against a build without the named plugins
// (bench/entrypoints/without-plugins.ts), interleaved rounds, each Keyway pinned to the same core, wrk and
// the stub to the other (bench/load/pinned-keyway.ts). Operator key, one chat request.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareBuilds, median, ROOT } from './load/pinned-keyway.ts';

const without = process.argv[2] ?? '';
if (without === '') throw new Error('usage: bun bench/plugin-cost.ts <plugin,plugin,…>');
const directory = mkdtempSync(join(tmpdir(), 'keyway-plugin-cost-'));
try {
  const [full, reduced] = await compareBuilds(
    directory,
    [
      { name: 'every built-in plugin', entrypoint: join(ROOT, 'plugins', 'main.ts'), env: {} },
      { name: `without ${without}`, entrypoint: join(ROOT, 'bench', 'entrypoints', 'without-plugins.ts'), env: { KEYWAY_BENCH_WITHOUT: without } },
    ],
    Number(process.env.ROUNDS ?? 5),
    Number(process.env.SECONDS ?? 6),
  );
  if (full !== undefined && reduced !== undefined)
    console.log(`full / without: ${((median(full.rates) / median(reduced.rates)) * 100).toFixed(1)}% throughput`);
} finally {
  rmSync(directory, { recursive: true, force: true });
}
