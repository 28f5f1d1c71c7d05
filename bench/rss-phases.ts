// bun bench/rss-phases.ts — one Keyway's RSS after each of PHASES (6) phases of 20 s at c=64 (operator
// key, pinned like the load bench): whether memory keeps growing with the requests served or levels
// off. The load bench's single 100k → 1M reading moves by ±15 % run to run; this shows the trend.
// PROBE_ROOT=<checkout> runs another checkout's gateway.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runWrk, startKeyway, startStub, writeWrkScript, BENCH_OPERATOR_KEY } from './load/pinned-keyway.ts';
import { stopProcess, waitForHttp } from './load/processes.ts';

const root = process.env.PROBE_ROOT ?? ROOT;
const directory = mkdtempSync(join(tmpdir(), 'rss-probe-'));
const stub = startStub(directory);
const keyway = startKeyway('keyway', join(root, 'plugins', 'main.ts'), join(directory, 'keyway'), stub.port);
const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${keyway.process.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
try {
  const notReady = await waitForHttp(`${keyway.url}/ready`, keyway.process, 30_000);
  if (notReady !== undefined) throw new Error(notReady);
  const script = join(directory, 'op.lua');
  writeWrkScript(script, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(900) }] }, BENCH_OPERATOR_KEY);
  let total = 0;
  for (let phase = 1; phase <= Number(process.env.PHASES ?? 6); phase++) {
    const { rate } = await runWrk(`${keyway.url}/v1/chat/completions`, script, 20);
    total += rate * 20;
    await Bun.sleep(2000);
    console.log(`phase ${phase}: ~${Math.round(total / 1000)}k requests, RSS ${rss().toFixed(1)} MiB`);
  }
} finally {
  await stopProcess(keyway.process);
  await stopProcess(stub.process);
}
