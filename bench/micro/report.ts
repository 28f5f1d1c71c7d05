// The closing table: one line per bench with the figures that matter for the targets, judged on
// the average (mitata's headline number, which unlike p50 includes GC pauses).

import type { run } from 'mitata';
import { targetOf } from './registry.ts';

export type Trial = Awaited<ReturnType<typeof run>>['benchmarks'][number];

export interface SummaryVerdict {
  passed: number;
  failed: number;
}

export function formatNanoseconds(nanoseconds: number): string {
  if (nanoseconds < 1_000) return `${nanoseconds.toFixed(1)} ns`;
  if (nanoseconds < 1_000_000) return `${(nanoseconds / 1_000).toFixed(2)} µs`;
  return `${(nanoseconds / 1_000_000).toFixed(2)} ms`;
}

export function printSummary(trials: readonly Trial[]): SummaryVerdict {
  const rows: string[][] = [['bench', 'avg', 'p50', 'p75', 'p99', 'target', 'result']];
  const verdict: SummaryVerdict = { passed: 0, failed: 0 };
  for (const trial of trials) {
    for (const result of trial.runs) {
      const target = targetOf(trial.alias);
      if (result.stats === undefined) {
        rows.push([result.name, 'error', '', '', '', target?.label ?? '', target === undefined ? '' : 'FAIL']);
        if (target !== undefined) verdict.failed++;
        continue;
      }
      const { avg, p50, p75, p99 } = result.stats;
      let outcome = '';
      if (target !== undefined) {
        outcome = avg <= target.nanoseconds ? 'PASS' : 'FAIL';
        if (outcome === 'PASS') verdict.passed++;
        else verdict.failed++;
      }
      rows.push([result.name, formatNanoseconds(avg), formatNanoseconds(p50), formatNanoseconds(p75), formatNanoseconds(p99), target?.label ?? '', outcome]);
    }
  }
  console.log('\nSummary (targets judged on avg)');
  printTable(rows);
  console.log(`\nTargets: ${verdict.passed} PASS, ${verdict.failed} FAIL`);
  return verdict;
}

/** A header row, a rule, then the rows: the first column left-aligned, the others right-aligned. */
export function printTable(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]?.map((_header, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  for (const [position, row] of rows.entries()) {
    console.log(line(row));
    if (position === 0) console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  }
}
