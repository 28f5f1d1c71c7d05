// Builds the single-file gateway binary (`npm run build:binary` → dist/keyway). Tests import
// `buildBinary` to build into a temporary directory instead.

import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export const REPOSITORY_ROOT = resolve(import.meta.dir, '..');
export const ENTRY_POINT = resolve(REPOSITORY_ROOT, 'plugins/main.ts');
/** Worker threads are separate entry points: bun embeds each in the binary next to the gateway. */
export const WORKER_ENTRY_POINT = resolve(REPOSITORY_ROOT, 'plugins/store-sqlite/usage-writer.ts');
export const DEFAULT_OUTFILE = resolve(REPOSITORY_ROOT, 'dist/keyway');

export interface BinaryBuild {
  outfile: string;
  bytes: number;
  buildMilliseconds: number;
}

/**
 * `--sourcemap` embeds a zstd-compressed map in the executable (stack traces point at the .ts
 * sources); Bun 1.4 also writes `<outfile>.map`, which nothing reads, so it is removed to keep
 * the artefact one file. `--no-compile-autoload-bunfig` stops a bunfig.toml in whatever directory
 * the binary runs from (its `preload` list, for one) from changing what the gateway runs.
 * `--compile-autoload-package-json` lets modules loaded from disk at run time (KEYWAY_PLUGINS)
 * import npm packages from their own node_modules: without it a standalone executable resolves
 * no bare specifier outside itself ("Cannot find package '@sinclair/typebox'").
 * `--bytecode` precompiles to JavaScriptCore bytecode: spawn-to-ready drops from about 150 ms to
 * about 80 ms for 4 MiB more binary (docs/binary.md has the figures).
 * No `--target`: the host platform needs no download; pass `--target=bun-linux-arm64` etc. by hand
 * to cross-compile.
 */
export function buildArguments(outfile: string): string[] {
  return [
    'build',
    '--compile',
    '--minify',
    '--sourcemap',
    '--no-compile-autoload-bunfig',
    '--compile-autoload-package-json',
    '--bytecode',
    ENTRY_POINT,
    WORKER_ENTRY_POINT,
    '--outfile',
    outfile,
  ];
}

export async function buildBinary(outfile: string = DEFAULT_OUTFILE): Promise<BinaryBuild> {
  mkdirSync(dirname(outfile), { recursive: true });
  const started = performance.now();
  // process.execPath is the Bun running this script (node_modules/.bin/bun under npm), so the
  // binary embeds the same runtime version the tests ran against.
  const build = Bun.spawn([process.execPath, ...buildArguments(outfile)], { cwd: REPOSITORY_ROOT, stdout: 'pipe', stderr: 'pipe' });
  const [exitCode, output, errors] = await Promise.all([build.exited, new Response(build.stdout).text(), new Response(build.stderr).text()]);
  if (exitCode !== 0) throw new Error(`bun build failed with exit code ${exitCode}:\n${output}\n${errors}`);
  rmSync(`${outfile}.map`, { force: true });
  rmSync(join(dirname(outfile), `${basename(WORKER_ENTRY_POINT, '.ts')}.js.map`), { force: true });
  if (!existsSync(outfile)) throw new Error(`bun build reported success but wrote no ${outfile}`);
  return { outfile, bytes: statSync(outfile).size, buildMilliseconds: Math.round(performance.now() - started) };
}

export function formatMegabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

if (import.meta.main) {
  const outfile = process.argv[2] === undefined ? DEFAULT_OUTFILE : resolve(process.argv[2]);
  const result = await buildBinary(outfile);
  process.stdout.write(`built ${result.outfile}: ${formatMegabytes(result.bytes)} (${result.bytes} bytes) in ${result.buildMilliseconds} ms\n`);
}
