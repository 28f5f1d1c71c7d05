// Preloaded into a Keyway under bench/idle-rss.ts (`bun --preload`) for an ablation: every module
// whose path (relative to the repository) starts with one of KEYWAY_BENCH_ABLATE's comma-separated
// prefixes is replaced by a stub whose exports are all `undefined`, so neither it nor what it
// imports is loaded. bench/idle-rss/entry.ts drops the built-in plugins whose definition is gone.
// A bench tool only: the gateway never loads it.

import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const root = resolve(import.meta.dir, '..', '..');
const setting = process.env.KEYWAY_BENCH_ABLATE;
const prefixes = (setting ?? '')
  .split(',')
  .map((prefix) => prefix.trim())
  .filter((prefix) => prefix !== '');

// Installed whenever the variable is set, empty too, so the baseline of an ablation carries the same resolver.
if (setting !== undefined) {
  const scanner = new Bun.Transpiler({ loader: 'ts' });
  Bun.plugin({
    name: 'keyway-bench-ablate',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        // Relative and absolute paths only: the ablations remove Keyway's own modules (and what only they import).
        if (!args.path.startsWith('.') && !args.path.startsWith('/')) return undefined;
        const path = relative(root, resolve(dirname(args.importer), args.path));
        const absolute = resolve(root, path);
        return prefixes.some((prefix) => path.startsWith(prefix)) ? { path: absolute, namespace: 'ablated' } : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: 'ablated' }, (args) => {
        const exports = args.path.endsWith('.json') ? [] : scanner.scan(readFileSync(args.path, 'utf8')).exports;
        const named = exports.filter((name) => name !== 'default').map((name) => `export const ${name} = undefined;`);
        return { contents: `${named.join('\n')}\nexport default undefined;\n`, loader: 'js' };
      });
    },
  });
}
