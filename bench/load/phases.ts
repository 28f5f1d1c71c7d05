// The measurement phases. Each one is bounded in request count and in time, and runs the paths one
// after another (never at once) so that every path has the proxy core to itself.

import { join } from 'node:path';
import type { QuietGuard } from './quiet.ts';
import type { PathName, ThroughputResult } from './results.ts';
import { CHAT_COMPLETIONS_PATH } from './requests.ts';
import type { StreamSample, StreamSummary } from './streaming.ts';
import { RawStreamConnection } from './raw-stream-client.ts';
import { measureStream, summarizeStreams } from './streaming.ts';
import type { WrkResult } from './wrk.ts';
import { errorCount, runWrk } from './wrk.ts';

export interface PathTarget {
  name: PathName;
  baseUrl: string;
  /** The key this path expects: the upstream's for direct/pass-through/nginx, the admin key for Keyway. */
  apiKey: string;
  /** A body of its own (a team member's allowed model) instead of the run's; fixed-size like it. */
  body?: string;
  /** Headers this path's requests need (X-Team-ID, X-Project-Tag). */
  headers?: Record<string, string>;
}

export interface PhaseContext {
  scratchDirectory: string;
  /** Reruns rounds that outside processes spoiled. */
  guard: QuietGuard;
  body: string;
  streamingBody: string;
  log: (line: string) => void;
}

/** What every wrk run of a path sends: its URL, key, body and headers. */
function request(target: PathTarget, context: PhaseContext): { url: string; apiKey: string; body: string; headers?: Record<string, string> } {
  return {
    url: target.baseUrl,
    apiKey: target.apiKey,
    body: target.body ?? context.body,
    ...(target.headers === undefined ? {} : { headers: target.headers }),
  };
}

function scriptPath(context: PhaseContext, target: PathTarget, phase: string): string {
  return join(context.scratchDirectory, `wrk-${phase}-${target.name}.lua`);
}

/** One plain request and one stream through the path; a path that answers wrongly is not measured. */
export async function verifyPath(target: PathTarget, context: PhaseContext, chunkCount: number): Promise<string | undefined> {
  try {
    const response = await fetch(`${target.baseUrl}${CHAT_COMPLETIONS_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.apiKey}`, 'content-type': 'application/json', ...target.headers },
      body: target.body ?? context.body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 200) return `chat completion answered ${response.status}: ${text.slice(0, 300)}`;
    const parsed = JSON.parse(text) as { object?: unknown; choices?: { message?: { content?: unknown } }[] };
    if (parsed.object !== 'chat.completion' || typeof parsed.choices?.[0]?.message?.content !== 'string') {
      return `chat completion is not OpenAI-shaped: ${text.slice(0, 300)}`;
    }
    // Paths with a body of their own are measured on plain requests only (throughput).
    if (target.body !== undefined) return undefined;
    const sample = await measureStream(target.baseUrl, target.apiKey, context.streamingBody);
    if (!sample.sawDone || sample.eventTimesMs.length < chunkCount) {
      return `stream incomplete: ${sample.eventTimesMs.length} events, [DONE] ${sample.sawDone ? 'seen' : 'missing'}`;
    }
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export async function warmUp(target: PathTarget, context: PhaseContext, seconds: number): Promise<void> {
  await runWrk({ ...request(target, context), connections: 64, durationSeconds: seconds, maxRequests: 2_000_000 }, scriptPath(context, target, 'warmup'));
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** Folds interleaved rounds into one result: each percentile is the median of the rounds' values. */
export function combineRounds(rounds: WrkResult[]): WrkResult {
  const pick = (select: (result: WrkResult) => number): number => median(rounds.map(select));
  const requests = rounds.reduce((sum, result) => sum + result.requests, 0);
  const durationSeconds = rounds.reduce((sum, result) => sum + result.durationSeconds, 0);
  const sumOf = (select: (result: WrkResult) => number): number => rounds.reduce((sum, result) => sum + select(result), 0);
  return {
    requests,
    durationSeconds,
    requestsPerSecond: requests / durationSeconds,
    latencyMs: {
      mean: sumOf((result) => result.latencyMs.mean * result.requests) / Math.max(1, requests),
      p50: pick((result) => result.latencyMs.p50),
      p75: pick((result) => result.latencyMs.p75),
      p90: pick((result) => result.latencyMs.p90),
      p99: pick((result) => result.latencyMs.p99),
      p999: pick((result) => result.latencyMs.p999),
      max: Math.max(...rounds.map((result) => result.latencyMs.max)),
    },
    errors: {
      connect: sumOf((result) => result.errors.connect),
      read: sumOf((result) => result.errors.read),
      write: sumOf((result) => result.errors.write),
      status: sumOf((result) => result.errors.status),
      timeout: sumOf((result) => result.errors.timeout),
    },
  };
}

/**
 * Concurrency 1, in interleaved rounds (every path once per round) so that a noisy stretch of the
 * shared machine hits all paths alike instead of one path's whole measurement.
 */
export async function measureLatency(
  targets: PathTarget[],
  context: PhaseContext,
  rounds: number,
  requestsPerRound: number,
): Promise<Partial<Record<PathName, WrkResult>>> {
  const perPath = new Map<PathName, WrkResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      // The duration is only the safety bound: a round ends when its request count is reached.
      const result = await context.guard.round('a', `latency round ${round + 1} ${target.name}`, () =>
        runWrk({ ...request(target, context), connections: 1, durationSeconds: 30, maxRequests: requestsPerRound }, scriptPath(context, target, 'latency')),
      );
      perPath.set(target.name, [...(perPath.get(target.name) ?? []), result]);
    }
  }
  const combined: Partial<Record<PathName, WrkResult>> = {};
  for (const target of targets) {
    const result = combineRounds(perPath.get(target.name) ?? []);
    combined[target.name] = result;
    const latency = result.latencyMs;
    context.log(
      `  ${target.name.padEnd(16)} p50 ${latency.p50.toFixed(3)} ms  p99 ${latency.p99.toFixed(3)} ms  (${result.requests} requests, ${errorCount(result)} errors)`,
    );
  }
  return combined;
}

/**
 * Concurrency 1 at a fixed rate (wrk paced by a Lua delay, see wrk.ts), in interleaved rounds: the
 * tail a lightly loaded gateway shows, where back-to-back requests would hide timers and pauses.
 */
export async function measureFixedRate(
  targets: PathTarget[],
  context: PhaseContext,
  ratePerSecond: number,
  rounds: number,
  secondsPerRound: number,
): Promise<Partial<Record<PathName, WrkResult>>> {
  const perPath = new Map<PathName, WrkResult[]>();
  const requests = Math.round(ratePerSecond * secondsPerRound);
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const result = await context.guard.round('a2', `fixed-rate round ${round + 1} ${target.name}`, () =>
        runWrk(
          { ...request(target, context), connections: 1, durationSeconds: secondsPerRound + 5, maxRequests: requests, ratePerSecond },
          scriptPath(context, target, 'fixed-rate'),
        ),
      );
      perPath.set(target.name, [...(perPath.get(target.name) ?? []), result]);
    }
  }
  const combined: Partial<Record<PathName, WrkResult>> = {};
  for (const target of targets) {
    const results = perPath.get(target.name) ?? [];
    const result = { ...combineRounds(results), lateSends: results.reduce((sum, each) => sum + (each.lateSends ?? 0), 0) };
    combined[target.name] = result;
    const latency = result.latencyMs;
    context.log(
      `  ${target.name.padEnd(16)} ${result.requestsPerSecond.toFixed(0)} req/s  p50 ${latency.p50.toFixed(3)} ms  p99 ${latency.p99.toFixed(3)} ms  max ${latency.max.toFixed(2)} ms  (${result.requests} requests, ${result.lateSends} sent late, ${errorCount(result)} errors)`,
    );
  }
  return combined;
}

/**
 * Interleaves the paths over several short rounds instead of one long run each, so a slow patch of
 * the (shared, virtual) machine spreads over all paths instead of landing on one.
 */
export async function measureThroughput(
  targets: PathTarget[],
  context: PhaseContext,
  connections: number,
  rounds: number,
  secondsPerRound: number,
): Promise<Partial<Record<PathName, ThroughputResult>>> {
  const totals: Partial<Record<PathName, ThroughputResult>> = {};
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const result = await context.guard.round('b', `throughput round ${round + 1} ${target.name}`, () =>
        runWrk(
          { ...request(target, context), connections, durationSeconds: secondsPerRound, maxRequests: 5_000_000 },
          scriptPath(context, target, 'throughput'),
        ),
      );
      const total = totals[target.name] ?? { requests: 0, seconds: 0, requestsPerSecond: 0, roundRates: [], errors: 0 };
      total.roundRates.push(result.requestsPerSecond);
      total.requests += result.requests;
      total.seconds += result.durationSeconds;
      total.errors += errorCount(result);
      // The median round: one round that a neighbour spoiled moves it less than it moves a total.
      total.requestsPerSecond = median(total.roundRates);
      totals[target.name] = total;
      context.log(`  round ${round + 1} ${target.name.padEnd(16)} ${result.requestsPerSecond.toFixed(0)} req/s (${errorCount(result)} errors)`);
    }
  }
  return totals;
}

async function openStreamConnection(target: PathTarget): Promise<RawStreamConnection> {
  const url = new URL(target.baseUrl);
  return RawStreamConnection.open(url.hostname, Number(url.port));
}

/** One stream on the path's kept-alive connection; reconnects once if the server had closed it. */
async function timedStream(target: PathTarget, connections: Map<PathName, RawStreamConnection>, body: string): Promise<StreamSample> {
  const host = new URL(target.baseUrl).host;
  const existing = connections.get(target.name) ?? (await openStreamConnection(target));
  connections.set(target.name, existing);
  try {
    return await existing.stream(host, CHAT_COMPLETIONS_PATH, target.apiKey, body);
  } catch {
    existing.close();
    const fresh = await openStreamConnection(target);
    connections.set(target.name, fresh);
    return fresh.stream(host, CHAT_COMPLETIONS_PATH, target.apiKey, body);
  }
}

const STREAMS_PER_ROUND = 5;

/** Sequential streams, alternating between the paths in rounds of a few streams, for the same reason as above. */
export async function measureStreaming(
  targets: PathTarget[],
  context: PhaseContext,
  count: number,
  warmupCount: number,
  chunkCount: number,
): Promise<Partial<Record<PathName, StreamSummary>>> {
  const connections = new Map<PathName, RawStreamConnection>();
  const samples = new Map<PathName, StreamSample[]>(targets.map((target) => [target.name, []]));
  const stopAt = performance.now() + 120_000;
  try {
    for (const target of targets) {
      for (let index = 0; index < warmupCount; index++) await timedStream(target, connections, context.streamingBody);
    }
    for (let round = 0; round * STREAMS_PER_ROUND < count && performance.now() < stopAt; round++) {
      for (const target of targets) {
        const batch = await context.guard.round('c', `streaming round ${round + 1} ${target.name}`, async () => {
          const streams: StreamSample[] = [];
          for (let index = 0; index < STREAMS_PER_ROUND; index++) streams.push(await timedStream(target, connections, context.streamingBody));
          return streams;
        });
        samples.get(target.name)?.push(...batch);
      }
    }
  } finally {
    for (const connection of connections.values()) connection.close();
  }
  const summaries: Partial<Record<PathName, StreamSummary>> = {};
  for (const target of targets) {
    const summary = summarizeStreams(samples.get(target.name) ?? [], chunkCount);
    summaries[target.name] = summary;
    context.log(
      `  ${target.name.padEnd(16)} TTFB p50 ${summary.firstByteMs.p50.toFixed(3)} ms  gaps p1/p50/p99 ${summary.gapMs.p1.toFixed(2)}/${summary.gapMs.p50.toFixed(2)}/${summary.gapMs.p99.toFixed(2)} ms  coalesced ${(summary.coalescedStreams * 100).toFixed(0)}%`,
    );
  }
  return summaries;
}

/** Sends exactly `requests` (give or take the in-flight ones at the stop) at c=`connections`. */
export async function sendRequests(target: PathTarget, context: PhaseContext, connections: number, requests: number, boundSeconds: number): Promise<WrkResult> {
  return runWrk({ ...request(target, context), connections, durationSeconds: boundSeconds, maxRequests: requests }, scriptPath(context, target, 'memory'));
}
