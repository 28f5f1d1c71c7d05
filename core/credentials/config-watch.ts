// How an instance of several keeps its configuration snapshot current besides the cluster bus's
// `config` messages (core/credentials/snapshot.ts). The bus delivers at most once and not at all while
// Redis is unreachable, so two timers back it up, both off the request path:
// - the poll (KEYWAY_CONFIG_POLL_MS, 1 s): one point read of the store's change version, and a
//   reload only when a change this snapshot lacks was recorded. A re-issued or removed key stops
//   working everywhere within about a second even while the bus is down (QA15 cluster #6);
// - the backstop (KEYWAY_CONFIG_RELOAD_MS, 30 s): a full reload, for a change written to the
//   database without recording it (another tool, a store without a change version).
// The poll runs whether or not the bus is up: it costs one read a second (docs/deployment.md, "When
// the bus fails", has the figures), and it also covers a message lost on the writer's side (its
// publish failed while this instance still heard Redis).

import type { ConfigSnapshots } from './snapshot.ts';

export interface ConfigWatchIntervals {
  /** The full reload's interval. */
  reloadMs: number;
  /** The change version's; 0: never read. */
  pollMs: number;
}

/** Starts both timers; the answer stops them. */
export function watchConfiguration(snapshots: ConfigSnapshots, intervals: ConfigWatchIntervals): () => void {
  const timers = [setInterval(() => void snapshots.catchUp('periodic backstop'), intervals.reloadMs)];
  if (intervals.pollMs > 0) timers.push(setInterval(() => void snapshots.pollChanges(), intervals.pollMs));
  for (const timer of timers) timer.unref?.();
  return () => {
    for (const timer of timers) clearInterval(timer);
  };
}
