// Builds the single-file gateway binary (`npm run build:binary` → dist/keyway). Tests import
// `buildBinary` to build into a temporary directory instead.

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { USAGE_WRITER_ENTRY_POINT } from '../plugins/store-sqlite/usage-writer-client.ts';
import { TOKENIZER_WORKER_ENTRY_POINT } from '../providers/openai/tokenizer.ts';

export const REPOSITORY_ROOT = resolve(import.meta.dir, '..');
export const ENTRY_POINT = resolve(REPOSITORY_ROOT, 'plugins/main.ts');
/**
 * Worker threads are separate entry points: bun embeds each in the binary next to the gateway, under
 * its path from `--root` (the repository), which is the path the binary starts it from. The paths come
 * from the modules that start the threads, so the two cannot drift apart.
 */
export const WORKER_ENTRY_POINTS = [USAGE_WRITER_ENTRY_POINT, TOKENIZER_WORKER_ENTRY_POINT].map((path) => resolve(REPOSITORY_ROOT, path));
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
 * `--compile-exec-argv=--smol` runs the binary as `bun --smol` runs `npm start`: a smaller JavaScript
 * heap under load at no measured throughput cost (bench/RESULTS.md, 2026-12-06 session 2).
 * `--bytecode-order` (second pass, buildBinary) lays out first the bytecode a recorded start used.
 * `--root` pins the embedded layout to the repository's: each entry point sits at its path from the
 * repository root, the path the gateway starts a worker thread from when compiled. Without it bun
 * takes the entry points' common folder, which moves if an entry point does.
 * No `--target`: the host platform needs no download; pass `--target=bun-linux-arm64` etc. by hand
 * to cross-compile.
 */
export function buildArguments(outfile: string, bytecodeOrder?: string): string[] {
  return [
    'build',
    '--compile',
    '--minify',
    '--sourcemap',
    '--no-compile-autoload-bunfig',
    '--compile-autoload-package-json',
    '--bytecode',
    '--compile-exec-argv=--smol',
    `--root=${REPOSITORY_ROOT}`,
    ...(bytecodeOrder === undefined ? [] : [`--bytecode-order=${bytecodeOrder}`]),
    ENTRY_POINT,
    ...WORKER_ENTRY_POINTS,
    '--outfile',
    outfile,
  ];
}

export interface BuildOptions {
  /** Lay the bytecode out by a recorded start (recordStartOrder); on by default. */
  profile?: boolean;
  /** Where a failed profile is reported; the build then keeps the unprofiled binary. */
  warn?: (message: string) => void;
}

async function compile(outfile: string, bytecodeOrder?: string): Promise<void> {
  // process.execPath is the Bun running this script (node_modules/.bin/bun under npm), so the
  // binary embeds the same runtime version the tests ran against.
  const build = Bun.spawn([process.execPath, ...buildArguments(outfile, bytecodeOrder)], { cwd: REPOSITORY_ROOT, stdout: 'pipe', stderr: 'pipe' });
  const [exitCode, output, errors] = await Promise.all([build.exited, new Response(build.stdout).text(), new Response(build.stderr).text()]);
  if (exitCode !== 0) throw new Error(`bun build failed with exit code ${exitCode}:\n${output}\n${errors}`);
  rmSync(`${outfile}.map`, { force: true });
  for (const worker of WORKER_ENTRY_POINTS) rmSync(join(dirname(outfile), `${basename(worker, '.ts')}.js.map`), { force: true });
  if (!existsSync(outfile)) throw new Error(`bun build reported success but wrote no ${outfile}`);
}

/** `promise`, or `fallback` after `ms`; the timer does not outlive the race (it would hold the build's process open). */
async function within<Value>(promise: Promise<Value>, ms: number, fallback: Value): Promise<Value> {
  let timer: Timer | undefined;
  const late = new Promise<Value>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port the kernel just handed out, for the profiling run. */
function freePort(): number {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

/**
 * Runs the freshly built binary once, in a scratch folder, from start until it has listened and
 * settled, with BUN_BYTECODE_ORDER_OUT: the binary writes which functions that run used when it
 * exits. `--bytecode-order` then places their bytecode together at the front, so a started
 * gateway maps fewer pages of its executable (idle RSS about 3 MiB lower, bench/RESULTS.md
 * 2026-12-06 session 2). Returns the order file, or why there is none.
 */
export async function recordStartOrder(binary: string, scratch: string): Promise<{ order: string } | { problem: string }> {
  const order = join(scratch, 'bytecode-order.txt');
  const child = Bun.spawn([binary], {
    cwd: scratch,
    // Only what the run needs: the builder's own KEYWAY_ settings (extra plugins, a database) stay out.
    env: {
      PATH: process.env.PATH ?? '',
      KEYWAY_HOST: '127.0.0.1',
      KEYWAY_PORT: String(freePort()),
      KEYWAY_DATA_DIR: join(scratch, 'data'),
      KEYWAY_DATABASE_URL: `file:${join(scratch, 'data', 'keyway.db')}`,
      KEYWAY_WORKERS: '1',
      KEYWAY_LOG_LEVEL: 'info',
      BUN_BYTECODE_ORDER_OUT: order,
    },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const listening = (async () => {
    let text = '';
    for await (const chunk of child.stdout) {
      text += new TextDecoder().decode(chunk);
      if (text.includes('Keyway listening')) return true;
    }
    return false;
  })();
  const started = await within(listening, 30_000, false);
  // Past the start-up release (plugins/main.ts) and the first ticks of the background jobs.
  if (started) await Bun.sleep(1500);
  child.kill('SIGTERM');
  const exited = await within<number | undefined>(child.exited, 10_000, undefined);
  if (exited === undefined) child.kill('SIGKILL');
  if (!started) return { problem: `the binary did not start: ${(await new Response(child.stderr).text()).slice(0, 500)}` };
  return existsSync(order) ? { order } : { problem: 'the binary wrote no bytecode order file' };
}

export async function buildBinary(outfile: string = DEFAULT_OUTFILE, options: BuildOptions = {}): Promise<BinaryBuild> {
  mkdirSync(dirname(outfile), { recursive: true });
  const started = performance.now();
  await compile(outfile);
  if (options.profile !== false) {
    const scratch = mkdtempSync(join(tmpdir(), 'keyway-bytecode-order-'));
    try {
      const recorded = await recordStartOrder(outfile, scratch);
      if ('order' in recorded) await compile(outfile, recorded.order);
      else
        (options.warn ?? ((message) => process.stderr.write(`${message}\n`)))(
          `bytecode order not recorded (${recorded.problem}); the binary is built without it`,
        );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
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
