// Registers benches with mitata and remembers which ones answer to an explicit target, so the
// summary can judge them without matching on names.

import { bench } from 'mitata';

export type TargetName = 'route' | 'translation' | 'journal' | 'contentScan';

export interface Target {
  label: string;
  nanoseconds: number;
}

export const TARGETS: Record<TargetName, Target> = {
  route: { label: 'route ≤ 5 µs', nanoseconds: 5_000 },
  translation: { label: 'translation ≤ 50 µs', nanoseconds: 50_000 },
  journal: { label: 'journal ≤ 5 µs', nanoseconds: 5_000 },
  contentScan: { label: 'content scan 10 KB ≤ 50 µs', nanoseconds: 50_000 },
};

const targetsByBench = new Map<string, Target>();

function remember(name: string, target: TargetName | undefined): void {
  if (targetsByBench.has(name)) throw new Error(`bench '${name}' is registered twice`);
  if (target !== undefined) targetsByBench.set(name, TARGETS[target]);
}

export function targetOf(name: string): Target | undefined {
  return targetsByBench.get(name);
}

export function benchmark(name: string, measured: () => unknown, target?: TargetName): void {
  remember(name, target);
  bench(name, measured);
}

/**
 * mitata's computed parameters: `prepare` runs outside the timed region before each measured call
 * (batched, in no guaranteed order). A promise from `prepare` is awaited, which also lets pending
 * microtasks run between batches. mitata's type declarations do not describe this form.
 */
export function benchmarkPrepared<Value>(name: string, prepare: () => Value | Promise<Value>, measured: (value: Value) => unknown, target?: TargetName): void {
  remember(name, target);
  const generator = function* () {
    yield { [0]: prepare, bench: measured };
  };
  bench(name, generator as unknown as () => unknown);
}
