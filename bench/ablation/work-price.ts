// bun bench/ablation/work-price.ts [busy µs,…] [rounds] — what one microsecond of work on the request
// thread costs at c=64: the operator's chat request through Keyway builds whose call stage spins for
// 0, 5, 10, 20 µs (bench/entrypoints/with-busy-work.ts), interleaved rounds, pinned like the load bench
// (Keyway on one core, wrk and the stub on the other). Per build: req/s and CPU per request by thread.
// A policy's cost is paid in this unit: the busy work adds its own time to the request thread, and the
// request costs more than that in all, because the runtime's own per-wake-up work (its HTTP client
// thread, the event loop's turns) is shared by fewer requests when each takes longer.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByThread } from '../load/cpu-time.ts';
import { BENCH_OPERATOR_KEY, BENCH_UPSTREAM_KEY, median, operatorCall, ROOT, runWrk, startKeyway, startStub, writeWrkScript } from '../load/pinned-keyway.ts';
import { stopProcess, waitForHttp } from '../load/processes.ts';

const BUSY = (process.argv[2] ?? '0,5,10,20').split(',').map(Number);
const ROUNDS = Number(process.argv[3] ?? 5);
const SECONDS = 3;
const BODY = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };

interface Sample {
  rate: number;
  main: number;
  total: number;
}

const directory = mkdtempSync(join(tmpdir(), 'keyway-work-price-'));
const stub = startStub(directory);
const entrypoint = join(ROOT, 'bench', 'entrypoints', 'with-busy-work.ts');
const builds = BUSY.map((busy, index) => ({
  busy,
  keyway: startKeyway(`keyway-${index}`, entrypoint, join(directory, `keyway-${index}`), stub.port, { KEYWAY_BENCH_BUSY_US: String(busy) }),
  samples: [] as Sample[],
}));
try {
  const script = join(directory, 'chat.lua');
  writeWrkScript(script, BODY, BENCH_OPERATOR_KEY);
  for (const build of builds) {
    const notReady = await waitForHttp(`${build.keyway.url}/ready`, build.keyway.process, 30_000);
    if (notReady !== undefined) throw new Error(notReady);
    await operatorCall(build.keyway.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
    await runWrk(`${build.keyway.url}/v1/chat/completions`, script, 2);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const build of round % 2 === 1 ? builds : [...builds].reverse()) {
      const before = cpuByThread(build.keyway.process.pid);
      const { rate, non2xx } = await runWrk(`${build.keyway.url}/v1/chat/completions`, script, SECONDS);
      if (non2xx > 0) throw new Error(`busy ${build.busy} µs: ${non2xx} requests were not answered 200`);
      const after = cpuByThread(build.keyway.process.pid);
      const requests = rate * SECONDS;
      const perRequest = (name?: string): number => {
        let sum = 0;
        for (const [thread, nanoseconds] of after) if (name === undefined || thread === name) sum += nanoseconds - (before.get(thread) ?? 0);
        return sum / 1000 / requests;
      };
      build.samples.push({ rate, main: perRequest('main'), total: perRequest() });
      console.log(
        `round ${round} busy ${String(build.busy).padStart(3)} µs: ${Math.round(rate)} req/s, CPU ${perRequest().toFixed(1)} µs/request (main ${perRequest('main').toFixed(1)})`,
      );
    }
  }
  const base = builds[0] as (typeof builds)[number];
  const baseRate = median(base.samples.map((sample) => sample.rate));
  const baseTotal = median(base.samples.map((sample) => sample.total));
  console.log(`\nmedians over ${ROUNDS} rounds (throughput relative to busy ${base.busy} µs):`);
  for (const build of builds) {
    const rate = median(build.samples.map((sample) => sample.rate));
    const total = median(build.samples.map((sample) => sample.total));
    const extra = total - baseTotal;
    console.log(
      `busy ${String(build.busy).padStart(3)} µs: ${Math.round(rate)} req/s (${((rate / baseRate) * 100).toFixed(1)} %), CPU ${total.toFixed(1)} µs/request (+${extra.toFixed(1)}${build.busy > 0 ? `, ${(extra / build.busy).toFixed(2)} µs per busy µs` : ''})`,
    );
  }
} finally {
  for (const build of builds) await stopProcess(build.keyway.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
