// Micro-benchmarks of the request hot path, one group per stage:
//   bun bench/micro.ts            every stage
//   bun bench/micro.ts route      only benches whose name matches the pattern
// Exits non-zero when a bench misses one of the explicit targets (route ≤ 5 µs, translation ≤ 50 µs,
// streaming allocation ≤ 4× the encoded frame per content chunk).

import { availableParallelism, loadavg } from 'node:os';
import { run } from 'mitata';
import { registerAuthBenches } from './micro/auth.ts';
import { registerContentScanBenches } from './micro/content-scan.ts';
import { buildWorld } from './micro/fixtures/world.ts';
import { registerKeyEchoBenches } from './micro/key-echo.ts';
import { registerKeyResolveBenches } from './micro/key-resolve.ts';
import { registerPolicyBenches } from './micro/policies.ts';
import { printSummary } from './micro/report.ts';
import { registerRequestBuildBenches } from './micro/request-build.ts';
import { registerResponseEncodeBenches } from './micro/response-encode.ts';
import { registerRouteBenches } from './micro/route.ts';
import { registerStreamBenches } from './micro/stream.ts';
import { prepareStreamProviderCases, printStreamProviderSummary, registerStreamProviderBenches } from './micro/stream-providers.ts';
import { loadTranslators } from './micro/translators.ts';
import { registerTranslationBenches } from './micro/translation.ts';
import { registerUsageBenches } from './micro/usage.ts';
import { registerUsageJournalBenches } from './micro/usage-journal.ts';
import { registerValidationBenches } from './micro/validation.ts';

// Nanosecond figures mean little on a busy machine; say so up front rather than after the fact.
const [oneMinuteLoad = 0] = loadavg();
if (oneMinuteLoad > availableParallelism() / 2)
  console.log(`Warning: 1-minute load average ${oneMinuteLoad.toFixed(2)} on ${availableParallelism()} CPUs; expect noisy figures.`);

const pattern = process.argv[2];
const filter = pattern === undefined ? undefined : new RegExp(pattern, 'i');

const world = await buildWorld();
const translators = await loadTranslators();
console.log(`Translations benched: ${translators.loaded.map((translator) => translator.provider).join(', ')}`);
for (const reason of translators.skipped) console.log(`Skipped translation: ${reason}`);
// Allocation is measured in child processes before any timing starts, so they do not share the CPU.
const streamProviderCases = await prepareStreamProviderCases(filter);

registerAuthBenches(world);
registerKeyResolveBenches(world);
registerRouteBenches(world);
registerValidationBenches();
registerRequestBuildBenches(translators.loaded);
registerResponseEncodeBenches(translators.loaded);
registerTranslationBenches(translators.loaded);
registerStreamBenches();
registerStreamProviderBenches(streamProviderCases);
registerUsageBenches(world);
registerUsageJournalBenches(world);
registerContentScanBenches();
registerKeyEchoBenches();
await registerPolicyBenches();

const { benchmarks } = await run(filter === undefined ? {} : { filter });
const verdict = printSummary(benchmarks);
const streamVerdict = printStreamProviderSummary(streamProviderCases, benchmarks);
if (verdict.failed + streamVerdict.failed > 0) process.exitCode = 1;
