import type { Logger } from '../logger.ts';
import type { UsageRecord } from '../spec/store.ts';

export interface UsageWriter {
  insertUsage(rows: readonly UsageRecord[]): Promise<void>;
}

export interface UsageQueueOptions {
  flushIntervalMs: number;
  batchSize: number;
}

/**
 * Usage records are queued in memory and written in batches, so accounting never sits on the
 * request path. A failed write keeps its records for the next flush; `close()` drains everything.
 */
export class UsageQueue {
  private buffer: UsageRecord[] = [];
  private flushing: Promise<void> | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private written = 0;

  constructor(
    private readonly writer: UsageWriter,
    private readonly logger: Logger,
    private readonly options: UsageQueueOptions,
  ) {
    this.timer = setInterval(() => this.flushQuietly(), options.flushIntervalMs);
    this.timer.unref?.();
  }

  enqueue(row: UsageRecord): void {
    this.buffer.push(row);
    if (this.buffer.length >= this.options.batchSize && this.flushing === undefined) this.flushQuietly();
  }

  /** Failures are logged in flush and retried on the next tick. */
  private flushQuietly(): void {
    this.flush().catch(() => undefined);
  }

  get pending(): number {
    return this.buffer.length;
  }

  get totalWritten(): number {
    return this.written;
  }

  /** Writes what is queued; concurrent callers wait for the same write, then for any rows added since. */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.writer
      .insertUsage(batch)
      .then(() => {
        this.written += batch.length;
      })
      .catch((error: unknown) => {
        // Put the batch back in front so no record is lost; the next flush retries it.
        this.buffer = batch.concat(this.buffer);
        this.logger.error({ err: { message: (error as Error).message }, pending: this.buffer.length }, 'usage write failed; will retry');
        throw error;
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  /** Stops the timer and drains the queue, retrying a few times before giving up loudly. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (let attempt = 1; attempt <= 5 && this.buffer.length > 0; attempt++) {
      try {
        await this.flush();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    if (this.buffer.length > 0) this.logger.error({ lost: this.buffer.length }, 'usage records could not be written at shutdown');
  }
}
