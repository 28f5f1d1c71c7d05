// The periodic look for the journals of processes that died while this one runs (a worker killed, a
// sibling instance on the same data directory), so their rows do not wait for a restart. A file is
// adopted when two rescans in a row find its writer gone: a remote store (PostgreSQL) may still be
// committing the batch the dead process sent last, and a rescan interval later that commit has ended,
// so the replay's check against the store sees it and the replay stays exactly once. The queue
// (usage-queue.ts) claims and writes what is adopted; this decides when and which files.

import type { Logger } from '../logger.ts';
import type { UsageJournal } from './usage-journal.ts';

/** What a rescan needs of the queue it feeds. */
export interface RescanHost {
  /** The flush under way, if any: a rescan waits for it, so its files follow what the flush took. */
  flushing(): Promise<void> | undefined;
  /** The queue is closing: nothing more is adopted. */
  closing(): boolean;
  /** Claims the files, queues their rows for replay and writes them. */
  adopt(paths: readonly string[], message: string): Promise<void>;
}

export class JournalRescan {
  /** Leftovers the previous rescan found: a rescan adopts only those it finds a second time. */
  private seen: ReadonlySet<string> = new Set();
  private running: Promise<void> | undefined;
  private readonly timer: ReturnType<typeof setInterval> | undefined;

  /** Without an interval (KEYWAY_USAGE_JOURNAL_RESCAN_MS unset) it runs only when asked (`run()`). */
  constructor(
    private readonly journal: UsageJournal,
    private readonly logger: Logger,
    private readonly host: RescanHost,
    intervalMs: number | undefined,
  ) {
    if (intervalMs !== undefined) {
      this.timer = setInterval(() => void this.run(), intervalMs);
      this.timer.unref?.();
    }
  }

  /** One rescan; a call while one runs shares it. */
  run(): Promise<void> {
    this.running ??= this.once().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer; answers the rescan under way, if any, so a drain writes the files it adds. */
  stop(): Promise<void> | undefined {
    if (this.timer !== undefined) clearInterval(this.timer);
    return this.running;
  }

  private async once(): Promise<void> {
    if (this.host.closing()) return;
    for (let flushing = this.host.flushing(); flushing !== undefined; flushing = this.host.flushing()) await flushing.catch(() => undefined);
    if (this.host.closing()) return;
    try {
      const found = this.journal.leftovers();
      const confirmed = found.filter((path) => this.seen.has(path));
      this.seen = new Set(found);
      if (confirmed.length > 0) await this.host.adopt(confirmed, 'replaying the usage journal of a process that died');
    } catch (error) {
      // A file that cannot be claimed or read (permissions): a timer's rejection would end the process.
      this.logger.warn({ directory: this.journal.directory, error: (error as Error).message }, 'the usage journal rescan failed; the next one tries again');
    }
  }
}
