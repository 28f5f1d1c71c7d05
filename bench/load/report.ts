// Turns a run into the Markdown section of bench/RESULTS.md (also printed to the console).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { formatMachine } from './machine.ts';
import type { ForeignLoad } from './cpu-usage.ts';
import { FOREIGN_LOAD_WARNING_PERCENT } from './quiet.ts';
import type { FallbackResult, TalliedRun } from './fallback.ts';
import { HEALTH_POLICY, fallbackOverheadMs } from './fallback.ts';
import type { BenchResults, PathName, TargetCheck } from './results.ts';
import { PATH_LABELS, REFERENCE, addedFirstByteMs, addedFixedRateP50Ms, addedP50Ms, evaluateTargets, mebibytes, throughputShare } from './results.ts';

const RESULTS_HEADER = `# Keyway load benchmark results

Produced by \`bun bench/load.ts\` (see bench/README.md). Newest run first; a run replaces the section
of the same day. Numbers from different machines are not comparable.
`;

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

function share(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`;
}

function table(headers: string[], rows: string[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function latencySection(results: BenchResults): string {
  const rows = results.paths
    .filter((path) => results.latency[path] !== undefined)
    .map((path) => {
      const result = results.latency[path];
      const added = path === 'direct' ? undefined : addedP50Ms(results, path);
      const reference = path === 'nginx' ? REFERENCE.nginxAddedP50Ms : path === 'bun-passthrough' ? REFERENCE.passthroughAddedP50Ms : undefined;
      return [
        PATH_LABELS[path],
        fixed(result?.latencyMs.p50, 3),
        fixed(result?.latencyMs.p90, 3),
        fixed(result?.latencyMs.p99, 3),
        fixed(result?.latencyMs.mean, 3),
        path === 'direct' ? '(baseline)' : fixed(added, 3),
        reference === undefined ? '' : `≈ ${reference}`,
        String(result?.requests ?? '–'),
        String(result === undefined ? '–' : Object.values(result.errors).reduce((sum, count) => sum + count, 0)),
      ];
    });
  return table(['path', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'added p50 ms', 'reference added p50', 'requests', 'errors'], rows);
}

function throughputSection(results: BenchResults): string {
  const rows = results.paths.map((path) => {
    const result = results.throughput[path];
    return [
      PATH_LABELS[path],
      fixed(result?.requestsPerSecond, 0),
      result === undefined ? '–' : `${Math.min(...result.roundRates).toFixed(0)}–${Math.max(...result.roundRates).toFixed(0)}`,
      path === 'direct' ? '' : share(throughputShare(results, path, 'bun-passthrough')),
      path === 'direct' ? '' : share(throughputShare(results, path, 'nginx')),
      String(result?.requests ?? '–'),
      String(result?.errors ?? '–'),
    ];
  });
  return table(['path', 'req/s', 'rounds min–max', 'vs Bun pass-through', 'vs nginx', 'requests', 'errors'], rows);
}

function fixedRateSection(results: BenchResults): string {
  const nginxAdded = addedFixedRateP50Ms(results, 'nginx');
  const rows = results.paths
    .filter((path) => results.fixedRate[path] !== undefined)
    .map((path) => {
      const result = results.fixedRate[path];
      const added = path === 'direct' ? undefined : addedFixedRateP50Ms(results, path);
      return [
        PATH_LABELS[path],
        fixed(result?.requestsPerSecond, 0),
        fixed(result?.latencyMs.p50, 3),
        fixed(result?.latencyMs.p99, 3),
        fixed(result?.latencyMs.p999, 3),
        fixed(result?.latencyMs.max, 2),
        path === 'direct' ? '(baseline)' : fixed(added, 3),
        path === 'direct' || path === 'nginx' || added === undefined || nginxAdded === undefined ? '' : fixed(added - nginxAdded, 3),
        String(result?.lateSends ?? '–'),
        String(result === undefined ? '–' : Object.values(result.errors).reduce((sum, count) => sum + count, 0)),
      ];
    });
  return table(['path', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'added p50 ms', 'added p50 − nginx’s', 'sent late', 'errors'], rows);
}

function streamingSection(results: BenchResults): string {
  const rows = results.paths
    .filter((path) => results.streaming[path] !== undefined)
    .map((path) => {
      const summary = results.streaming[path];
      return [
        PATH_LABELS[path],
        fixed(summary?.firstByteMs.p50, 3),
        fixed(summary?.firstByteMs.p90, 3),
        path === 'direct' ? '(baseline)' : fixed(addedFirstByteMs(results, path), 3),
        fixed(summary?.gapMs.p1, 2),
        fixed(summary?.gapMs.p50, 2),
        fixed(summary?.gapMs.p99, 2),
        fixed(summary?.gapMs.max, 2),
        share(summary?.coalescedStreams),
        String(summary?.samples ?? '–'),
        String(summary?.incompleteStreams ?? '–'),
      ];
    });
  return table(
    [
      'path',
      'TTFB p50 ms',
      'TTFB p90 ms',
      'added TTFB p50 ms',
      'gap p1 ms',
      'gap p50 ms',
      'gap p99 ms',
      'gap max ms',
      'streams coalesced',
      'streams',
      'incomplete',
    ],
    rows,
  );
}

function memorySection(results: BenchResults): string {
  const memory = results.memory;
  const mib = (kibibytes: number | undefined): string => fixed(mebibytes(kibibytes), 1);
  const passthrough = `Bun pass-through idle RSS for comparison: ${mib(results.passthroughIdleKibibytes)} MiB.`;
  if (memory === undefined) return `Keyway not measured. ${passthrough}`;
  const rows = [
    ['idle after start', mib(memory.idleKibibytes), '0'],
    [`after ${results.settings.memoryFirstMark.toLocaleString('en')} requests`, mib(memory.afterFirstMarkKibibytes), String(memory.requestsAtFirstReading)],
    [`after ${results.settings.memorySecondMark.toLocaleString('en')} requests`, mib(memory.afterSecondMarkKibibytes), String(memory.requestsAtSecondReading)],
    ['end of the whole run', mib(memory.endKibibytes), ''],
  ];
  const method = 'Each reading is the lowest VmRSS over 2 s once the load stops (the end-of-run one is a single reading).';
  return `${table(['Keyway', 'RSS MiB', 'requests completed'], rows)}\n\n${method} ${passthrough} Load errors during this phase: ${memory.errors}.`;
}

function counts(distribution: Record<string, number>): string {
  return Object.entries(distribution)
    .sort((left, right) => right[1] - left[1])
    .map(([name, count]) => `${name}: ${count}`)
    .join(', ');
}

function talliedRow(label: string, run: TalliedRun): string[] {
  return [
    label,
    String(run.requests),
    `${((100 * run.successes) / Math.max(1, run.requests)).toFixed(3)}%`,
    counts(run.providers),
    counts(run.fallbackAttempts),
    fixed(run.requestsPerSecond, 0),
    fixed(run.p50Ms, 3),
    fixed(run.p99Ms, 3),
  ];
}

function fallbackSection(results: BenchResults): string {
  const fallback: FallbackResult | undefined = results.fallback;
  if (fallback === undefined) return `Not measured${results.fallbackSkipReason === undefined ? '' : `: ${results.fallbackSkipReason.split('\n')[0]}`}.`;
  const settings = fallback.settings;
  const autoDisable = fallback.autoDisable;
  const loadTable = table(
    ['run', 'requests', 'succeeded', 'X-Provider-Used', 'X-Fallback-Attempts', 'req/s', 'p50 ms', 'p99 ms'],
    [
      talliedRow('baseline: groq first, no failed attempt', fallback.healthy),
      talliedRow('openai failing (500) first', fallback.failing),
      talliedRow('openai failing (500) first, auto_disable on', autoDisable),
    ],
  );
  const cost = fallback.rateLimit;
  const added = cost.fallbackP50Ms - cost.directRouteP50Ms;
  const logged = cost.failedAttemptLoggedP50Ms;
  const costTable = table(
    ['c=1 p50', 'ms'],
    [
      ['Keyway, openai 429 → groq 200 (one fallback)', fixed(cost.fallbackP50Ms, 3)],
      ['Keyway, groq first (no fallback)', fixed(cost.directRouteP50Ms, 3)],
      ['added by the fallback', fixed(added, 3)],
      ['failed attempt: the 429 straight from its stub (wrk)', fixed(cost.failedAttemptRoundTripP50Ms, 3)],
      [`failed attempt as Keyway logged it (median of ${cost.loggedAttempts} attempts)`, fixed(logged, 3)],
      ['**fallback beyond the failed attempt** (added − 429 round trip)', `**${fixed(fallbackOverheadMs(cost), 3)}**`],
      ['fallback beyond the failed attempt as Keyway logged it', fixed(logged === undefined ? undefined : added - logged, 3)],
    ],
  );
  const policy = `auto_disable ${HEALTH_POLICY.auto_disable}, health_threshold ${HEALTH_POLICY.health_threshold}, min_samples ${HEALTH_POLICY.min_samples}, check_interval ${HEALTH_POLICY.check_interval} s`;
  const fallbackRun = cost.fallbackRun;
  return `Three stubs stand in for openai, groq and mistral (class override: gpt-4o-mini on all three); routing \`fallback_chain\` with fallback on rate_limit, timeout, server_error and model_not_available. Each run below has its own fresh Keyway. Load: wrk at c=${settings.connections}, ${settings.rounds} interleaved round(s) × ${settings.requestsPerRound.toLocaleString('en')} requests per chain after a ${settings.warmupRequests.toLocaleString('en')}-request warm-up of each; the auto_disable run is one run of ${settings.autoDisableRequests.toLocaleString('en')} requests. X-Provider-Used and X-Fallback-Attempts are counted from every response.

${loadTable}

With auto_disable (${policy}) the failing stub received **${autoDisable.failingStubCalls}** of the ${autoDisable.requests} requests by its own counter (and ${autoDisable.failingStubProbes} health probe(s) during the run); openai's status afterwards: ${autoDisable.failingProviderStatus}.

**429 fallback cost** (c=1, ${settings.costRounds} interleaved round(s) × ${settings.costRequestsPerRound.toLocaleString('en')} requests per arm, each p50 the median over rounds; this Keyway logs at debug level, both arms alike; fallback arm: ${fallbackRun.successes} of ${fallbackRun.requests} answered 200, X-Provider-Used ${counts(fallbackRun.providers)}, X-Fallback-Attempts ${counts(fallbackRun.fallbackAttempts)}):

${costTable}`;
}

function targetsSection(checks: TargetCheck[]): string {
  return table(
    ['target', 'goal', 'measured', 'result'],
    checks.map((entry) => [entry.name, entry.target, entry.measured, `**${entry.verdict}**`]),
  );
}

function referenceNote(results: BenchResults): string {
  const nginxShare = throughputShare(results, 'bun-passthrough', 'nginx');
  return `Sanity check against the reference figures for this machine type: nginx added p50 ${fixed(addedP50Ms(results, 'nginx'), 3)} ms (≈ ${REFERENCE.nginxAddedP50Ms}), Bun pass-through added p50 ${fixed(addedP50Ms(results, 'bun-passthrough'), 3)} ms (≈ ${REFERENCE.passthroughAddedP50Ms}), Bun pass-through throughput ${share(nginxShare)} of nginx (≈ ${Math.round(REFERENCE.passthroughShareOfNginx * 100)}%).`;
}

function foreignLoadNote(results: BenchResults): string {
  const describe = (load: ForeignLoad): string => {
    const steal = load.stealPercent >= 0.5 ? ` +${load.stealPercent.toFixed(1)}% steal` : '';
    const culprits = load.foreignPercent > FOREIGN_LOAD_WARNING_PERCENT && load.topProcesses.length > 0 ? ` (${load.topProcesses.join(', ')})` : '';
    return `${load.foreignPercent.toFixed(1)}%${steal}${culprits}`;
  };
  const kept = results.foreignLoad.keptRoundsPercent;
  const phases = Object.entries(results.foreignLoad.phases)
    .map(([phase, load]) => `${phase} ${describe(load)}${kept[phase] === undefined ? '' : `, kept rounds ${(kept[phase] ?? 0).toFixed(1)}%`}`)
    .join('; ');
  // What the timings saw is the kept rounds; the memory phase is left out, outside load does not move RSS.
  const worst = Math.max(0, ...Object.values(kept));
  const warning = worst > FOREIGN_LOAD_WARNING_PERCENT ? ' **Other work competed for the CPU during the measurements: treat these figures as noisy.**' : '';
  const redone = Object.entries(results.foreignLoad.redoneRounds)
    .map(([phase, count]) => `${phase} ${count}`)
    .join(', ');
  const redoneNote = redone ? ` Rounds thrown away and rerun because of outside load: ${redone}.` : '';
  return `- CPU used by processes outside the benchmark (share of all cores, whole phase including rerun rounds): before start ${describe(results.foreignLoad.beforeStart)}; ${phases}.${redoneNote}${warning}`;
}

export function sectionHeading(results: BenchResults): string {
  return `## ${results.startedAt.toISOString().slice(0, 10)}`;
}

export function renderSection(results: BenchResults): string {
  const settings = results.settings;
  const pinning = Object.entries(settings.pinning)
    .map(([name, cores]) => `${name} → CPU ${cores}`)
    .join(', ');
  const keyway = results.keywaySkipReason === undefined ? '' : `\n**Keyway leg skipped:** ${results.keywaySkipReason.split('\n')[0]}\n`;
  return `${sectionHeading(results)}

Run at ${results.startedAt.toISOString()} (${results.elapsedSeconds.toFixed(0)} s${settings.quick ? ', --quick: short phases, not representative' : ''}).

- Machine: ${formatMachine(results.machine)}
- Pinning (read back from /proc): ${pinning || 'none (fewer than 2 cores or no taskset)'}
${foreignLoadNote(results)}
- Request: POST /v1/chat/completions, ${settings.requestBytes} B JSON body, same body on every path; ~1 KB JSON answer
${keyway}
### a. Latency at concurrency 1 (wrk, ${settings.latencyRounds} interleaved round(s) × ${settings.latencyRequestsPerRound.toLocaleString('en')} requests per path after warm-up; each percentile is the median over rounds)

${latencySection(results)}

### a2. Fixed rate: ${settings.fixedRatePerSecond} req/s at concurrency 1 (wrk paced by a Lua \`delay()\` on a fixed ${(1000 / settings.fixedRatePerSecond).toFixed(0)} ms grid; ${settings.fixedRateRounds} interleaved round(s) × ${settings.fixedRateSecondsPerRound} s per path; each percentile the median over rounds)

${fixedRateSection(results)}

"Sent late": requests whose slot had passed when the previous answer arrived (wrk times each from when it is written, so such a stall is counted once, not for every slot it held up).

### b. Throughput at concurrency ${settings.throughputConnections} (wrk, ${settings.throughputRounds} interleaved round(s) × ${settings.throughputSecondsPerRound} s per path after warm-up; req/s is the median round)

${throughputSection(results)}
${results.skippedPaths.length === 0 ? '' : `\nPaths left out: ${results.skippedPaths.map((reason) => reason.replaceAll('\n', ' ').slice(0, 400)).join('; ')}.\n`}
The team member's path sends the same 1 KB request with the seed team's model (gpt-3.5-turbo), X-Team-ID and X-Project-Tag, with every policy of the seed's team on (allowlists, a daily budget raised so nothing is refused but every request is reserved and settled, an approval threshold, project tags, content blocking). The PostgreSQL + Redis Keyway (--stores) uses the local test servers, pinned to the load core while it runs (their CPU counted as the benchmark's; see Pinning in bench/README.md): in a deployment they are other machines.

### c. Streaming (${settings.chunkCount} chunks, ${settings.chunkDelayMs} ms apart at the stub; ${settings.streamCount} sequential streams per path, alternating between paths)

TTFB = request sent → first body bytes. Gaps are between consecutive content chunks as the client receives them; without buffering they stay near ${settings.chunkDelayMs} ms. "Coalesced" counts streams where two chunks arrived in the same TCP read.

${streamingSection(results)}

### d. Keyway memory (c=${settings.throughputConnections}, non-streaming, fresh process)

${memorySection(results)}

### e. Fallback under failure

${fallbackSection(results)}

### Targets

${targetsSection(evaluateTargets(results))}

${referenceNote(results)}
`;
}

/** Puts the run's section at the top of RESULTS.md, replacing a section of the same day. */
export function writeResultsFile(path: string, results: BenchResults): void {
  const section = renderSection(results);
  const heading = sectionHeading(results);
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : RESULTS_HEADER;
  const firstSection = existing.indexOf('\n## ');
  const header = firstSection === -1 ? existing.trimEnd() : existing.slice(0, firstSection).trimEnd();
  const sections = firstSection === -1 ? [] : existing.slice(firstSection + 1).split(/\n(?=## )/);
  const kept = sections.filter((text) => !text.startsWith(`${heading}\n`)).map((text) => text.trimEnd());
  writeFileSync(path, `${[header, section.trimEnd(), ...kept].join('\n\n')}\n`);
}

/** The ratios issue 15 and issue 13 judge, one line each, for the console. */
export function formatRatios(results: BenchResults): string {
  const ratio = (path: PathName, reference: PathName): string => {
    const value = throughputShare(results, path, reference);
    return value === undefined ? '–' : `${value.toFixed(2)}×`;
  };
  const milliseconds = (value: number | undefined): string => (value === undefined ? '–' : `${value.toFixed(3)} ms`);
  const fixedRate = (path: PathName): string => {
    const result = results.fixedRate[path];
    return result === undefined ? '–' : `p50 ${milliseconds(result.latencyMs.p50)}, p99 ${milliseconds(result.latencyMs.p99)}`;
  };
  const memory = results.memory;
  const mib = (kibibytes: number | undefined): string => (kibibytes === undefined ? '–' : `${(kibibytes / 1024).toFixed(1)} MiB`);
  return [
    `  throughput c=${results.settings.throughputConnections}, operator key: Keyway/pass-through ${ratio('keyway', 'bun-passthrough')}, Keyway/nginx ${ratio('keyway', 'nginx')}, pass-through/nginx ${ratio('bun-passthrough', 'nginx')}`,
    `  throughput c=${results.settings.throughputConnections}, team member (seed policies): Keyway/pass-through ${ratio('keyway-team', 'bun-passthrough')}, vs operator key ${ratio('keyway-team', 'keyway')}`,
    `  PostgreSQL + Redis vs embedded, c=${results.settings.throughputConnections}: operator key ${ratio('keyway-pg', 'keyway')}, team member ${ratio('keyway-pg-team', 'keyway-team')}`,
    `  fixed ${results.settings.fixedRatePerSecond} req/s, c=1: Keyway ${fixedRate('keyway')}; pass-through ${fixedRate('bun-passthrough')}; nginx ${fixedRate('nginx')}; direct ${fixedRate('direct')}`,
    `  fixed-rate added p50: Keyway ${milliseconds(addedFixedRateP50Ms(results, 'keyway'))}, pass-through ${milliseconds(addedFixedRateP50Ms(results, 'bun-passthrough'))}, nginx ${milliseconds(addedFixedRateP50Ms(results, 'nginx'))}`,
    `  streaming first byte added (p50): Keyway ${milliseconds(addedFirstByteMs(results, 'keyway'))}, pass-through ${milliseconds(addedFirstByteMs(results, 'bun-passthrough'))}, nginx ${milliseconds(addedFirstByteMs(results, 'nginx'))}`,
    `  Keyway RSS: idle ${mib(memory?.idleKibibytes)}, after ${memory?.requestsAtFirstReading ?? '–'} requests ${mib(memory?.afterFirstMarkKibibytes)}, after ${memory?.requestsAtSecondReading ?? '–'} ${mib(memory?.afterSecondMarkKibibytes)} (pass-through idle ${mib(results.passthroughIdleKibibytes)})`,
  ].join('\n');
}

export function formatChecksForConsole(checks: TargetCheck[]): string {
  return checks.map((entry) => `  ${entry.verdict.padEnd(4)}  ${entry.name}: ${entry.measured} (goal ${entry.target})`).join('\n');
}

export function pathLabel(path: PathName): string {
  return PATH_LABELS[path];
}
