// Phase e, fallback under failure. Three stubs stand in for openai, groq and mistral, and the first
// provider of the chain fails every request, so each request pays for one failed attempt before the
// next provider serves it. Each part gets a fresh Keyway: the health monitor remembers failures for
// minutes, and that memory would otherwise decide the next part's outcome.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminRequest, startKeyway } from './keyway.ts';
import type { PhaseContext } from './phases.ts';
import { combineRounds } from './phases.ts';
import type { PinnedProcess } from './processes.ts';
import { LOAD_CORE, findFreePort, logTail, readAllowedCores, startPinned, stopProcess, waitForHttp } from './processes.ts';
import { ADMIN_API_KEY, BENCH_MODEL, CHAT_COMPLETIONS_PATH, UPSTREAM_API_KEY, buildRoutedChatBody } from './requests.ts';
import { percentile } from './streaming.ts';
import type { WrkResult } from './wrk.ts';
import { runWrk } from './wrk.ts';

const FAILING_FIRST = ['openai', 'groq', 'mistral'];
/** The same chain with the failing provider last: the first attempt succeeds, as when nothing fails. */
const HEALTHY_FIRST = ['groq', 'mistral', 'openai'];
/** gpt-4o-mini is OpenAI's; the class override gives groq and mistral an equivalent to fall back to. */
const CLASS_OVERRIDE = { classes: { small: { models: { groq: BENCH_MODEL, mistral: BENCH_MODEL } } } };
export const HEALTH_POLICY = { auto_disable: true, health_threshold: 95, latency_threshold: 1000, check_interval: 60, min_samples: 10 };
/** Only a safety bound: every load run ends at its request count long before. */
const RUN_BOUND_SECONDS = 60;
/** pino writes Keyway's log asynchronously; this is ample for the last lines to reach the file. */
const LOG_SETTLE_MS = 500;

export interface FallbackSettings {
  connections: number;
  rounds: number;
  requestsPerRound: number;
  warmupRequests: number;
  autoDisableRequests: number;
  costRounds: number;
  costRequestsPerRound: number;
}

export function fallbackSettings(quick: boolean): FallbackSettings {
  return {
    connections: 32,
    rounds: quick ? 1 : 2,
    requestsPerRound: quick ? 2_000 : 10_000,
    warmupRequests: quick ? 500 : 2_000,
    autoDisableRequests: quick ? 4_000 : 20_000,
    costRounds: quick ? 1 : 5,
    costRequestsPerRound: quick ? 300 : 1_000,
  };
}

export interface TalliedRun {
  /** Responses plus socket errors. */
  requests: number;
  /** Responses with status 200. */
  successes: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses by X-Provider-Used, and by X-Fallback-Attempts ("-" where the header was absent). */
  providers: Record<string, number>;
  fallbackAttempts: Record<string, number>;
}

export interface AutoDisableRun extends TalliedRun {
  /** Chat requests the failing stub received during the run, by its own counter. */
  failingStubCalls: number;
  /** Models-endpoint calls it received meanwhile: Keyway's health probes. */
  failingStubProbes: number;
  /** The failing provider's state in GET /v1/providers/health after the run. */
  failingProviderStatus: string;
}

export interface RateLimitCost {
  fallbackP50Ms: number;
  directRouteP50Ms: number;
  /** wrk straight to the 429 stub at c=1. */
  failedAttemptRoundTripP50Ms: number;
  /** Median `attempts[].durationMs` of the measured fallbacks in Keyway's debug log. */
  failedAttemptLoggedP50Ms: number | undefined;
  loggedAttempts: number;
  /** The fallback arm's responses: every one must be a 200 from groq after one failed attempt. */
  fallbackRun: TalliedRun;
}

export interface FallbackResult {
  settings: FallbackSettings;
  healthy: TalliedRun;
  failing: TalliedRun;
  autoDisable: AutoDisableRun;
  rateLimit: RateLimitCost;
  pinning: Record<string, string>;
}

/** What the fallback adds beyond the failed attempt's own round trip: the figure the target bounds. */
export function fallbackOverheadMs(cost: RateLimitCost): number {
  return cost.fallbackP50Ms - cost.directRouteP50Ms - cost.failedAttemptRoundTripP50Ms;
}

/** Fallback-arm responses other than a 200 from groq after exactly one failed attempt. */
export function unexpectedFallbacks(run: TalliedRun): number {
  return run.requests - Math.min(run.successes, run.providers.groq ?? 0, run.fallbackAttempts['1'] ?? 0);
}

interface Stub {
  process: PinnedProcess;
  port: number;
}

interface FallbackKeyway {
  process: PinnedProcess;
  baseUrl: string;
}

async function startStub(context: PhaseContext, name: string, failStatus: 500 | 429 | undefined, stubs: Stub[]): Promise<Stub> {
  const port = findFreePort();
  const environment: Record<string, string> = { STUB_PORT: String(port) };
  if (failStatus !== undefined) environment.STUB_FAIL_STATUS = String(failStatus);
  const child = startPinned(
    `stub ${name}`,
    LOAD_CORE,
    [process.execPath, join(import.meta.dir, '..', 'upstream-stub.ts')],
    environment,
    join(context.scratchDirectory, `stub-${name}.out`),
  );
  const stub = { process: child, port };
  stubs.push(stub);
  const problem = await waitForHttp(`http://127.0.0.1:${port}/v1/models`, child, 15_000, failStatus ?? 200, { authorization: `Bearer ${UPSTREAM_API_KEY}` });
  if (problem !== undefined) throw new Error(`${problem}\n${logTail(child)}`);
  return stub;
}

async function stubCounts(stub: Stub): Promise<{ chatCompletions: number; models: number }> {
  const response = await fetch(`http://127.0.0.1:${stub.port}/__stats`, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { chat_completions: number; models: number };
  return { chatCompletions: body.chat_completions, models: body.models };
}

async function startFallbackKeyway(context: PhaseContext, part: string, first: Stub, groq: Stub, mistral: Stub, logLevel = 'warn'): Promise<FallbackKeyway> {
  const start = await startKeyway(
    join(context.scratchDirectory, `keyway-e${part}`),
    findFreePort(),
    { openai: first.port, groq: groq.port, mistral: mistral.port },
    logLevel,
  );
  if (!start.ok) throw new Error(`Keyway for part ${part} did not start: ${start.reason}`);
  const problem = await adminRequest(start.baseUrl, 'PUT', '/v1/settings/model-classes', CLASS_OVERRIDE);
  if (problem !== undefined) {
    await stopProcess(start.process);
    throw new Error(problem);
  }
  return { process: start.process, baseUrl: start.baseUrl };
}

/** One request through a chain, checked before any load: a wrong answer here would void every figure. */
async function verifyChain(keyway: FallbackKeyway, body: string, expectedProvider: string, expectedAttempts: number): Promise<void> {
  const response = await fetch(`${keyway.baseUrl}${CHAT_COMPLETIONS_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_API_KEY}`, 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const provider = response.headers.get('x-provider-used');
  const attempts = response.headers.get('x-fallback-attempts');
  if (response.status !== 200 || provider !== expectedProvider || attempts !== String(expectedAttempts)) {
    throw new Error(
      `Keyway answered ${response.status} from ${provider ?? '-'} after ${attempts ?? '-'} failed attempt(s), expected 200 from ${expectedProvider} after ${expectedAttempts}: ${text.slice(0, 300)}`,
    );
  }
}

function load(context: PhaseContext, url: string, apiKey: string, body: string, connections: number, requests: number, label: string): Promise<WrkResult> {
  return runWrk(
    { url, apiKey, body, connections, durationSeconds: RUN_BOUND_SECONDS, maxRequests: requests, tally: true },
    join(context.scratchDirectory, `wrk-e-${label}.lua`),
  );
}

function summarize(rounds: WrkResult[]): TalliedRun {
  const combined = combineRounds(rounds);
  const providers: Record<string, number> = {};
  const fallbackAttempts: Record<string, number> = {};
  let responses = 0;
  let successes = 0;
  for (const round of rounds) {
    for (const [key, count] of Object.entries(round.tally ?? {})) {
      const [status = '-', provider = '-', attempts = '-'] = key.split(' ');
      responses += count;
      if (status === '200') successes += count;
      providers[provider] = (providers[provider] ?? 0) + count;
      fallbackAttempts[attempts] = (fallbackAttempts[attempts] ?? 0) + count;
    }
  }
  const errors = combined.errors;
  // A request wrk counted but the tally missed is counted as failed rather than dropped.
  const requests = Math.max(responses, combined.requests) + errors.connect + errors.read + errors.write + errors.timeout;
  return {
    requests,
    successes,
    seconds: combined.durationSeconds,
    requestsPerSecond: combined.requestsPerSecond,
    p50Ms: combined.latencyMs.p50,
    p99Ms: combined.latencyMs.p99,
    providers,
    fallbackAttempts,
  };
}

/** a: the failing provider first, without auto-disable, against the same chain with it last. */
async function measureUnderFailure(
  context: PhaseContext,
  settings: FallbackSettings,
  failing: Stub,
  groq: Stub,
  mistral: Stub,
  pinning: Record<string, string>,
): Promise<{ healthy: TalliedRun; failing: TalliedRun }> {
  const keyway = await startFallbackKeyway(context, 'a', failing, groq, mistral);
  pinning['fallback Keyways'] = readAllowedCores(keyway.process.pid);
  try {
    const healthyBody = buildRoutedChatBody(HEALTHY_FIRST);
    const failingBody = buildRoutedChatBody(FAILING_FIRST);
    await verifyChain(keyway, healthyBody, 'groq', 0);
    await verifyChain(keyway, failingBody, 'groq', 1);
    const run = (body: string, requests: number, label: string) => load(context, keyway.baseUrl, ADMIN_API_KEY, body, settings.connections, requests, label);
    await run(healthyBody, settings.warmupRequests, 'warmup-healthy');
    await run(failingBody, settings.warmupRequests, 'warmup-failing');
    const healthyRounds: WrkResult[] = [];
    const failingRounds: WrkResult[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      healthyRounds.push(
        await context.guard.round('e', `fallback round ${round + 1} none failing`, () => run(healthyBody, settings.requestsPerRound, 'healthy')),
      );
      failingRounds.push(
        await context.guard.round('e', `fallback round ${round + 1} openai failing`, () => run(failingBody, settings.requestsPerRound, 'failing')),
      );
    }
    return { healthy: summarize(healthyRounds), failing: summarize(failingRounds) };
  } finally {
    await stopProcess(keyway.process);
  }
}

async function providerStatus(keyway: FallbackKeyway, provider: string): Promise<string> {
  const response = await fetch(`${keyway.baseUrl}/v1/providers/health`, {
    headers: { authorization: `Bearer ${ADMIN_API_KEY}` },
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as { providers?: { name?: string; status?: string }[] };
  return body.providers?.find((entry) => entry.name === provider)?.status ?? `unknown (HTTP ${response.status})`;
}

/** b: the same failure with auto_disable on, from a health record that has seen no failure yet. */
async function measureAutoDisable(context: PhaseContext, settings: FallbackSettings, failing: Stub, groq: Stub, mistral: Stub): Promise<AutoDisableRun> {
  const keyway = await startFallbackKeyway(context, 'b', failing, groq, mistral);
  try {
    const problem = await adminRequest(keyway.baseUrl, 'POST', '/v1/providers/health-check', HEALTH_POLICY);
    if (problem !== undefined) throw new Error(problem);
    const healthyBody = buildRoutedChatBody(HEALTHY_FIRST);
    await verifyChain(keyway, healthyBody, 'groq', 0);
    // Warms the process up without a single call to the failing provider.
    await load(context, keyway.baseUrl, ADMIN_API_KEY, healthyBody, settings.connections, settings.warmupRequests, 'warmup-auto-disable');
    const before = await stubCounts(failing);
    // Not rerun on outside load: a second try would start with the provider already disabled.
    const result = await load(
      context,
      keyway.baseUrl,
      ADMIN_API_KEY,
      buildRoutedChatBody(FAILING_FIRST),
      settings.connections,
      settings.autoDisableRequests,
      'auto-disable',
    );
    const after = await stubCounts(failing);
    return {
      ...summarize([result]),
      failingStubCalls: after.chatCompletions - before.chatCompletions,
      failingStubProbes: after.models - before.models,
      failingProviderStatus: await providerStatus(keyway, 'openai'),
    };
  } finally {
    await stopProcess(keyway.process);
  }
}

/** Durations Keyway logged for failed rate-limited attempts, within the given time windows. */
function loggedAttemptDurations(logPath: string, windows: { from: number; to: number }[]): number[] {
  const durations: number[] = [];
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.includes('"request finished"')) continue;
    let entry: { time?: number; attempts?: { reason?: string; durationMs?: number }[] };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const time = entry.time ?? 0;
    if (!windows.some((window) => time >= window.from && time <= window.to)) continue;
    for (const attempt of entry.attempts ?? [])
      if (attempt.reason === 'rate_limit' && typeof attempt.durationMs === 'number') durations.push(attempt.durationMs);
  }
  return durations.sort((left, right) => left - right);
}

/**
 * c: at c=1, openai answers 429 at once and groq serves; against the same Keyway routed to groq
 * first, and against the 429 alone, straight at its stub. Interleaved rounds, medians of round p50s.
 */
async function measureRateLimitCost(context: PhaseContext, settings: FallbackSettings, rateLimited: Stub, groq: Stub, mistral: Stub): Promise<RateLimitCost> {
  const keyway = await startFallbackKeyway(context, 'c', rateLimited, groq, mistral, 'debug');
  try {
    const healthyBody = buildRoutedChatBody(HEALTHY_FIRST);
    const failingBody = buildRoutedChatBody(FAILING_FIRST);
    await verifyChain(keyway, healthyBody, 'groq', 0);
    await verifyChain(keyway, failingBody, 'groq', 1);
    const stubUrl = `http://127.0.0.1:${rateLimited.port}`;
    const count = settings.costRequestsPerRound;
    await load(context, keyway.baseUrl, ADMIN_API_KEY, healthyBody, settings.connections, settings.warmupRequests, 'warmup-cost-healthy');
    await load(context, keyway.baseUrl, ADMIN_API_KEY, failingBody, settings.connections, settings.warmupRequests, 'warmup-cost-failing');
    await load(context, stubUrl, UPSTREAM_API_KEY, failingBody, 1, count, 'warmup-cost-stub');
    const fallbackRounds: WrkResult[] = [];
    const directRounds: WrkResult[] = [];
    const stubRounds: WrkResult[] = [];
    const windows: { from: number; to: number }[] = [];
    for (let round = 0; round < settings.costRounds; round++) {
      let window = { from: 0, to: 0 };
      fallbackRounds.push(
        await context.guard.round('e', `429 round ${round + 1} fallback`, async () => {
          window = { from: Date.now(), to: 0 };
          const result = await load(context, keyway.baseUrl, ADMIN_API_KEY, failingBody, 1, count, 'cost-fallback');
          window.to = Date.now();
          return result;
        }),
      );
      windows.push(window);
      directRounds.push(
        await context.guard.round('e', `429 round ${round + 1} groq first`, () =>
          load(context, keyway.baseUrl, ADMIN_API_KEY, healthyBody, 1, count, 'cost-direct'),
        ),
      );
      stubRounds.push(
        await context.guard.round('e', `429 round ${round + 1} stub alone`, () => load(context, stubUrl, UPSTREAM_API_KEY, failingBody, 1, count, 'cost-stub')),
      );
    }
    await Bun.sleep(LOG_SETTLE_MS);
    const logged = loggedAttemptDurations(keyway.process.logPath, windows);
    return {
      fallbackP50Ms: combineRounds(fallbackRounds).latencyMs.p50,
      directRouteP50Ms: combineRounds(directRounds).latencyMs.p50,
      failedAttemptRoundTripP50Ms: combineRounds(stubRounds).latencyMs.p50,
      failedAttemptLoggedP50Ms: logged.length === 0 ? undefined : percentile(logged, 0.5),
      loggedAttempts: logged.length,
      fallbackRun: summarize(fallbackRounds),
    };
  } finally {
    await stopProcess(keyway.process);
  }
}

function distribution(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((left, right) => right[1] - left[1])
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}

function describeRun(name: string, run: TalliedRun): string {
  const rate = (100 * run.successes) / Math.max(1, run.requests);
  return `  ${name.padEnd(30)} ${rate.toFixed(3)}% of ${run.requests} ok, ${run.requestsPerSecond.toFixed(0)} req/s, p50 ${run.p50Ms.toFixed(3)} ms, p99 ${run.p99Ms.toFixed(3)} ms; provider: ${distribution(run.providers)}; failed attempts: ${distribution(run.fallbackAttempts)}`;
}

export async function measureFallback(context: PhaseContext, settings: FallbackSettings): Promise<FallbackResult> {
  const stubs: Stub[] = [];
  try {
    const failing = await startStub(context, 'openai-500', 500, stubs);
    const groq = await startStub(context, 'groq', undefined, stubs);
    const mistral = await startStub(context, 'mistral', undefined, stubs);
    const rateLimited = await startStub(context, 'openai-429', 429, stubs);
    const pinning: Record<string, string> = { 'fallback stubs': readAllowedCores(failing.process.pid) };
    const { healthy, failing: underFailure } = await measureUnderFailure(context, settings, failing, groq, mistral, pinning);
    context.log(describeRun('baseline: groq first', healthy));
    context.log(describeRun('openai failing (500)', underFailure));
    const autoDisable = await measureAutoDisable(context, settings, failing, groq, mistral);
    context.log(describeRun('openai failing, auto_disable', autoDisable));
    context.log(
      `  the failing stub received ${autoDisable.failingStubCalls} of ${autoDisable.requests} requests; openai is now ${autoDisable.failingProviderStatus}`,
    );
    const rateLimit = await measureRateLimitCost(context, settings, rateLimited, groq, mistral);
    const logged = rateLimit.failedAttemptLoggedP50Ms;
    context.log(
      `  429 at c=1: fallback p50 ${rateLimit.fallbackP50Ms.toFixed(3)} ms, groq first ${rateLimit.directRouteP50Ms.toFixed(3)} ms, 429 alone ${rateLimit.failedAttemptRoundTripP50Ms.toFixed(3)} ms` +
        ` (Keyway's log: ${logged === undefined ? '–' : logged.toFixed(3)} ms) → beyond the failed attempt ${fallbackOverheadMs(rateLimit).toFixed(3)} ms`,
    );
    return { settings, healthy, failing: underFailure, autoDisable, rateLimit, pinning };
  } finally {
    for (const stub of stubs) await stopProcess(stub.process);
  }
}
