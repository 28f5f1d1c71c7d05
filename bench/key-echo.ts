// The key-echo micro benches alone (bench/micro/key-echo.ts), without the rest of bench/micro.ts's
// set-up: `bun bench/key-echo.ts`. Figures are per call; see bench/RESULTS.md.

import { run } from 'mitata';
import { registerKeyEchoBenches } from './micro/key-echo.ts';
import { printSummary } from './micro/report.ts';

registerKeyEchoBenches();
const { benchmarks } = await run();
printSummary(benchmarks);
