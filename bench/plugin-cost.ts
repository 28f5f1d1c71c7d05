// bun bench/plugin-cost.ts <plugin,…> — what built-in plugins cost the request path: throughput and
// p99 at c=64 of the full gateway against a build without the named plugins
// (bench/entrypoints/without-plugins.ts), interleaved rounds, each Keyway pinned to the same core, wrk and
// the stub to the other. Operator key, one chat request, as bench/load.ts sends it.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findFreePort, LOAD_CORE, PROXY_CORE, startPinned, stopProcess, waitForHttp } from './load/processes.ts';

const ROOT = resolve(import.meta.dir, '..');
const OPERATOR_KEY = 'kw_op_benchadminkey0123456789abcdef';
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SECONDS = Number(process.env.SECONDS ?? 6);

interface Build {
  name: string;
  entrypoint: string;
  env: Record<string, string>;
  rates: number[];
  p99s: number[];
  url: string;
}

async function wrk(url: string, script: string, seconds: number): Promise<{ rate: number; p99Ms: number; non2xx: number }> {
  const child = Bun.spawn(['taskset', '-c', String(LOAD_CORE), 'wrk', '-t1', '-c64', `-d${seconds}s`, '--latency', '-s', script, url], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const text = await new Response(child.stdout).text();
  await child.exited;
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 'NaN');
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const p99Ms = p99 === null ? Number.NaN : Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? '0');
  return { rate, p99Ms, non2xx };
}

const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
const spread = (values: number[]): string => `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;

const directory = mkdtempSync(join(tmpdir(), 'keyway-plugin-cost-'));
const stubPort = findFreePort();
const stub = startPinned(
  'stub',
  LOAD_CORE,
  [process.execPath, join(ROOT, 'bench', 'upstream-stub.ts')],
  { STUB_PORT: String(stubPort) },
  join(directory, 'stub.out'),
);
const without = process.argv[2] ?? '';
if (without === '') throw new Error('usage: bun bench/plugin-cost.ts <plugin,plugin,…>');
const builds: Build[] = [
  { name: 'every built-in plugin', entrypoint: join(ROOT, 'plugins', 'main.ts'), env: {}, rates: [], p99s: [], url: '' },
  {
    name: `without ${without}`,
    entrypoint: join(ROOT, 'bench', 'entrypoints', 'without-plugins.ts'),
    env: { KEYWAY_BENCH_WITHOUT: without },
    rates: [],
    p99s: [],
    url: '',
  },
];
const processes = builds.map((build, index) => {
  const port = findFreePort();
  build.url = `http://127.0.0.1:${port}`;
  const data = join(directory, `keyway-${index}`);
  return startPinned(
    `keyway-${index}`,
    PROXY_CORE,
    [process.execPath, build.entrypoint],
    {
      KEYWAY_HOST: '127.0.0.1',
      KEYWAY_PORT: String(port),
      KEYWAY_DATA_DIR: data,
      KEYWAY_DATABASE_URL: `file:${join(data, 'keyway.db')}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_LOG_LEVEL: 'warn',
      KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${stubPort}/v1`,
      ...build.env,
    },
    join(directory, `keyway-${index}.out`),
  );
});
try {
  const script = join(directory, 'chat.lua');
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] });
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${OPERATOR_KEY}"\n`,
  );
  for (const [index, build] of builds.entries()) {
    const notReady = await waitForHttp(`${build.url}/ready`, processes[index] as never, 30_000);
    if (notReady !== undefined) throw new Error(`${build.name}: ${notReady}`);
    const response = await fetch(`${build.url}/v1/providers/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ providers: [{ name: 'openai', api_key: 'sk-bench-upstream-key' }] }),
    });
    if (!response.ok) throw new Error(`${build.name}: adding the provider key answered ${response.status}`);
    await wrk(`${build.url}/v1/chat/completions`, script, 2);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const build of round % 2 === 0 ? [...builds].reverse() : builds) {
      const { rate, p99Ms, non2xx } = await wrk(`${build.url}/v1/chat/completions`, script, SECONDS);
      if (non2xx > 0) throw new Error(`${build.name}: ${non2xx} requests were not answered 200`);
      build.rates.push(rate);
      build.p99s.push(p99Ms);
      console.log(`round ${round} ${build.name.padEnd(40)} ${Math.round(rate)} req/s, p99 ${p99Ms.toFixed(2)} ms`);
    }
  }
  for (const build of builds) {
    console.log(
      `${build.name.padEnd(40)} median ${Math.round(median(build.rates))} req/s (rounds ${spread(build.rates)}), p99 median ${median(build.p99s).toFixed(2)} ms`,
    );
  }
  const [full, reduced] = builds as [Build, Build];
  console.log(`full / without: ${((median(full.rates) / median(reduced.rates)) * 100).toFixed(1)}% throughput`);
} finally {
  for (const child of processes) await stopProcess(child);
  await stopProcess(stub);
  rmSync(directory, { recursive: true, force: true });
}
