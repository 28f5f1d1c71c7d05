// Bytes allocated per content chunk on the streaming path. JSC gives no allocation counter, and its
// heap size counts only what the last collection marked, so each provider is measured in a child Bun
// whose collector never runs on its own (heap thresholds at 8 GB, Bun's GC timer off): nothing is
// freed or reused while the stream drains, and the growth of the resident set is what was allocated,
// JS cells (heap capacity) and malloc'd string buffers alike. A collection that runs anyway shows
// as a changed heap size and marks the figures unreliable.

import { heapStats } from 'bun:jsc';
import { CONTENT_EVENTS, STREAM_PROVIDERS, type StreamProvider } from './fixtures/provider-streams.ts';
import {
  drainGatewayPath,
  drainParsedEvents,
  drainParts,
  drainSource,
  drainSseEvents,
  streamWorkload,
  tallyGatewayPath,
  type StreamWorkload,
} from './stream-path.ts';

/** Each stage includes the ones before it: the differences are what a stage adds. */
const STAGES = { source: drainSource, sse: drainSseEvents, json: drainParsedEvents, parts: drainParts, path: drainGatewayPath } as const;

export type StageName = keyof typeof STAGES;

export interface StageAllocation {
  /** All bytes per content chunk: resident-set growth, never below the JS heap growth. */
  bytes: number;
  /** The JS heap's share (cells, typed-array storage); the rest is malloc'd string buffers. */
  heapBytes: number;
}

export interface StreamAllocation {
  provider: StreamProvider;
  drains: number;
  stages: Record<StageName, StageAllocation>;
  /** True when a collection ran during a measurement anyway. */
  collected: boolean;
  /** What the same method measures for one decoded 8,192-character string: a check on the method itself. */
  calibrationBytes: number;
}

const NO_COLLECTION_ENVIRONMENT = {
  BUN_GC_TIMER_DISABLE: '1',
  BUN_JSC_smallHeapSize: '8000000000',
  BUN_JSC_mediumHeapSize: '8000000000',
  BUN_JSC_largeHeapSize: '8000000000',
};

const WARM_UP_DRAINS = 10;
/** Enough drains for ~40 MB per stage, so page-sized noise stays below a few bytes per chunk. */
const MEASURED_BYTES = 40_000_000;

interface Footprint {
  resident: number;
  heapCapacity: number;
  heapSize: number;
}

function footprint(): Footprint {
  const stats = heapStats();
  return { resident: process.memoryUsage().rss, heapCapacity: stats.heapCapacity, heapSize: stats.heapSize };
}

async function measureStage(
  drain: (workload: StreamWorkload) => Promise<number>,
  workload: StreamWorkload,
  drains: number,
): Promise<StageAllocation & { collected: boolean }> {
  for (let warmUp = 0; warmUp < 2; warmUp++) await drain(workload);
  const before = footprint();
  for (let round = 0; round < drains; round++) await drain(workload);
  const after = footprint();
  const chunks = drains * CONTENT_EVENTS;
  const heapBytes = (after.heapCapacity - before.heapCapacity) / chunks;
  return { bytes: Math.max((after.resident - before.resident) / chunks, heapBytes), heapBytes, collected: after.heapSize !== before.heapSize };
}

/** Decodes 1,000 distinct 8,192-byte ASCII buffers into strings, the malloc'd kind the heap does not count. */
function calibrate(): number {
  const decoder = new TextDecoder();
  const source = new Uint8Array(8_192).fill(0x61);
  const kept: string[] = [];
  const before = footprint();
  for (let count = 0; count < 1_000; count++) {
    source[0] = 0x30 + (count % 10);
    kept.push(decoder.decode(source));
  }
  return (footprint().resident - before.resident) / kept.length;
}

async function measureInThisProcess(provider: StreamProvider): Promise<StreamAllocation> {
  const workload = streamWorkload(provider);
  const tally = await tallyGatewayPath(workload);
  if (tally.contentParts !== CONTENT_EVENTS) throw new Error(`${provider}: ${tally.contentParts} content parts, expected ${CONTENT_EVENTS}`);
  for (let warmUp = 0; warmUp < WARM_UP_DRAINS; warmUp++) await drainGatewayPath(workload);
  const nativeBytes = workload.chunks.reduce((total, chunk) => total + chunk.length, 0);
  // The whole path allocates some 8× the native stream; aim for MEASURED_BYTES per stage.
  const drains = Math.min(20, Math.max(4, Math.ceil(MEASURED_BYTES / (8 * nativeBytes))));
  const calibrationBytes = calibrate();
  const stages = {} as Record<StageName, StageAllocation>;
  let collected = false;
  for (const [stage, drain] of Object.entries(STAGES) as [StageName, (typeof STAGES)[StageName]][]) {
    const measured = await measureStage(drain, workload, drains);
    stages[stage] = { bytes: measured.bytes, heapBytes: measured.heapBytes };
    collected ||= measured.collected;
  }
  return { provider, drains, stages, collected, calibrationBytes };
}

/** Runs this file in a child Bun without automatic collection and returns its figures. */
export async function measureStreamAllocation(provider: StreamProvider): Promise<StreamAllocation> {
  const child = Bun.spawn([process.execPath, import.meta.path, provider], {
    env: { ...process.env, ...NO_COLLECTION_ENVIRONMENT },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [output, errors, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (exitCode !== 0) throw new Error(`the allocation run for ${provider} exited with ${exitCode}: ${errors.trim()}`);
  return JSON.parse(output) as StreamAllocation;
}

function isStreamProvider(name: string | undefined): name is StreamProvider {
  return STREAM_PROVIDERS.some((provider) => provider === name);
}

if (import.meta.main) {
  const provider = process.argv[2];
  if (!isStreamProvider(provider)) throw new Error(`usage: bun bench/micro/stream-allocation.ts <${STREAM_PROVIDERS.join('|')}>`);
  console.log(JSON.stringify(await measureInThisProcess(provider)));
}
