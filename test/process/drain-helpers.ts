// Shared by the shutdown-drain suites (drain-requests, drain-hooks): a gateway from source with a drain
// deadline of the test's choosing, and the checks on what the drain answers a call it ends.

import { expect } from 'bun:test';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addOpenAIKey, dataFolderEnv, FROM_SOURCE, simulatorAndScratch, startGatewayProcess, type GatewayProcess } from './process-helpers.ts';

/** A call's answer as its client saw it. */
export interface DrainAnswer {
  status: number;
  headers: Headers;
  body: { error?: { code?: string; message?: string; approval_id?: string } };
  /** performance.now() when the whole answer was in. */
  at: number;
}

/** Reads the whole answer, noting when it was in: the drain's timing is what the suites check. */
export async function timedAnswer(response: Response): Promise<DrainAnswer> {
  return { status: response.status, headers: response.headers, body: (await response.json()) as DrainAnswer['body'], at: performance.now() };
}

export interface DrainSuite {
  /** Read inside tests: it starts before the file's tests. */
  readonly simulator: SimulatorHandle;
  /**
   * Runs `body` against a gateway from source on a fresh data folder (`name`), with its OpenAI key and
   * a drain deadline of `drainTimeoutMs`. A gateway still running after `body` (a check failed before
   * it exited) is SIGKILLed, so it does not outlive the test.
   */
  withGateway(name: string, drainTimeoutMs: number, body: (gateway: GatewayProcess, directory: string) => Promise<void>): Promise<void>;
}

/** A test file's drain suite: its OpenAI simulator (holding `upstreamKey`), scratch folders and gateways started with `env` added. */
export function drainSuite(options: { upstreamKey: string; operatorKey: string; env: Record<string, string> }): DrainSuite {
  const scratch = simulatorAndScratch(options.upstreamKey);
  return {
    get simulator() {
      return scratch.simulator;
    },
    async withGateway(name, drainTimeoutMs, body) {
      const directory = scratch.dataDirectory(name);
      const gateway = await startGatewayProcess({
        command: FROM_SOURCE,
        cwd: directory,
        env: dataFolderEnv(directory, {
          operatorKey: options.operatorKey,
          upstreams: { openai: scratch.simulator.url },
          extra: { ...options.env, KEYWAY_DRAIN_TIMEOUT_MS: String(drainTimeoutMs) },
        }),
      });
      try {
        await addOpenAIKey(gateway.url, options.operatorKey, options.upstreamKey);
        await body(gateway, directory);
      } finally {
        if (gateway.process.exitCode === null) await gateway.stop('SIGKILL').catch(() => undefined);
      }
    },
  };
}

/** The drain's 503 `not_ready`, its message naming what ended the call (`cause`). */
export function expectRetryable(answer: DrainAnswer, cause: RegExp): void {
  expect(answer.status).toBe(503);
  expect(answer.body.error?.code).toBe('not_ready');
  expect(answer.body.error?.message).toMatch(cause);
  // The official SDKs retry a 503; these say so to any client, and send the retry on a new connection.
  expect(answer.headers.get('retry-after')).toBe('1');
  expect(answer.headers.get('x-should-retry')).toBe('true');
  expect(answer.headers.get('connection')).toBe('close');
}

/** The process exits 0, less than `withinMs` after `since` (a performance.now()). */
export async function expectCleanExit(gateway: GatewayProcess, since: number, withinMs: number): Promise<void> {
  expect(await gateway.waitForExit(5_000)).toBe(0);
  expect(performance.now() - since).toBeLessThan(withinMs);
}

/**
 * SIGTERM with a call in flight: its answer is the drain's 503 (`cause`) at the drain deadline, not
 * before it nor long after, and the process exits soon after; the answer.
 */
export async function expectEndedAtDeadline(gateway: GatewayProcess, answering: Promise<DrainAnswer>, deadlineMs: number, cause: RegExp): Promise<DrainAnswer> {
  const signalledAt = performance.now();
  gateway.process.kill('SIGTERM');
  const answer = await answering;
  expect(answer.at - signalledAt).toBeGreaterThanOrEqual(deadlineMs - 50);
  expect(answer.at - signalledAt).toBeLessThan(deadlineMs + 2_000);
  expectRetryable(answer, cause);
  await expectCleanExit(gateway, signalledAt, deadlineMs + 3_000);
  return answer;
}

/**
 * SIGTERM, then a second one while the drain still waits: the call in flight is answered the drain's
 * 503 at once, naming the second signal. The answer, and when the second signal was sent (the
 * process's exit is timed from it).
 */
export async function endedBySecondSignal(gateway: GatewayProcess, answering: Promise<DrainAnswer>): Promise<{ answer: DrainAnswer; secondAt: number }> {
  gateway.process.kill('SIGTERM');
  await Bun.sleep(300);
  const secondAt = performance.now();
  gateway.process.kill('SIGTERM');
  const answer = await answering;
  expect(answer.at - secondAt).toBeLessThan(2_000);
  expectRetryable(answer, /ended by a second shutdown signal/);
  return { answer, secondAt };
}
