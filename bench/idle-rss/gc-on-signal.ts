// Preloaded into a Keyway under bench/idle-rss.ts (`bun --preload`): on SIGUSR2 it runs a full,
// synchronous garbage collection and appends the JavaScript heap's figures to the file named by
// KEYWAY_BENCH_HEAP_REPORT, so the bench can tell live heap from what the allocators keep.

import { appendFileSync } from 'node:fs';
import { heapStats } from 'bun:jsc';

const reportPath = process.env.KEYWAY_BENCH_HEAP_REPORT;

process.on('SIGUSR2', () => {
  Bun.gc(true);
  if (reportPath === undefined) return;
  const stats = heapStats();
  const line = { heapSize: stats.heapSize, heapCapacity: stats.heapCapacity, extraMemorySize: stats.extraMemorySize, objectCount: stats.objectCount };
  appendFileSync(reportPath, `${JSON.stringify(line)}\n`);
});
