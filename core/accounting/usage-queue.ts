import type { Logger } from '../logger.ts';
import type { RequestContext } from '../spec/lifecycle.ts';
import type { UsageRecord } from '../spec/store.ts';
import type { RouteCandidate } from '../spec/strategy.ts';
import { InFlightRequests } from './in-flight.ts';
import { JournalRescan } from './journal-rescan.ts';
import { JournalTurn } from './journal-turn.ts';
import { SEALED_MARK, type PriceUsage } from './in-flight-marks.ts';
import type { StreamObserver } from './stream-observer.ts';
import type { JournalFile, UsageJournal } from './usage-journal.ts';
import { claimLeftovers, writeSegment, type JournalPiece, type ReplayedLeases, type Segment, type UsageWriter } from './usage-segments.ts';

export type { UsageWriter } from './usage-segments.ts';

export interface UsageQueueOptions {
  flushIntervalMs: number;
  batchSize: number;
  /**
   * The most rows held in memory (KEYWAY_USAGE_BUFFER_MAX). Past it, while the store cannot keep up
   * or is down, new rows live only in the journal and are read back from it when the store answers.
   * Without a journal the buffer cannot spill and is not bounded.
   */
  bufferMax?: number;
  /** The crash journal (usage-journal.ts); without one, queued rows live only in memory. */
  journal?: UsageJournal;
  /**
   * How often to look for the journals of processes that died while this one runs
   * (KEYWAY_USAGE_JOURNAL_RESCAN_MS); undefined: only at start (`recover()`).
   */
  rescanIntervalMs?: number;
  /**
   * Prices the estimate a replay books for a request a dead process had in flight (in-flight-marks.ts);
   * without it, such a row is booked unpriced.
   */
  price?: PriceUsage;
  /** How often calls under way are marked and streams' progress recorded: MARK_INTERVAL_MS (in-flight.ts) unless a test shortens it. */
  markIntervalMs?: number;
  /**
   * Settles the budget leases of the requests a dead process left in flight to their estimated rows'
   * cost, once those rows are written (core/accounting/open-usage.ts gives the counters' settleLease).
   */
  settleLeases?: (written: ReplayedLeases[]) => void;
}

const DEFAULT_BUFFER_MAX = 100_000;

/**
 * Usage records are queued and written in batches, so accounting never sits on the request path.
 * With a journal, the rows booked in one event-loop turn are appended to the current journal segment
 * in one synchronous write at the end of the turn, and answers wait for it (`journaled()`), so a
 * crash loses no row whose answer went out; the segment is sealed when a flush takes it and its file
 * deleted once its rows are committed. A failed write keeps its segments for the next flush;
 * `close()` drains everything, and what the store would not take stays in the journal for the next
 * start (`recover()`).
 */
export class UsageQueue {
  private current: Segment;
  /** Segments taken by a flush and not yet written, oldest first. */
  private readonly sealed: Segment[] = [];
  /** Rows whose journal write failed: memory is their only copy, so they are never spilled. */
  private unjournaled: UsageRecord[] = [];
  /** Rows booked in this event-loop turn, journaled together at its end (commitTurn). */
  private readonly turn = new JournalTurn(() => this.commitTurn());
  /** Requests whose upstream call is under way, marked in the journal; none without a journal. */
  private readonly inFlight: InFlightRequests | undefined;
  private inMemory = 0;
  private readonly bufferMax: number;
  private flushing: Promise<void> | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private written = 0;
  private spilling = false;
  private journalBroken = false;
  /** Readiness (core/http/readiness.ts): when the queue was last seen empty or a write last succeeded. */
  private drainedAt = Date.now();
  private lastWriteAt: number | undefined;
  private failedWrites = 0;
  private closing: Promise<void> | undefined;
  /** Adopts the journals of processes that died while this one runs; none without a journal. */
  private readonly rescans: JournalRescan | undefined;

  constructor(
    private readonly writer: UsageWriter,
    private readonly logger: Logger,
    private readonly options: UsageQueueOptions,
  ) {
    this.bufferMax = options.bufferMax ?? DEFAULT_BUFFER_MAX;
    this.inFlight = options.journal === undefined ? undefined : new InFlightRequests(this.turn.scheduleEnd, options.markIntervalMs);
    this.current = this.newSegment();
    this.timer = setInterval(() => this.flushQuietly(), options.flushIntervalMs);
    this.timer.unref?.();
    const journal = options.journal;
    if (journal !== undefined) {
      const host = {
        flushing: () => this.flushing,
        closing: () => this.closing !== undefined,
        adopt: (paths: readonly string[], message: string) => this.adopt(journal, paths, message),
      };
      this.rescans = new JournalRescan(journal, logger, host, options.rescanIntervalMs);
    }
  }

  private newSegment(): Segment {
    const journal = this.options.journal;
    const writer = this.writer;
    const pieces = journal !== undefined && (writer.insertJournalRange !== undefined || writer.insertJournaledUsage !== undefined) ? [] : undefined;
    return { file: journal?.newFile(), rows: [], count: 0, pieces, bytes: 0, replay: false, adopted: false };
  }

  /**
   * An attempt calls `candidate`'s upstream for the request: with a journal, it is marked in flight at
   * the next tick (in-flight.ts), so a crash before it is booked leaves it to be booked at its
   * estimate (`inputTokens`: its prompt's byte bound, computed only then). Nothing waits for it.
   */
  opened(context: RequestContext, candidate: RouteCandidate, inputTokens: (context: RequestContext, candidate: RouteCandidate) => number): void {
    this.inFlight?.open(context, candidate, inputTokens);
  }

  /** The request's answer is a stream: what it delivered is marked every few seconds (in-flight.ts). */
  streaming(context: RequestContext, observer: StreamObserver): void {
    this.inFlight?.observe(context, observer);
  }

  /** Whether upstream calls are marked at all (a journal is kept). */
  get marksInFlight(): boolean {
    return this.inFlight !== undefined;
  }

  /** Requests whose upstream call is under way and not booked yet. */
  get inFlightRequests(): number {
    return this.inFlight?.size ?? 0;
  }

  /**
   * Queues the row; never throws. With a journal, the first row of an event-loop turn is appended at
   * once; the turn's later rows wait for its end and are appended together in one write (a group
   * commit: one system call per turn instead of one per row). At low load a turn books one row, so
   * nothing waits; under load a turn books dozens. `journaled()` is what an answer waits for, so no
   * client has its answer before its row is on disk.
   */
  enqueue(row: UsageRecord, context?: RequestContext): void {
    if (this.options.journal === undefined) {
      this.admit(this.current, row);
      this.flushIfFull(this.current);
      return;
    }
    // The row closes the request's open mark, if one was written (in-flight.ts).
    const first = this.turn.add(row, context === undefined || this.inFlight === undefined ? 0 : this.inFlight.close(context));
    if (first) {
      this.commitTurn();
    } else if (this.turn.length + this.current.count >= this.options.batchSize) {
      // A turn that fills the batch (a burst) is written at once: segments stay one batch long.
      this.commitTurn();
    }
  }

  /**
   * Settles once the rows booked so far in this turn are in the journal (or, if it could not be
   * written, held in memory); undefined when none waits. Never rejects.
   */
  journaled(): Promise<void> | undefined {
    return this.turn.waiter();
  }

  /**
   * Appends the turn's in-flight marks and rows (each followed by its close mark) to the current
   * segment's file in one write, then queues the rows.
   */
  private commitTurn(): void {
    const marks = this.inFlight?.takeMarks() ?? '';
    if (this.turn.length === 0 && marks.length === 0) return;
    const { rows, closes, settle } = this.turn.take();
    const segment = this.current;
    const journal = this.options.journal as UsageJournal;
    let appended: { text: string; bytes: number };
    try {
      appended = journal.append(segment.file as JournalFile, rows, marks, closes);
    } catch (error) {
      // A write cut short may have left part of a line: the file's offsets no longer add up.
      segment.pieces = undefined;
      segment.torn = true;
      this.journalFailed(error);
      // The marks of every request in flight go with the next write; close marks do not (in-flight.ts).
      if (marks.length > 0) this.inFlight?.resend();
      for (const row of rows) this.unjournaled.push(row);
      this.inMemory += rows.length;
      if (this.flushing === undefined && this.unjournaled.length >= this.options.batchSize) this.flushQuietly();
      settle?.();
      return;
    }
    if (this.journalBroken) {
      this.journalBroken = false;
      this.logger.info({ directory: journal.directory }, 'the usage journal is writable again');
    }
    const start = segment.bytes;
    segment.bytes += appended.bytes;
    // Marks alone: no rows for the store. The byte ranges of later rows span them; readers skip marks.
    if (rows.length === 0) return;
    // All of them into this segment before a flush may seal it: its file holds exactly its rows.
    for (const row of rows) this.admit(segment, row);
    // The text stays in memory only for a writer that cannot read the file.
    const text = this.writer.insertJournalRange === undefined ? appended.text : undefined;
    segment.pieces?.push({ text, start, end: segment.bytes, count: rows.length });
    settle?.();
    this.flushIfFull(segment);
  }

  /** Into the segment's memory, or past the buffer's bound into its file only. */
  private admit(segment: Segment, row: UsageRecord): void {
    if (segment.rows !== undefined) {
      if (this.options.journal === undefined || this.inMemory < this.bufferMax) {
        segment.rows.push(row);
        this.inMemory += 1;
      } else {
        this.spill(segment);
      }
    }
    segment.count += 1;
  }

  private flushIfFull(segment: Segment): void {
    if (segment.count >= this.options.batchSize && this.flushing === undefined) this.flushQuietly();
  }

  /** The buffer is full: this segment's rows stay in its file only, and so do the rows that follow. */
  private spill(segment: Segment): void {
    this.inMemory -= segment.rows?.length ?? 0;
    segment.rows = undefined;
    segment.pieces = undefined;
    if (!this.spilling) {
      this.spilling = true;
      this.logger.warn(
        { bufferMax: this.bufferMax, pending: this.pending, consecutiveFailures: this.failedWrites },
        'the usage buffer is full; new usage rows are kept in the journal only until the store catches up',
      );
    }
  }

  private journalFailed(error: unknown): void {
    if (this.journalBroken) return;
    this.journalBroken = true;
    this.logger.error(
      { directory: this.options.journal?.directory, error: (error as Error).message },
      'the usage journal could not be written; usage rows are kept in memory only until it can',
    );
  }

  /** Failures are logged in flush and retried on the next tick. */
  private flushQuietly(): void {
    this.flush().catch(() => undefined);
  }

  get pending(): number {
    let count = this.current.count + this.unjournaled.length + this.turn.length;
    for (const segment of this.sealed) count += segment.count;
    return count;
  }

  /**
   * Rows held in memory; at most KEYWAY_USAGE_BUFFER_MAX while the journal is writable (plus the
   * current turn's, at most one batch, on their way to the journal).
   */
  get buffered(): number {
    return this.inMemory;
  }

  /**
   * Queued rows whose only copy is this process's memory: all of them without a journal, else those
   * whose journal write failed. Readiness (core/http/readiness.ts) turns not ready only when these
   * fill the buffer: rows in the journal are safe however long the store stays away.
   */
  get unjournaledRows(): number {
    return this.options.journal === undefined ? this.pending : this.unjournaled.length;
  }

  /** KEYWAY_USAGE_BUFFER_MAX: the most rows held in memory. */
  get bufferLimit(): number {
    return this.bufferMax;
  }

  get totalWritten(): number {
    return this.written;
  }

  /** An upper bound on how long the oldest queued record has waited; 0 when nothing is queued. */
  pendingAgeMs(now = Date.now()): number {
    return this.pending === 0 ? 0 : Math.max(0, now - this.drainedAt);
  }

  /** When a write last succeeded (epoch milliseconds), if ever. */
  get lastSuccessfulFlushAt(): number | undefined {
    return this.lastWriteAt;
  }

  /** Writes that failed in a row; a successful write resets it. */
  get consecutiveFailures(): number {
    return this.failedWrites;
  }

  /**
   * Adopts the journal files of processes that died before their rows reached the store, then
   * writes them, skipping rows the store already has. Runs at start, before requests are served. A
   * store that fails now keeps the rows queued for the next flush.
   */
  async recover(): Promise<void> {
    const journal = this.options.journal;
    if (journal === undefined) return;
    while (this.flushing !== undefined) await this.flushing.catch(() => undefined);
    await this.adopt(journal, journal.leftovers(), 'replaying the usage journal of a previous run');
  }

  /** One look for the journals of processes that died while this one runs (journal-rescan.ts). */
  rescan(): Promise<void> {
    return this.rescans?.run() ?? Promise.resolve();
  }

  /** Claims the files (one process wins each), queues their rows for replay and writes them. */
  private async adopt(journal: UsageJournal, paths: readonly string[], message: string): Promise<void> {
    const { adopted, rows } = claimLeftovers(journal, paths, this.logger, message);
    if (adopted.length === 0) return;
    this.sealed.unshift(...adopted);
    try {
      await this.flush();
      this.logger.info({ rows }, 'usage journal replayed');
    } catch {
      // Logged by flush; the adopted segments stay queued and the timer retries them.
    }
  }

  /** Writes what is queued; concurrent callers wait for the same write, then for any rows added since. */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    if (this.pending === 0) {
      this.drainedAt = Date.now();
      return;
    }
    const takenAt = Date.now();
    this.flushing = this.writePending()
      .then(() => {
        // Whatever is queued now arrived after the flush began.
        this.drainedAt = takenAt;
        this.failedWrites = 0;
        if (this.spilling && this.sealed.length === 0) {
          this.spilling = false;
          this.logger.info({ written: this.written }, 'the usage buffer has room again');
        }
      })
      .catch((error: unknown) => {
        // Segments stay queued, in order, so no record is lost; the next flush retries them.
        this.failedWrites += 1;
        // A store that cannot be reached says so in its own words in the cause (core/storage-availability.ts).
        const cause = (error as Error).cause;
        this.logger.error(
          { err: { message: (error as Error).message, ...(cause instanceof Error ? { cause: cause.message } : {}) }, pending: this.pending },
          'usage write failed; will retry',
        );
        throw error;
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  /**
   * Seals the current segment, then writes the unjournaled rows and every sealed segment in order.
   * While writes fail, the current segment is sealed only once it holds a batch, so a store that is
   * down for an hour leaves a file per batch, not one per tick.
   */
  private async writePending(): Promise<void> {
    this.commitTurn();
    const sealedNow = this.failedWrites === 0 || this.current.count >= this.options.batchSize;
    if (sealedNow) this.sealCurrent();
    if (this.unjournaled.length > 0) {
      const batch = this.unjournaled;
      this.unjournaled = [];
      try {
        await this.writer.insertUsage(batch);
      } catch (error) {
        this.unjournaled = batch.concat(this.unjournaled);
        throw error;
      }
      this.inMemory -= batch.length;
      this.written += batch.length;
      this.lastWriteAt = Date.now();
    }
    for (let count = this.sealed.length; count > 0; count--) await this.writeOldest();
    if (!sealedNow && this.current.count > 0) {
      this.sealCurrent();
      await this.writeOldest();
    }
  }

  private sealCurrent(): void {
    const segment = this.current;
    if (segment.count === 0) return;
    this.current = this.newSegment();
    if (segment.file !== undefined) {
      this.carryInFlight(segment.file);
      this.options.journal?.seal(segment.file);
    }
    this.sealed.push(segment);
  }

  /**
   * The requests still in flight are opened again at the start of the new segment, then the old one is
   * marked sealed: its file may go once its rows are committed, and a replay books each request once,
   * from the newest segment (in-flight-marks.ts). A kill between the two writes leaves a request open
   * in both; their estimates share a key, and the replay of the second finds the first in the store.
   */
  private carryInFlight(sealing: JournalFile): void {
    const carried = this.inFlight?.carry() ?? '';
    if (carried.length === 0) return;
    const journal = this.options.journal as UsageJournal;
    const next = this.current;
    try {
      next.bytes += journal.appendText(next.file as JournalFile, carried);
      journal.appendText(sealing, SEALED_MARK);
    } catch (error) {
      // Unsealed, the old file keeps its marks in force; they are written again with the next turn.
      next.pieces = undefined;
      this.journalFailed(error);
      this.inFlight?.resend();
    }
  }

  private readonly countWritten = (rows: number): void => {
    this.written += rows;
    this.lastWriteAt = Date.now();
  };

  private async writeOldest(): Promise<void> {
    const segment = this.sealed[0] as Segment;
    await writeSegment(this.writer, segment, this.options, this.countWritten);
    this.sealed.shift();
    if (segment.rows !== undefined) this.inMemory -= segment.rows.length;
    if (segment.file !== undefined) this.options.journal?.remove(segment.file);
  }

  /**
   * Stops the timer and drains the queue, retrying a few times. What still cannot be written stays
   * in the journal and is written at the next start; only rows the journal could not take are lost.
   */
  close(): Promise<void> {
    this.closing ??= this.drainAndClose();
    return this.closing;
  }

  private async drainAndClose(): Promise<void> {
    clearInterval(this.timer);
    // A rescan under way adds its files before the drain below writes them.
    await this.rescans?.stop();
    for (let attempt = 1; attempt <= 5 && this.pending > 0; attempt++) {
      try {
        await this.flush();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    const journal = this.options.journal;
    if (journal !== undefined) {
      this.commitTurn();
      this.inFlight?.stop();
      const inFlight = this.inFlight?.size ?? 0;
      // A request still in flight keeps its open mark on disk: the next start books its estimate.
      if (this.current.count === 0 && inFlight === 0 && this.current.file !== undefined) journal.remove(this.current.file);
      else if (this.current.file !== undefined) journal.seal(this.current.file);
      if (inFlight > 0)
        this.logger.warn(
          { requests: inFlight },
          'requests still in flight at shutdown are left in the usage journal; the next start books them at their estimate',
        );
      journal.close();
    }
    const pending = this.pending;
    if (pending === 0) return;
    const lost = journal === undefined ? pending : this.unjournaled.length;
    if (lost > 0) this.logger.error({ lost }, 'usage records could not be written at shutdown');
    if (pending > lost) {
      this.logger.warn(
        { kept: pending - lost, directory: journal?.directory },
        'usage records the store would not take stay in the usage journal; the next start writes them',
      );
    }
  }
}
