// KEYWAY_WORKERS=2 stopped the way service managers stop it: one SIGTERM to every process of the
// group (systemd's default KillMode=control-group, `timeout`, `kill -TERM -<pgid>`). Each worker then
// gets the group's SIGTERM and the primary's forwarded one; QA18 found the workers counting that as a
// second signal and ending every request in flight. The group's signal is sent here to the primary and
// each worker's pid, which is what a process-group kill does without putting the test runner at risk.

import { expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { addOpenAIKey, logLines, simulatorAndScratch, startTwoWorkers, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-GroupSignalUpstreamKey00000000001';
const OPERATOR_KEY = 'kw_op_GroupSignalOperatorKey0123456789abcd';

const suite = simulatorAndScratch(UPSTREAM_KEY);

function workerPids(gateway: GatewayProcess): number[] {
  return logLines(gateway.stdout())
    .filter((line) => typeof line.msg === 'string' && /^worker \d+ listening$/.test(line.msg))
    .map((line) => Number(line.pid));
}

/** A non-streamed call the simulator answers after `delayMs`, on a connection of its own. */
function slowCall(url: string, delayMs: number): Promise<Response> {
  suite.simulator.setSticky({ kind: 'delay', delayMs });
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    keepalive: false,
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'drain me' }] }),
  });
}

test('one SIGTERM to the whole process group drains: the request in flight is answered, exit 0', async () => {
  const { gateway, directory } = await startTwoWorkers('keyway-group-signal', { operatorKey: OPERATOR_KEY, upstreams: { openai: suite.simulator.url } });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const pids = workerPids(gateway);
    expect(pids).toHaveLength(2);
    const inFlight = slowCall(gateway.url, 1500);
    await Bun.sleep(400);
    for (const pid of [gateway.process.pid, ...pids]) process.kill(pid, 'SIGTERM');
    const response = await inFlight;
    suite.simulator.setSticky(undefined);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { object?: string }).object).toBe('chat.completion');
    expect(await gateway.waitForExit(20_000)).toBe(0);
    expect(gateway.stdout()).not.toContain('shutdown already under way');
  } finally {
    suite.simulator.setSticky(undefined);
    if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  }
}, 60_000);

test('a second signal to the primary still ends the requests in flight at once', async () => {
  const { gateway, directory } = await startTwoWorkers('keyway-group-signal-twice', { operatorKey: OPERATOR_KEY, upstreams: { openai: suite.simulator.url } });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    const pids = workerPids(gateway);
    const inFlight = slowCall(gateway.url, 30_000);
    await Bun.sleep(400);
    for (const pid of [gateway.process.pid, ...pids]) process.kill(pid, 'SIGTERM');
    await Bun.sleep(300);
    const secondAt = performance.now();
    gateway.process.kill('SIGTERM');
    const response = await inFlight;
    expect(performance.now() - secondAt).toBeLessThan(3_000);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error?: { message?: string } }).error?.message).toContain('second shutdown signal');
    expect(await gateway.waitForExit(10_000)).toBe(0);
  } finally {
    suite.simulator.setSticky(undefined);
    if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  }
}, 60_000);
