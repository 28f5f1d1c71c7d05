// End-to-end load benchmark: the same chat request sent straight to an upstream stub, through a bare
// Bun pass-through, through nginx and through Keyway, in one run on one machine. See bench/README.md.
//
//   ./node_modules/.bin/bun bench/load.ts [--allow-missing-keyway] [--install] [--quick] [--long] [--stores] [--strict]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ForeignLoad } from './load/cpu-usage.ts';
import { foreignLoad, snapshotCpu } from './load/cpu-usage.ts';
import { fallbackSettings, measureFallback } from './load/fallback.ts';
import { startKeyway } from './load/keyway.ts';
import { describeMachine, formatMachine } from './load/machine.ts';
import { startNginx } from './load/nginx.ts';
import type { PathTarget, PhaseContext } from './load/phases.ts';
import { measureFixedRate, measureLatency, measureStreaming, measureThroughput, sendRequests, verifyPath, warmUp } from './load/phases.ts';
import { INSTALL_COMMAND, installTools, missingTools, nginxInstalled } from './load/prerequisites.ts';
import type { PinnedProcess } from './load/processes.ts';
import {
  LOAD_CORE,
  PROXY_CORE,
  findFreePort,
  hasExited,
  killAllChildrenNow,
  logTail,
  pinSelf,
  readAllowedCores,
  readRssKibibytes,
  settledRssKibibytes,
  startPassthrough,
  startPinned,
  stopAllChildren,
  stopProcess,
  waitForHttp,
} from './load/processes.ts';
import { FOREIGN_LOAD_WARNING_PERCENT, QuietGuard, waitForQuiet } from './load/quiet.ts';
import { formatChecksForConsole, formatRatios, renderSection, writeResultsFile } from './load/report.ts';
import { ADMIN_API_KEY, REQUEST_BODY_BYTES, UPSTREAM_API_KEY, buildChatBody, buildStreamingChatBody } from './load/requests.ts';
import type { BenchResults, MemoryResult, RunSettings } from './load/results.ts';
import { evaluateTargets } from './load/results.ts';
import { addTeamPath, startStoresKeyway } from './load/team-and-stores.ts';
import { errorCount } from './load/wrk.ts';

interface Options {
  allowMissingKeyway: boolean;
  install: boolean;
  quick: boolean;
  long: boolean;
  stores: boolean;
  strict: boolean;
}

const USAGE = `Usage: bun bench/load.ts [options]
  --allow-missing-keyway  measure the other paths and exit 0 when Keyway cannot start
  --install               install nginx and wrk with apt-get when missing (root only)
  --quick                 short phases for trying the script out; does not write RESULTS.md
  --long                  memory readings after 100k and 1M requests (default 10k and 100k)
  --stores                also a Keyway on PostgreSQL + Redis (the test servers; own database and
                          key prefix), throughput at c=64 against the embedded default
  --strict                exit 2 when a target FAILs
nginx is optional: without it the nginx path is left out (and its ratios say "–").
Environment: STUB_CHUNK_DELAY_MS (default 5), STUB_CHUNK_COUNT (default 20), KEYWAY_TEST_POSTGRES_URL, KEYWAY_TEST_REDIS_URL,
  KEYWAY_BENCH_ENTRYPOINT (another Keyway build: a .ts file or an executable; default plugins/main.ts).`;

const BENCH_DIRECTORY = import.meta.dir;
const RESULTS_PATH = join(BENCH_DIRECTORY, 'RESULTS.md');
/** Everything, installs excluded, must finish well inside this; past it the run aborts and cleans up. */
const RUN_DEADLINE_MS = 12 * 60 * 1000;
/** --long sends a million requests more. */
const LONG_RUN_DEADLINE_MS = 25 * 60 * 1000;
const STREAM_WARMUP_COUNT = 5;
let scratchForFailure: string | undefined;

function parseOptions(argv: string[]): Options {
  const known = new Set(['--allow-missing-keyway', '--install', '--quick', '--long', '--stores', '--strict', '--help', '-h']);
  const unknown = argv.filter((argument) => !known.has(argument));
  if (unknown.length > 0 || argv.includes('--help') || argv.includes('-h')) {
    if (unknown.length > 0) console.error(`Unknown option(s): ${unknown.join(' ')}`);
    console.log(USAGE);
    process.exit(unknown.length > 0 ? 1 : 0);
  }
  return {
    allowMissingKeyway: argv.includes('--allow-missing-keyway'),
    install: argv.includes('--install'),
    quick: argv.includes('--quick'),
    long: argv.includes('--long'),
    stores: argv.includes('--stores'),
    strict: argv.includes('--strict'),
  };
}

function buildSettings(quick: boolean, long: boolean): RunSettings & { warmupSeconds: number } {
  return {
    quick,
    long,
    requestBytes: REQUEST_BODY_BYTES,
    latencyRounds: quick ? 1 : 3,
    latencyRequestsPerRound: 2_000,
    fixedRatePerSecond: 200,
    fixedRateRounds: quick ? 1 : 3,
    fixedRateSecondsPerRound: quick ? 3 : 10,
    throughputConnections: 64,
    throughputRounds: quick ? 1 : 3,
    throughputSecondsPerRound: 2,
    streamCount: quick ? 10 : 40,
    chunkDelayMs: Number(process.env.STUB_CHUNK_DELAY_MS ?? '5'),
    chunkCount: Number(process.env.STUB_CHUNK_COUNT ?? '20'),
    memoryFirstMark: long ? 100_000 : quick ? 2_000 : 10_000,
    memorySecondMark: long ? 1_000_000 : quick ? 10_000 : 100_000,
    pinning: {},
    warmupSeconds: quick ? 1 : 2,
  };
}

async function ensurePrerequisites(options: Options): Promise<void> {
  let missing = missingTools();
  if ((missing.length > 0 || !nginxInstalled()) && options.install) {
    const problem = await installTools();
    if (problem !== undefined) console.error(problem);
    missing = missingTools();
  }
  if (missing.length === 0) return;
  const utilities = missing.includes('taskset') ? ' (taskset is in util-linux)' : '';
  console.error(`Missing: ${missing.join(', ')}${utilities}. Install them with:\n  ${INSTALL_COMMAND}\n(or rerun as root with --install)`);
  process.exit(1);
}

function log(line: string): void {
  console.log(line);
}

const foreignLoadByPhase: Record<string, ForeignLoad> = {};

/** Runs one phase and records how much CPU other processes took meanwhile. */
async function inPhase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const before = snapshotCpu();
  const value = await work();
  const load = foreignLoad(before, snapshotCpu());
  foreignLoadByPhase[name] = load;
  if (load.foreignPercent > FOREIGN_LOAD_WARNING_PERCENT) {
    log(`  (other processes took ${load.foreignPercent.toFixed(1)}% of the machine during this phase: ${load.topProcesses.join(', ')})`);
  }
  return value;
}

/** Gives a compile or test run next door up to 30 s to finish before measuring; runs anyway after that. */
async function waitForQuietMachine(): Promise<ForeignLoad> {
  const load = await waitForQuiet(30_000, log);
  if (load.foreignPercent > FOREIGN_LOAD_WARNING_PERCENT) log('Still busy: measuring anyway, and the results will say so.');
  return load;
}

async function startBackground(
  scratch: string,
  settings: RunSettings,
): Promise<{ stub: PinnedProcess; stubPort: number; targets: PathTarget[]; passthrough: PinnedProcess }> {
  const stubPort = findFreePort();
  const stub = startPinned(
    'upstream stub',
    LOAD_CORE,
    [process.execPath, join(BENCH_DIRECTORY, 'upstream-stub.ts')],
    { STUB_PORT: String(stubPort), STUB_CHUNK_DELAY_MS: String(settings.chunkDelayMs), STUB_CHUNK_COUNT: String(settings.chunkCount) },
    join(scratch, 'stub.out'),
  );
  const { process: passthrough, port: passthroughPort } = startPassthrough('Bun pass-through', stubPort, join(scratch, 'passthrough.out'));
  const nginxPort = findFreePort();
  const nginx = nginxInstalled() ? startNginx(join(scratch, 'nginx'), nginxPort, stubPort) : undefined;
  if (nginx === undefined) log('nginx is not installed: its path is left out of this run.');
  const authorization = { authorization: `Bearer ${UPSTREAM_API_KEY}` };
  const children: [PinnedProcess, number][] = [
    [stub, stubPort],
    [passthrough, passthroughPort],
  ];
  if (nginx !== undefined) children.push([nginx, nginxPort]);
  for (const [child, port] of children) {
    const problem = await waitForHttp(`http://127.0.0.1:${port}/v1/models`, child, 15_000, 200, authorization);
    if (problem !== undefined) throw new Error(`${problem}\n${logTail(child)}`);
    settings.pinning[child.name] = readAllowedCores(child.pid);
  }
  const targets: PathTarget[] = [
    { name: 'direct', baseUrl: `http://127.0.0.1:${stubPort}`, apiKey: UPSTREAM_API_KEY },
    { name: 'bun-passthrough', baseUrl: `http://127.0.0.1:${passthroughPort}`, apiKey: UPSTREAM_API_KEY },
  ];
  if (nginx !== undefined) targets.push({ name: 'nginx', baseUrl: `http://127.0.0.1:${nginxPort}`, apiKey: UPSTREAM_API_KEY });
  return { stub, stubPort, targets, passthrough };
}

/** After the first mark and after the second mark, on a fresh Keyway before any other load. */
async function measureMemory(
  keyway: PinnedProcess,
  target: PathTarget,
  context: PhaseContext,
  settings: RunSettings,
  idleKibibytes: number | undefined,
): Promise<MemoryResult> {
  log(`  idle RSS ${((idleKibibytes ?? 0) / 1024).toFixed(1)} MiB`);
  const first = await sendRequests(target, context, settings.throughputConnections, settings.memoryFirstMark, Math.max(60, settings.memoryFirstMark / 4_000));
  const afterFirstMarkKibibytes = await settledRssKibibytes(keyway.pid);
  log(`  after ${first.requests} requests: RSS ${((afterFirstMarkKibibytes ?? 0) / 1024).toFixed(1)} MiB (${first.requestsPerSecond.toFixed(0)} req/s)`);
  const remaining = settings.memorySecondMark - first.requests;
  // At the slowest rate seen on this machine kind (~5k req/s), with room to spare.
  const second = await sendRequests(target, context, settings.throughputConnections, remaining, Math.max(180, remaining / 4_000));
  const afterSecondMarkKibibytes = await settledRssKibibytes(keyway.pid);
  const total = first.requests + second.requests;
  log(`  after ${total} requests: RSS ${((afterSecondMarkKibibytes ?? 0) / 1024).toFixed(1)} MiB (${second.requestsPerSecond.toFixed(0)} req/s)`);
  return {
    idleKibibytes,
    afterFirstMarkKibibytes,
    afterSecondMarkKibibytes,
    requestsAtFirstReading: first.requests,
    requestsAtSecondReading: total,
    endKibibytes: undefined,
    errors: errorCount(first) + errorCount(second),
  };
}

/**
 * The seed team's member on the Keyway under test, and with --stores a second Keyway on PostgreSQL +
 * Redis with both keys. A path that cannot be set up is left out, and the report says why.
 */
async function startExtraPaths(
  keywayTarget: PathTarget,
  scratch: string,
  stubPort: number,
  context: PhaseContext,
  settings: RunSettings,
  stores: boolean,
): Promise<{ targets: PathTarget[]; skipped: string[]; stop: () => Promise<void> }> {
  const targets: PathTarget[] = [];
  const skipped: string[] = [];
  const verified = async (target: PathTarget): Promise<void> => {
    const problem = await verifyPath(target, context, settings.chunkCount);
    if (problem === undefined) targets.push(target);
    else skipped.push(`${target.name}: ${problem}`);
  };
  await verified(await addTeamPath(keywayTarget.baseUrl, 'keyway-team'));
  if (!stores) return { targets, skipped, stop: async () => undefined };
  log('\nStarting Keyway on PostgreSQL + Redis…');
  const started = await startStoresKeyway(scratch, stubPort);
  if (typeof started === 'string' || !started.start.ok) {
    skipped.push(`keyway-pg: ${typeof started === 'string' ? started : started.start.ok ? '' : started.start.reason}`);
    return { targets, skipped, stop: async () => undefined };
  }
  const { process: child, baseUrl } = started.start;
  settings.pinning['keyway on PostgreSQL + Redis'] = readAllowedCores(child.pid);
  settings.pinning['its PostgreSQL and Redis servers'] = started.storeServers;
  await verified({ name: 'keyway-pg', baseUrl, apiKey: ADMIN_API_KEY });
  await verified(await addTeamPath(baseUrl, 'keyway-pg-team'));
  return {
    targets,
    skipped,
    stop: async () => {
      await stopProcess(child);
      await started.cleanUp();
    },
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  await ensurePrerequisites(options);
  armDeadline(options.long ? LONG_RUN_DEADLINE_MS : RUN_DEADLINE_MS);
  const startedAt = new Date();
  const settings = buildSettings(options.quick, options.long);
  const pinned = pinSelf();
  settings.pinning['load generator (this script, wrk)'] = readAllowedCores(process.pid);
  const machine = describeMachine();
  log(`Keyway load benchmark — ${formatMachine(machine)}`);
  log(
    pinned
      ? `Pinning: stub + load generator on CPU ${LOAD_CORE}, each proxy on CPU ${PROXY_CORE}.`
      : 'Pinning OFF (needs 2+ cores and taskset): numbers are not comparable.',
  );

  const beforeStart = await waitForQuietMachine();
  const scratch = mkdtempSync(join(tmpdir(), 'keyway-bench-'));
  // Kept on failure: the children's logs in it explain what went wrong.
  scratchForFailure = scratch;
  const guard = new QuietGuard(log);
  const context: PhaseContext = { scratchDirectory: scratch, guard, body: buildChatBody(), streamingBody: buildStreamingChatBody(), log };
  const { stub, stubPort, targets, passthrough } = await startBackground(scratch, settings);
  const passthroughIdleKibibytes = readRssKibibytes(passthrough.pid);

  let keywaySkipReason: string | undefined;
  let memory: MemoryResult | undefined;
  let keyway: PinnedProcess | undefined;
  log('\nStarting Keyway…');
  const keywayStart = await startKeyway(join(scratch, 'keyway'), findFreePort(), { openai: stubPort });
  if (keywayStart.ok) {
    const keywayProcess = keywayStart.process;
    keyway = keywayProcess;
    settings.pinning.keyway = readAllowedCores(keyway.pid);
    const keywayTarget: PathTarget = { name: 'keyway', baseUrl: keywayStart.baseUrl, apiKey: ADMIN_API_KEY };
    // A moment for start-up work (migrations, caches) to settle, and no inference yet, so idle means idle.
    await Bun.sleep(1000);
    const idleKibibytes = await settledRssKibibytes(keyway.pid);
    const problem = await verifyPath(keywayTarget, context, settings.chunkCount);
    if (problem === undefined) {
      log('d. Keyway memory (fresh process, c=64 non-streaming)');
      memory = await inPhase('d', () => measureMemory(keywayProcess, keywayTarget, context, settings, idleKibibytes));
      targets.push(keywayTarget);
    } else {
      keywaySkipReason = `Keyway answered wrongly: ${problem}`;
      await stopProcess(keywayProcess);
    }
  } else {
    keywaySkipReason = `Keyway did not start: ${keywayStart.reason}`;
  }
  if (keywaySkipReason !== undefined) {
    log(
      `\n*** KEYWAY LEG SKIPPED ***\n${keywaySkipReason}\n${options.allowMissingKeyway ? '(--allow-missing-keyway: measuring the other paths)' : 'Measuring the other paths, then exiting non-zero (pass --allow-missing-keyway to accept this).'}\n`,
    );
  }

  for (const target of targets.filter((candidate) => candidate.name !== 'keyway')) {
    const problem = await verifyPath(target, context, settings.chunkCount);
    if (problem !== undefined) throw new Error(`${target.name} path answered wrongly: ${problem}`);
  }
  const keywayTarget = targets.find((target) => target.name === 'keyway');
  const extra =
    keywayTarget === undefined
      ? { targets: [], skipped: [], stop: async () => undefined }
      : await startExtraPaths(keywayTarget, scratch, stubPort, context, settings, options.stores);

  const results: BenchResults = {
    startedAt,
    elapsedSeconds: 0,
    machine,
    settings,
    paths: [...targets, ...extra.targets].map((target) => target.name),
    keywaySkipReason,
    latency: {},
    fixedRate: {},
    skippedPaths: extra.skipped,
    throughput: {},
    streaming: {},
    memory,
    fallback: undefined,
    fallbackSkipReason: undefined,
    passthroughIdleKibibytes,
    foreignLoad: { beforeStart, phases: foreignLoadByPhase, keptRoundsPercent: {}, redoneRounds: guard.redone },
  };

  log(
    `\na. Latency at c=1 (${settings.latencyRounds} interleaved round(s) of ${settings.latencyRequestsPerRound} requests per path, after a ${settings.warmupSeconds} s warm-up at c=64)`,
  );
  results.latency = await inPhase('a', async () => {
    for (const target of targets) await warmUp(target, context, settings.warmupSeconds);
    return measureLatency(targets, context, settings.latencyRounds, settings.latencyRequestsPerRound);
  });

  log(
    `\na2. Fixed rate: ${settings.fixedRatePerSecond} req/s at c=1 (${settings.fixedRateRounds} interleaved round(s) of ${settings.fixedRateSecondsPerRound} s per path)`,
  );
  results.fixedRate = await inPhase('a2', () =>
    measureFixedRate(targets, context, settings.fixedRatePerSecond, settings.fixedRateRounds, settings.fixedRateSecondsPerRound),
  );

  log(`\nb. Throughput at c=${settings.throughputConnections}`);
  results.throughput = await inPhase('b', async () => {
    for (const target of extra.targets) await warmUp(target, context, settings.warmupSeconds);
    return measureThroughput(
      [...targets, ...extra.targets],
      context,
      settings.throughputConnections,
      settings.throughputRounds,
      settings.throughputSecondsPerRound,
    );
  });
  await extra.stop();

  log(`\nc. Streaming (${settings.chunkCount} chunks, ${settings.chunkDelayMs} ms apart)`);
  results.streaming = await inPhase('c', () => measureStreaming(targets, context, settings.streamCount, STREAM_WARMUP_COUNT, settings.chunkCount));

  if (keyway !== undefined && results.memory !== undefined) {
    results.memory.endKibibytes = readRssKibibytes(keyway.pid);
    if (hasExited(keyway)) results.keywaySkipReason = `Keyway exited during the run:\n${logTail(keyway)}`;
  }

  if (results.keywaySkipReason === undefined && keyway !== undefined) {
    // Phase e brings its own Keyways and stubs; the first Keyway has nothing left to do.
    await stopProcess(keyway);
    const fallback = fallbackSettings(options.quick);
    log(`\ne. Fallback under failure (openai stub failing; c=${fallback.connections}, then 429 at c=1)`);
    try {
      const measured = await inPhase('e', () => measureFallback(context, fallback));
      results.fallback = measured;
      Object.assign(settings.pinning, measured.pinning);
    } catch (error) {
      results.fallbackSkipReason = error instanceof Error ? error.message : String(error);
      log(`  phase e failed: ${results.fallbackSkipReason}`);
    }
  } else results.fallbackSkipReason = 'Keyway was not measured';
  if (hasExited(stub)) throw new Error(`the upstream stub died during the run:\n${logTail(stub)}`);
  results.elapsedSeconds = (Date.now() - startedAt.getTime()) / 1000;
  results.foreignLoad.keptRoundsPercent = guard.keptForeignPercent();

  const section = renderSection(results);
  log(`\n${section}`);
  const checks = evaluateTargets(results);
  log(`Ratios:\n${formatRatios(results)}`);
  log(`Targets:\n${formatChecksForConsole(checks)}`);

  const keywayMissing = results.keywaySkipReason !== undefined;
  if (options.quick) log('\n--quick: RESULTS.md left unchanged.');
  else if (keywayMissing && !options.allowMissingKeyway) log('\nKeyway missing: RESULTS.md left unchanged.');
  else {
    writeResultsFile(RESULTS_PATH, results);
    log(`\nWrote ${resolve(RESULTS_PATH)}`);
  }

  await stopAllChildren();
  rmSync(scratch, { recursive: true, force: true });
  if (keywayMissing && !options.allowMissingKeyway) return 1;
  if (options.strict && checks.some((entry) => entry.verdict === 'FAIL')) return 2;
  return 0;
}

process.on('exit', killAllChildrenNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllChildrenNow();
    // Interrupted on purpose: the logs are not wanted, unlike after a failure.
    if (scratchForFailure !== undefined) rmSync(scratchForFailure, { recursive: true, force: true });
    process.exit(130);
  });
}
let deadline: ReturnType<typeof setTimeout> | undefined;
function armDeadline(milliseconds: number): void {
  deadline = setTimeout(() => {
    console.error(`Benchmark still running after ${milliseconds / 60_000} minutes: aborting.`);
    killAllChildrenNow();
    process.exit(3);
  }, milliseconds);
}

main()
  .then((exitCode) => {
    clearTimeout(deadline);
    killAllChildrenNow();
    process.exit(exitCode);
  })
  .catch((error: unknown) => {
    console.error(`Benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (scratchForFailure !== undefined) console.error(`Logs of the child processes: ${scratchForFailure}`);
    killAllChildrenNow();
    process.exit(1);
  });
