// The whole per-chunk streaming path per provider, on a long synthetic stream in the provider's own
// SSE framing: time per content chunk (no target) and bytes allocated per content chunk, judged
// against the encoded frame the client receives for that chunk (allocation ≤ 4× frame).

import { CONTENT_EVENTS, STREAM_PROVIDERS, type StreamProvider } from './fixtures/provider-streams.ts';
import { benchmark } from './registry.ts';
import { formatNanoseconds, printTable, type SummaryVerdict, type Trial } from './report.ts';
import { measureStreamAllocation, type StageName, type StreamAllocation } from './stream-allocation.ts';
import { drainGatewayPath, streamWorkload, tallyGatewayPath, type PathTally, type StreamWorkload } from './stream-path.ts';

export const ALLOCATION_TARGET = { label: 'allocation ≤ 4× frame', factor: 4 } as const;

export interface StreamProviderCase {
  provider: StreamProvider;
  benchName: string;
  workload: StreamWorkload;
  tally: PathTally;
  /** Undefined when the pattern left the bench out; a string when the measurement failed. */
  allocation: StreamAllocation | string | undefined;
}

/** Builds each provider's stream, checks it end to end, and measures its allocation if the pattern selects it. */
export async function prepareStreamProviderCases(pattern: RegExp | undefined): Promise<StreamProviderCase[]> {
  const cases: StreamProviderCase[] = [];
  for (const provider of STREAM_PROVIDERS) {
    const workload = streamWorkload(provider);
    const tally = await tallyGatewayPath(workload);
    if (tally.contentParts !== CONTENT_EVENTS || tally.finishReason !== 'stop' || !tally.sawUsage) {
      throw new Error(`${provider}: the synthetic stream gave ${tally.contentParts} content parts, finish ${tally.finishReason}, usage ${tally.sawUsage}`);
    }
    const benchName = `stream path: ${provider} (${workload.chunks.length} SSE events, ${CONTENT_EVENTS} text deltas)`;
    let allocation: StreamProviderCase['allocation'];
    if (pattern === undefined || pattern.test(benchName)) {
      allocation = await measureStreamAllocation(provider).catch((error: unknown) => (error instanceof Error ? error.message : String(error)));
    }
    cases.push({ provider, benchName, workload, tally, allocation });
  }
  return cases;
}

export function registerStreamProviderBenches(cases: readonly StreamProviderCase[]): void {
  for (const streamCase of cases) benchmark(streamCase.benchName, () => drainGatewayPath(streamCase.workload));
}

const bytes = (value: number): string => `${Math.round(value).toLocaleString('en-US')} B`;

/** What each stage adds, per content chunk: the stages are cumulative prefixes of the path. */
function stageShares(allocation: StreamAllocation): Record<StageName, number> {
  const { source, sse, json, parts, path } = allocation.stages;
  return { source: source.bytes, sse: sse.bytes - source.bytes, json: json.bytes - sse.bytes, parts: parts.bytes - json.bytes, path: path.bytes - parts.bytes };
}

export function printStreamProviderSummary(cases: readonly StreamProviderCase[], trials: readonly Trial[]): SummaryVerdict {
  const verdict: SummaryVerdict = { passed: 0, failed: 0 };
  const measured = cases.filter((streamCase) => streamCase.allocation !== undefined);
  if (measured.length === 0) return verdict;
  const rows: string[][] = [
    ['provider', 'native B/chunk', 'frame B/chunk', 'time/chunk', 'allocated/chunk', '÷ frame', '÷ (native + frame)', 'target', 'result'],
  ];
  const breakdown: string[][] = [['provider', 'body read', 'SSE framing', 'JSON.parse', 'provider code', 'observe + encode + bytes', 'JS heap share']];
  const calibrations: number[] = [];
  for (const { provider, benchName, workload, tally, allocation } of measured) {
    const native = workload.native.contentEventBytes / CONTENT_EVENTS;
    const frame = tally.contentFrameBytes / tally.contentParts;
    const average = trials.find((trial) => trial.alias === benchName)?.runs[0]?.stats?.avg;
    const time = average === undefined ? 'not run' : formatNanoseconds(average / CONTENT_EVENTS);
    if (typeof allocation !== 'object' || allocation.collected) {
      rows.push([provider, bytes(native), bytes(frame), time, typeof allocation === 'string' ? 'error' : 'GC ran', '', '', ALLOCATION_TARGET.label, 'FAIL']);
      if (typeof allocation === 'string') console.log(`${provider} allocation: ${allocation}`);
      verdict.failed++;
      continue;
    }
    const allocated = allocation.stages.path.bytes;
    const passed = allocated <= ALLOCATION_TARGET.factor * frame;
    if (passed) verdict.passed++;
    else verdict.failed++;
    rows.push([
      provider,
      bytes(native),
      bytes(frame),
      time,
      bytes(allocated),
      `${(allocated / frame).toFixed(1)}×`,
      `${(allocated / (native + frame)).toFixed(1)}×`,
      ALLOCATION_TARGET.label,
      passed ? 'PASS' : 'FAIL',
    ]);
    const shares = stageShares(allocation);
    breakdown.push([
      provider,
      bytes(shares.source),
      bytes(shares.sse),
      bytes(shares.json),
      bytes(shares.parts),
      bytes(shares.path),
      bytes(allocation.stages.path.heapBytes),
    ]);
    calibrations.push(allocation.calibrationBytes);
  }
  console.log(`\nStreaming path per provider, per content chunk (${CONTENT_EVENTS} text deltas; time = bench avg ÷ ${CONTENT_EVENTS})`);
  printTable(rows);
  console.log('\nAllocation per content chunk by stage (each stage is what it adds to the one before)');
  printTable(breakdown);
  if (calibrations.length > 0)
    console.log(
      `Method check: one decoded 8,192-character string measured at ${bytes(Math.min(...calibrations))}–${bytes(Math.max(...calibrations))} (mimalloc's 10,240-byte size class).`,
    );
  console.log(`\nStreaming allocation: ${verdict.passed} PASS, ${verdict.failed} FAIL`);
  return verdict;
}
