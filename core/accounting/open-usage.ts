// The usage queue as the runtime opens it: with the crash journal in <data dir>/usage-journal, the
// journal of a previous run that died replayed into the store before any request is served, and the
// journals of processes that die later (a sibling worker) replayed by a periodic rescan.

import { join } from 'node:path';
import { toNanosCeil } from '../catalog/nano-usd.ts';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Counters } from '../spec/counters.ts';
import type { PriceUsage } from './in-flight-marks.ts';
import { JOURNAL_DIRECTORY_NAME, UsageJournal } from './usage-journal.ts';
import { UsageQueue, type UsageWriter } from './usage-queue.ts';
import type { ReplayedLeases } from './usage-segments.ts';

type UsageConfig = Pick<GatewayConfig, 'dataDirectory' | 'usageFlushIntervalMs' | 'usageBatchSize' | 'usageBufferMax'> &
  Partial<Pick<GatewayConfig, 'usageJournal' | 'usageJournalRescanMs'>>;

/**
 * Settles the budget leases of the requests a dead process left in flight, once the replay wrote their
 * estimated rows: the served provider's to the row's cost, any other to 0. Without it their leases
 * lapsed and their amounts left the shared budget, so the team could spend the whole cap again on top
 * of calls the provider had billed (QA18 multi #2). A lease still live is swapped for the cost; one
 * that lapsed has the cost added (Counters.settleLease). A failure (Redis away) is logged: the lease
 * then lapses as before.
 */
export function replayedLeaseSettler(counters: Pick<Counters, 'settleLease'>, logger: Logger): (written: ReplayedLeases[]) => void {
  return (written) => {
    for (const { row, leases } of written) {
      for (const lease of leases) {
        const spent = lease.provider === row.provider && row.costUsd !== null ? toNanosCeil(row.costUsd) : 0;
        try {
          Promise.resolve(counters.settleLease?.(lease.key, lease.leaseId, spent, lease.expiresAt)).catch((error: unknown) => warn(error));
        } catch (error) {
          warn(error);
        }
      }
    }
  };
  function warn(error: unknown): void {
    logger.warn(
      { error: error instanceof Error ? error.message : String(error) },
      "the budget lease of a request in flight when its gateway process died could not be settled: its amount lapses from the team's budget",
    );
  }
}

/**
 * `price`: the list price a replay books a dead process's requests in flight at (in-flight-marks.ts);
 * `settleLeases`: what settles their budget leases once their rows are written (replayedLeaseSettler).
 */
export async function openUsageQueue(
  writer: UsageWriter,
  logger: Logger,
  config: UsageConfig,
  price?: PriceUsage,
  settleLeases?: (written: ReplayedLeases[]) => void,
): Promise<UsageQueue> {
  const directory = join(config.dataDirectory, JOURNAL_DIRECTORY_NAME);
  let journal: UsageJournal | undefined;
  try {
    if (config.usageJournal !== false) journal = UsageJournal.open(directory, logger);
    else logger.warn('KEYWAY_USAGE_JOURNAL=off: usage rows are kept in memory until written; a crash can lose a flush interval of them');
  } catch (error) {
    // Serving without the journal keeps the gateway up; a crash can then lose a flush interval of rows.
    logger.error(
      { directory, error: (error as Error).message },
      'the usage journal cannot be created; usage rows are kept in memory only until they are written',
    );
  }
  const usage = new UsageQueue(writer, logger, {
    flushIntervalMs: config.usageFlushIntervalMs,
    batchSize: config.usageBatchSize,
    bufferMax: config.usageBufferMax,
    journal,
    rescanIntervalMs: config.usageJournalRescanMs,
    price,
    settleLeases,
  });
  await usage.recover();
  return usage;
}
