// KEYWAY_COMPARE_CHECKOUT=<other checkout> bun bench/team-policies-ab.ts — bench/team-policies.ts for two
// builds at once: this checkout and another (e.g. main), or this one without some plugins
// (KEYWAY_COMPARE_WITHOUT=audit), both running, pinned alike, rounds interleaved (the order flips
// every round), operator then member on each. Per round and build it records CPU µs
// per request by thread; the member's extra cost is taken within a round (member − operator of the
// same build, minutes apart at most), and the medians of those are compared: on a busy shared machine
// req/s moves by a third between rounds, the paired CPU difference much less.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuByThread } from './load/cpu-time.ts';
import { median, prepareTeamScripts, ROOT, runWrk, startKeyway, startStub } from './load/pinned-keyway.ts';
import { stopProcess, waitForHttp } from './load/processes.ts';

const ROUNDS = Number(process.env.KEYWAY_BENCH_ROUNDS ?? 8);
const SECONDS = Number(process.env.KEYWAY_BENCH_SECONDS ?? 3);
/** A run that answered fewer requests than this stalled (see the rounds loop). */
const STALLED_REQUESTS = 1000;
const OTHER = process.env.KEYWAY_COMPARE_CHECKOUT;
// KEYWAY_COMPARE_WITHOUT=audit,… compares with this checkout built without those plugins instead.
const WITHOUT = process.env.KEYWAY_COMPARE_WITHOUT;
// KEYWAY_COMPARE_ENV='NAME=value …' runs the other build with these variables too (with neither of the
// above: this checkout with them), e.g. the runtime's own settings (BUN_JSC_…).
const COMPARE_ENV = Object.fromEntries(
  (process.env.KEYWAY_COMPARE_ENV ?? '')
    .split(' ')
    .filter((entry) => entry.includes('='))
    .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
);
if (OTHER === undefined && WITHOUT === undefined && Object.keys(COMPARE_ENV).length === 0)
  throw new Error('KEYWAY_COMPARE_CHECKOUT (a checkout), KEYWAY_COMPARE_WITHOUT (plugin names) or KEYWAY_COMPARE_ENV must say what to compare with');
const BODY = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };

interface Sample {
  rate: number;
  /** µs of CPU per request, all threads, and by thread. */
  total: number;
  byThread: Map<string, number>;
}

function cpuSample(before: Map<string, number>, after: Map<string, number>, requests: number, rate: number): Sample {
  const byThread = new Map<string, number>();
  let total = 0;
  for (const [name, nanoseconds] of after) {
    const perRequest = (nanoseconds - (before.get(name) ?? 0)) / 1000 / requests;
    total += perRequest;
    // Threads by role: JIT and GC helpers together, the gateway thread, the HTTP client, the SQLite writer.
    const role = name === 'main' || name === 'HTTP Client' || name === 'Worker' ? name : 'other';
    byThread.set(role, (byThread.get(role) ?? 0) + perRequest);
  }
  return { rate, total, byThread };
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-team-ab-'));
const stub = startStub(directory);
const checkouts: Array<{ name: string; root: string; entrypoint: string; env: Record<string, string> }> = [
  { name: 'this', root: ROOT, entrypoint: join(ROOT, 'plugins', 'main.ts'), env: {} },
  OTHER !== undefined
    ? { name: 'other', root: resolve(OTHER), entrypoint: join(resolve(OTHER), 'plugins', 'main.ts'), env: COMPARE_ENV }
    : WITHOUT !== undefined
      ? {
          name: 'other',
          root: `${ROOT} without ${WITHOUT}`,
          entrypoint: join(ROOT, 'bench', 'entrypoints', 'without-plugins.ts'),
          env: { ...COMPARE_ENV, KEYWAY_BENCH_WITHOUT: WITHOUT },
        }
      : { name: 'other', root: `${ROOT} with ${process.env.KEYWAY_COMPARE_ENV}`, entrypoint: join(ROOT, 'plugins', 'main.ts'), env: COMPARE_ENV },
];
const builds = checkouts.map((checkout, index) => ({
  ...checkout,
  keyway: startKeyway(`keyway-${index}`, checkout.entrypoint, join(directory, `keyway-${index}`), stub.port, checkout.env),
  scripts: { operator: '', member: '' },
  samples: { operator: [] as Sample[], member: [] as Sample[] },
}));
try {
  for (const build of builds) {
    const baseUrl = build.keyway.url;
    const notReady = await waitForHttp(`${baseUrl}/ready`, build.keyway.process, 30_000);
    if (notReady !== undefined) throw new Error(`${build.name}: ${notReady}`);
    build.scripts = { operator: join(directory, `${build.name}-operator.lua`), member: join(directory, `${build.name}-member.lua`) };
    await prepareTeamScripts(baseUrl, BODY, build.scripts);
    await runWrk(`${baseUrl}/v1/chat/completions`, build.scripts.operator, 2);
    await runWrk(`${baseUrl}/v1/chat/completions`, build.scripts.member, 2);
  }
  let stalled = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    const taken: Array<{ build: (typeof builds)[number]; path: 'operator' | 'member'; sample: Sample }> = [];
    for (const build of order) {
      for (const path of ['operator', 'member'] as const) {
        const before = cpuByThread(build.keyway.process.pid);
        const { rate, non2xx } = await runWrk(`${build.keyway.url}/v1/chat/completions`, build.scripts[path], SECONDS);
        if (non2xx > 0) throw new Error(`${build.name} ${path}: ${non2xx} requests were not answered 200`);
        const sample = cpuSample(before, cpuByThread(build.keyway.process.pid), rate * SECONDS, rate);
        taken.push({ build, path, sample });
        const threads = [...sample.byThread].map(([name, value]) => `${name} ${value.toFixed(1)}`).join(', ');
        console.log(
          `round ${round} ${build.name.padEnd(5)} ${path.padEnd(8)} ${Math.round(rate)} req/s, CPU ${sample.total.toFixed(1)} µs/request (${threads})`,
        );
      }
    }
    // On a shared machine a run sometimes answers (almost) nothing for seconds: another process held
    // the pinned core. Such a round measures the stall, not a build: it is run again, and counted.
    if (taken.some(({ sample }) => sample.rate * SECONDS < STALLED_REQUESTS) && stalled < ROUNDS) {
      stalled++;
      console.log(`round ${round}: a run answered under ${STALLED_REQUESTS} requests (a stall), run again`);
      round--;
      continue;
    }
    for (const { build, path, sample } of taken) build.samples[path].push(sample);
  }
  if (stalled > 0) console.log(`\n${stalled} stalled round(s) were run again`);
  console.log(`\nmedians [ranges] over ${ROUNDS} rounds (member − operator taken within each round), µs of CPU per request:`);
  for (const build of builds) {
    const extra = (pick: (sample: Sample) => number) =>
      median(build.samples.member.map((member, index) => pick(member) - pick(build.samples.operator[index] as Sample)));
    const ratios = build.samples.member.map((member, index) => member.rate / (build.samples.operator[index] as Sample).rate);
    const ratio = median(ratios);
    const extras = build.samples.member.map((member, index) => member.total - (build.samples.operator[index] as Sample).total);
    const range = (values: number[], scale: number) => `${(Math.min(...values) * scale).toFixed(1)}–${(Math.max(...values) * scale).toFixed(1)}`;
    const roles = ['main', 'HTTP Client', 'Worker', 'other']
      .map((role) => `${role} ${extra((sample) => sample.byThread.get(role) ?? 0).toFixed(1)}`)
      .join(', ');
    console.log(
      `${build.name.padEnd(5)} (${build.root}): operator ${median(build.samples.operator.map((sample) => sample.total)).toFixed(1)}, member ${median(build.samples.member.map((sample) => sample.total)).toFixed(1)}; member extras ${extra((sample) => sample.total).toFixed(1)} [${range(extras, 1)}] (${roles}); member/operator req/s ${(ratio * 100).toFixed(1)}% [${range(ratios, 100)}]`,
    );
  }
} finally {
  for (const build of builds) await stopProcess(build.keyway.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
