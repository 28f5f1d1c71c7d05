// The usage queue as the runtime opens it: with the crash journal in <data dir>/usage-journal, the
// journal of a previous run that died replayed into the store before any request is served, and the
// journals of processes that die later (a sibling worker) replayed by a periodic rescan.

import { join } from 'node:path';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { PriceUsage } from './in-flight-marks.ts';
import { JOURNAL_DIRECTORY_NAME, UsageJournal } from './usage-journal.ts';
import { UsageQueue, type UsageWriter } from './usage-queue.ts';

type UsageConfig = Pick<GatewayConfig, 'dataDirectory' | 'usageFlushIntervalMs' | 'usageBatchSize' | 'usageBufferMax'> &
  Partial<Pick<GatewayConfig, 'usageJournal' | 'usageJournalRescanMs'>>;

/** `price`: the list price a replay books a dead process's requests in flight at (in-flight-marks.ts). */
export async function openUsageQueue(writer: UsageWriter, logger: Logger, config: UsageConfig, price?: PriceUsage): Promise<UsageQueue> {
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
  });
  await usage.recover();
  return usage;
}
