// bun bench/upstream-client.ts — issue 15: a purpose-built upstream HTTP/1.1 client (keep-alive pool over
// Bun.connect) against `fetch`, in the same pass-through, pinned to one core with wrk and the stub on
// the other, interleaved rounds. Reported: requests per second and CPU microseconds per request by
// thread (fetch hands the exchange to Bun's HTTP client thread; the pool does it on the JS thread).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByThread, cpuPerRequest } from './load/cpu-time.ts';
import { BENCH_UPSTREAM_KEY, median, ROOT, runWrk, startStub, writeWrkScript } from './load/pinned-keyway.ts';
import { findFreePort, PROXY_CORE, startPinned, stopProcess, waitForHttp } from './load/processes.ts';
import { buildChatBody } from './load/requests.ts';

const ROUNDS = 3;
const SECONDS = 5;
const directory = mkdtempSync(join(tmpdir(), 'keyway-upstream-client-'));
const stub = startStub(directory);
const script = join(directory, 'chat.lua');
writeWrkScript(script, JSON.parse(buildChatBody()), BENCH_UPSTREAM_KEY);
const variants = (['fetch', 'connect', 'pool'] as const).map((client) => {
  const port = findFreePort();
  const process_ = startPinned(
    client,
    PROXY_CORE,
    [process.execPath, join(ROOT, 'bench', 'upstream-client', 'passthrough.ts')],
    { PASSTHROUGH_PORT: String(port), PASSTHROUGH_UPSTREAM: `http://127.0.0.1:${stub.port}`, UPSTREAM_CLIENT: client },
    join(directory, `${client}.out`),
  );
  return { client, process: process_, url: `http://127.0.0.1:${port}/v1/chat/completions`, rates: [] as number[], cpu: [] as number[], threads: '' };
});
try {
  for (const variant of variants) {
    // The pass-through forwards the readiness probe too: the stub answers it with 200 once both listen.
    const notReady = await waitForHttp(variant.url.replace('/v1/chat/completions', '/v1/models'), variant.process, 10_000, 200, {
      authorization: `Bearer ${BENCH_UPSTREAM_KEY}`,
    });
    if (notReady !== undefined) throw new Error(notReady);
    await runWrk(variant.url, script, 2);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of variants) {
      const before = cpuByThread(variant.process.pid);
      const { rate, non2xx } = await runWrk(variant.url, script, SECONDS);
      if (non2xx > 0) throw new Error(`${variant.client}: ${non2xx} answers were not 200`);
      const cpu = cpuPerRequest(before, cpuByThread(variant.process.pid), rate * SECONDS);
      variant.rates.push(rate);
      variant.cpu.push(cpu.total);
      variant.threads = cpu.threads;
    }
  }
  for (const variant of variants) {
    console.log(
      `${variant.client.padEnd(8)} ${Math.round(median(variant.rates))} req/s (${variant.rates.map(Math.round).join(', ')}), ` +
        `${median(variant.cpu).toFixed(1)} µs CPU per request (${variant.threads})`,
    );
  }
} finally {
  for (const variant of variants) await stopProcess(variant.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
