// The load bench's CI-sized guard (issue 15): a few seconds of wrk at c=64 against Keyway and against
// the 30-line Bun pass-through, on the same machine, the same stub and the same method as
// `npm run bench:load` (bench/load/: Keyway and the pass-through pinned to one core, wrk and the stub
// to the other). Keyway under the floor fails the build, so a regression on the hot path is caught by
// the change that makes it. Skipped, saying so, only when wrk is not installed (.ci/run installs it).
//
// The floor is issue 15's 0.6× once Keyway reaches it. It does not yet: with every built-in plugin
// loaded, Keyway serves 0.38–0.42× the pass-through on this machine kind (bench/RESULTS.md,
// 2026-12-06 session 2; this test measured 0.43×; the session before, 0.25–0.30× and a floor of
// 0.18×), so the floor stands at 0.28×, under today's level by more than the noise of a few short
// rounds on a busy CI box (a regression of about a third fails), and is raised as the hot path gets
// faster. A 0.6 floor today would only make every build red.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startKeyway } from '../../bench/load/keyway.ts';
import type { PinnedProcess } from '../../bench/load/processes.ts';
import { findFreePort, LOAD_CORE, logTail, pinChildrenOnly, startPassthrough, startPinned, stopAllChildren, waitForHttp } from '../../bench/load/processes.ts';
import { ADMIN_API_KEY, buildChatBody, UPSTREAM_API_KEY } from '../../bench/load/requests.ts';
import { errorCount, runWrk } from '../../bench/load/wrk.ts';

/** Raise toward issue 15's 0.6 as the hot path gets there (see the header). */
const MINIMUM_SHARE = 0.28;
const WARM_UP_SECONDS = 4;
const ROUNDS = 5;
const SECONDS_PER_ROUND = 1;
const CONNECTIONS = 64;
const BENCH = resolve(import.meta.dir, '../../bench');

const wrkMissing = Bun.which('wrk') === null;
if (wrkMissing) console.warn('load smoke test skipped: wrk is not installed (apt-get install wrk; .ci/run installs it)');

const scratch = mkdtempSync(join(tmpdir(), 'keyway-load-smoke-'));
const paths: Array<{ name: 'keyway' | 'bun-passthrough'; url: string; apiKey: string }> = [];

beforeAll(async () => {
  if (wrkMissing) return;
  pinChildrenOnly();
  const stubPort = findFreePort();
  const stub = startPinned('stub', LOAD_CORE, [process.execPath, join(BENCH, 'upstream-stub.ts')], { STUB_PORT: String(stubPort) }, join(scratch, 'stub.out'));
  const { process: passthrough, port: passthroughPort } = startPassthrough('Bun pass-through', stubPort, join(scratch, 'passthrough.out'));
  const authorization = { authorization: `Bearer ${UPSTREAM_API_KEY}` };
  for (const [child, port] of [
    [stub, stubPort],
    [passthrough, passthroughPort],
  ] as [PinnedProcess, number][]) {
    const problem = await waitForHttp(`http://127.0.0.1:${port}/v1/models`, child, 15_000, 200, authorization);
    if (problem !== undefined) throw new Error(`${problem}\n${logTail(child)}`);
  }
  const keyway = await startKeyway(join(scratch, 'keyway'), findFreePort(), { openai: stubPort });
  if (!keyway.ok) throw new Error(keyway.reason);
  paths.push({ name: 'keyway', url: keyway.baseUrl, apiKey: ADMIN_API_KEY });
  paths.push({ name: 'bun-passthrough', url: `http://127.0.0.1:${passthroughPort}`, apiKey: UPSTREAM_API_KEY });
}, 30_000);

afterAll(async () => {
  await stopAllChildren();
  rmSync(scratch, { recursive: true, force: true });
});

test.skipIf(wrkMissing)(
  `Keyway serves at least ${MINIMUM_SHARE}× the Bun pass-through's throughput at c=${CONNECTIONS}`,
  async () => {
    const body = buildChatBody();
    const run = (path: (typeof paths)[number], seconds: number) =>
      runWrk(
        { url: path.url, apiKey: path.apiKey, body, connections: CONNECTIONS, durationSeconds: seconds, maxRequests: 5_000_000 },
        join(scratch, `${path.name}.lua`),
      );
    // Keyway's optimizing compiler needs a few seconds of traffic before its rate settles (the first
    // second runs at half speed); the pass-through, thirty lines, is warm at once.
    for (const path of paths) await run(path, path.name === 'keyway' ? WARM_UP_SECONDS : 1);
    const rates = new Map<string, number[]>(paths.map((path) => [path.name, []]));
    // Interleaved, the order flipped every round, so a slow stretch of a shared CI box hits both paths.
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of round % 2 === 0 ? paths : [...paths].reverse()) {
        const result = await run(path, SECONDS_PER_ROUND);
        expect(errorCount(result)).toBe(0);
        rates.get(path.name)?.push(result.requestsPerSecond);
      }
    }
    // Noise only ever slows a round down, so each path's best round is its closest to its real rate.
    const best = (name: string): number => Math.max(...(rates.get(name) ?? [0]));
    const share = best('keyway') / best('bun-passthrough');
    const rounded = (name: string) => (rates.get(name) ?? []).map(Math.round).join(', ');
    console.log(`load smoke: Keyway ${rounded('keyway')} req/s; pass-through ${rounded('bun-passthrough')} req/s; best rounds → ${share.toFixed(2)}×`);
    expect(share).toBeGreaterThanOrEqual(MINIMUM_SHARE);
  },
  45_000,
);
