// Streaming: wrk only sees whole responses, while buffering shows up only in when each SSE event
// arrives. The timed streams go through raw-stream-client.ts; the fetch() client here checks that a
// path streams correctly before it is measured, the way an SDK would consume it.

import { CHAT_COMPLETIONS_PATH } from './requests.ts';

export interface StreamSample {
  /** From sending the request to the first body bytes. */
  firstByteMs: number;
  /** From sending the request to the end of the response head (raw client only). */
  headMs?: number;
  /** Arrival time of each SSE event, from sending the request. */
  eventTimesMs: number[];
  sawDone: boolean;
}

const STREAM_TIMEOUT_MS = 15_000;
const LINE_FEED = 10;
const CARRIAGE_RETURN = 13;

export async function measureStream(baseUrl: string, apiKey: string, body: string): Promise<StreamSample> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}${CHAT_COMPLETIONS_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body,
    signal: AbortSignal.timeout(STREAM_TIMEOUT_MS),
  });
  if (!response.ok || response.body === null) throw new Error(`stream answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const reader = response.body.getReader();
  let firstByteMs = -1;
  const eventTimesMs: number[] = [];
  let previousByte = 0;
  let tail = '';
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const now = performance.now() - started;
    if (firstByteMs < 0) firstByteMs = now;
    // An event ends at a blank line; counting "\n\n" across reads (ignoring \r) finds each end.
    for (const byte of value) {
      if (byte === CARRIAGE_RETURN) continue;
      if (byte === LINE_FEED && previousByte === LINE_FEED) {
        eventTimesMs.push(now);
        previousByte = 0;
        continue;
      }
      previousByte = byte;
    }
    tail = (tail + decoder.decode(value, { stream: true })).slice(-64);
  }
  return { firstByteMs, eventTimesMs, sawDone: tail.includes('[DONE]') };
}

export interface StreamSummary {
  samples: number;
  firstByteMs: { p50: number; p90: number; p99: number; mean: number };
  /** Gaps between consecutive content events: with no buffering they sit near the stub's delay. */
  gapMs: { p1: number; p50: number; p99: number; max: number };
  /** Share of streams where two content events arrived in the same read: a sign of buffering. */
  coalescedStreams: number;
  incompleteStreams: number;
}

export function percentile(sortedValues: number[], fraction: number): number {
  if (sortedValues.length === 0) return Number.NaN;
  const index = Math.min(sortedValues.length - 1, Math.max(0, Math.ceil(fraction * sortedValues.length) - 1));
  return sortedValues[index] ?? Number.NaN;
}

export function summarizeStreams(samples: StreamSample[], contentEvents: number): StreamSummary {
  const firstBytes = samples.map((sample) => sample.firstByteMs).sort((left, right) => left - right);
  const gaps: number[] = [];
  let coalesced = 0;
  let incomplete = 0;
  for (const sample of samples) {
    if (!sample.sawDone || sample.eventTimesMs.length < contentEvents) incomplete++;
    // The usage event and [DONE] travel with the last content event, so only content gaps count.
    const times = sample.eventTimesMs.slice(0, contentEvents);
    let sawCoalescing = false;
    for (let index = 1; index < times.length; index++) {
      const gap = (times[index] ?? 0) - (times[index - 1] ?? 0);
      gaps.push(gap);
      if (gap < 0.05) sawCoalescing = true;
    }
    if (sawCoalescing) coalesced++;
  }
  gaps.sort((left, right) => left - right);
  const mean = firstBytes.reduce((sum, value) => sum + value, 0) / Math.max(1, firstBytes.length);
  return {
    samples: samples.length,
    firstByteMs: { p50: percentile(firstBytes, 0.5), p90: percentile(firstBytes, 0.9), p99: percentile(firstBytes, 0.99), mean },
    gapMs: { p1: percentile(gaps, 0.01), p50: percentile(gaps, 0.5), p99: percentile(gaps, 0.99), max: gaps[gaps.length - 1] ?? Number.NaN },
    coalescedStreams: coalesced / Math.max(1, samples.length),
    incompleteStreams: incomplete,
  };
}
