import type { Logger } from '../logger.ts';
import type { JournalRange, UsageKey, UsageRecord } from '../spec/store.ts';
import type { JournalFile, UsageJournal } from './usage-journal.ts';

export interface UsageWriter {
  insertUsage(rows: readonly UsageRecord[]): Promise<void>;
  /** Store.insertJournaledUsage: the batch with the journal's own text for its rows, so they are not encoded again. */
  insertJournaledUsage?(rows: readonly UsageRecord[], lines: string): Promise<void>;
  /** Store.insertJournalRange: the batch as a byte range of its journal file, read by the store's own thread. */
  insertJournalRange?(rows: readonly UsageRecord[], range: JournalRange): Promise<void>;
  /** Store.findUsageKeys: lets a replay skip rows the store already holds. */
  findUsageKeys?(keys: readonly UsageKey[]): Promise<UsageKey[]>;
  /** The fallback for a replay when the store has no findUsageKeys. */
  listUsage?(accountId: string): Promise<UsageRecord[]>;
}

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
}

/** A run of rows journaled to one file, written to the store in one batch and then deleted. */
interface Segment {
  /** The journal file, when there is a journal. */
  file: JournalFile | undefined;
  /** The rows in memory; undefined once they live only in the file (spilled, or left by a crash). */
  rows: UsageRecord[] | undefined;
  count: number;
  /**
   * Each turn's rows as appended to the file, while the writer takes them as journal (a byte range,
   * UsageWriter.insertJournalRange, else the text, insertJournaledUsage) and the rows are in memory;
   * undefined otherwise, and after an append failed (the file may then hold a cut line).
   */
  pieces: JournalPiece[] | undefined;
  /** Bytes appended to the file so far: where the next piece starts. */
  bytes: number;
  /**
   * Some rows may already be in the store: a crashed process's file, or a write that failed (a
   * remote store can fail after committing). Its rows are checked against the store before insertion.
   */
  replay: boolean;
}

/** One turn's rows as the journal wrote them: bytes [start, end) of the file, and their text only for a writer that takes text. */
interface JournalPiece {
  text: string | undefined;
  start: number;
  end: number;
  count: number;
}

const DEFAULT_BUFFER_MAX = 100_000;

const usageKey = (row: UsageKey): string => `${row.requestId}\u0000${row.accountId}\u0000${row.createdAt}`;

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
  private turn: UsageRecord[] = [];
  private turnWritten: Promise<void> | undefined;
  private turnWrittenResolve: (() => void) | undefined;
  /** A row was booked in this turn: its end is scheduled (endTurn), and later rows wait for it. */
  private inTurn = false;
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
  private readonly rescanTimer: ReturnType<typeof setInterval> | undefined;
  /** Leftovers the previous rescan found: a rescan adopts only those it finds a second time. */
  private orphansSeen: ReadonlySet<string> = new Set();
  private rescanning: Promise<void> | undefined;

  constructor(
    private readonly writer: UsageWriter,
    private readonly logger: Logger,
    private readonly options: UsageQueueOptions,
  ) {
    this.bufferMax = options.bufferMax ?? DEFAULT_BUFFER_MAX;
    this.current = this.newSegment();
    this.timer = setInterval(() => this.flushQuietly(), options.flushIntervalMs);
    this.timer.unref?.();
    if (options.journal !== undefined && options.rescanIntervalMs !== undefined) {
      this.rescanTimer = setInterval(() => void this.rescan(), options.rescanIntervalMs);
      this.rescanTimer.unref?.();
    }
  }

  private newSegment(): Segment {
    const journal = this.options.journal;
    const writer = this.writer;
    const pieces = journal !== undefined && (writer.insertJournalRange !== undefined || writer.insertJournaledUsage !== undefined) ? [] : undefined;
    return { file: journal?.newFile(), rows: [], count: 0, pieces, bytes: 0, replay: false };
  }

  /**
   * Queues the row; never throws. With a journal, the first row of an event-loop turn is appended at
   * once; the turn's later rows wait for its end and are appended together in one write (a group
   * commit: one system call per turn instead of one per row). At low load a turn books one row, so
   * nothing waits; under load a turn books dozens. `journaled()` is what an answer waits for, so no
   * client has its answer before its row is on disk.
   */
  enqueue(row: UsageRecord): void {
    if (this.options.journal === undefined) {
      this.admit(this.current, row);
      this.flushIfFull(this.current);
      return;
    }
    this.turn.push(row);
    if (!this.inTurn) {
      this.inTurn = true;
      setImmediate(this.endTurn);
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
    if (this.turn.length === 0) return undefined;
    this.turnWritten ??= new Promise<void>((resolve) => {
      this.turnWrittenResolve = resolve;
    });
    return this.turnWritten;
  }

  private readonly endTurn = (): void => {
    this.inTurn = false;
    this.commitTurn();
  };

  /** Appends the turn's rows to the current segment's file in one write, then queues them. */
  private commitTurn(): void {
    const rows = this.turn;
    if (rows.length === 0) return;
    this.turn = [];
    const resolve = this.turnWrittenResolve;
    this.turnWritten = undefined;
    this.turnWrittenResolve = undefined;
    const segment = this.current;
    const journal = this.options.journal as UsageJournal;
    let appended: { text: string; bytes: number };
    try {
      appended = journal.append(segment.file as JournalFile, rows);
    } catch (error) {
      // A write cut short may have left part of a line: the file's offsets no longer add up.
      segment.pieces = undefined;
      this.journalFailed(error);
      for (const row of rows) this.unjournaled.push(row);
      this.inMemory += rows.length;
      if (this.flushing === undefined && this.unjournaled.length >= this.options.batchSize) this.flushQuietly();
      resolve?.();
      return;
    }
    if (this.journalBroken) {
      this.journalBroken = false;
      this.logger.info({ directory: journal.directory }, 'the usage journal is writable again');
    }
    // All of them into this segment before a flush may seal it: its file holds exactly its rows.
    for (const row of rows) this.admit(segment, row);
    const start = segment.bytes;
    segment.bytes += appended.bytes;
    // The text stays in memory only for a writer that cannot read the file.
    const text = this.writer.insertJournalRange === undefined ? appended.text : undefined;
    segment.pieces?.push({ text, start, end: segment.bytes, count: rows.length });
    resolve?.();
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

  /**
   * The periodic look for journals of processes that died while this one runs (a worker killed, a
   * sibling instance on the same data directory), so their rows do not wait for a restart. A file is
   * adopted when two rescans in a row find its writer gone. A remote store (PostgreSQL) may still be
   * committing the batch the dead process sent last; a rescan interval later, that commit has ended,
   * so the replay's check against the store sees it, and the replay stays exactly once.
   */
  rescan(): Promise<void> {
    this.rescanning ??= this.rescanOnce().finally(() => {
      this.rescanning = undefined;
    });
    return this.rescanning;
  }

  private async rescanOnce(): Promise<void> {
    const journal = this.options.journal;
    if (journal === undefined || this.closing !== undefined) return;
    while (this.flushing !== undefined) await this.flushing.catch(() => undefined);
    if (this.closing !== undefined) return;
    try {
      const found = journal.leftovers();
      const confirmed = found.filter((path) => this.orphansSeen.has(path));
      this.orphansSeen = new Set(found);
      if (confirmed.length > 0) await this.adopt(journal, confirmed, 'replaying the usage journal of a process that died');
    } catch (error) {
      // A file that cannot be claimed or read (permissions): a timer's rejection would end the process.
      this.logger.warn({ directory: journal.directory, error: (error as Error).message }, 'the usage journal rescan failed; the next one tries again');
    }
  }

  /** Claims the files (one process wins each), queues their rows for replay and writes them. */
  private async adopt(journal: UsageJournal, paths: readonly string[], message: string): Promise<void> {
    const adopted: Segment[] = [];
    let rows = 0;
    let unreadable = 0;
    for (const path of paths) {
      const file: JournalFile | undefined = journal.claim(path);
      if (file === undefined) continue;
      const contents = journal.readSegment(file);
      unreadable += contents.unreadable;
      if (contents.rows.length === 0) {
        journal.remove(file);
        continue;
      }
      rows += contents.rows.length;
      // Read again when written: a big file is not kept in memory meanwhile.
      adopted.push({ file, rows: undefined, count: contents.rows.length, pieces: undefined, bytes: 0, replay: true });
    }
    if (unreadable > 0) this.logger.warn({ unreadable }, 'lines of the usage journal could not be read and were skipped');
    if (adopted.length === 0) return;
    this.logger.info({ files: adopted.length, rows }, message);
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
    if (segment.file !== undefined) this.options.journal?.seal(segment.file);
    this.sealed.push(segment);
    this.current = this.newSegment();
  }

  private async writeOldest(): Promise<void> {
    const segment = this.sealed[0] as Segment;
    let rows = segment.rows;
    if (rows === undefined) {
      if (segment.file === undefined || this.options.journal === undefined) throw new Error('a usage segment has neither rows nor a journal file');
      rows = this.options.journal.readSegment(segment.file).rows;
    }
    const replay = segment.replay;
    // From here on, a failure leaves doubt about what the store took.
    segment.replay = true;
    if (!replay && segment.pieces !== undefined && segment.file !== undefined) {
      await this.writeAsJournaled(rows, segment.file, segment.pieces);
    } else {
      const toWrite = replay ? await this.notYetBooked(rows) : rows;
      // A replayed segment may be large (a crashed process's): written in batches, each all or none.
      for (let start = 0; start < toWrite.length; start += this.options.batchSize) {
        const batch = start === 0 && toWrite.length <= this.options.batchSize ? toWrite : toWrite.slice(start, start + this.options.batchSize);
        await this.writer.insertUsage(batch);
        this.written += batch.length;
        this.lastWriteAt = Date.now();
      }
    }
    this.sealed.shift();
    if (segment.rows !== undefined) this.inMemory -= segment.rows.length;
    if (segment.file !== undefined) this.options.journal?.remove(segment.file);
  }

  /**
   * The segment's rows as the journal wrote them, in batches of whole turns of at most a batch (or one
   * larger turn), each all or none: a byte range of the file for a writer that reads it, else the text.
   * A failure leaves the segment marked for replay, whose retry takes the rows path and skips what the
   * store already holds.
   */
  private async writeAsJournaled(rows: readonly UsageRecord[], file: JournalFile, pieces: readonly JournalPiece[]): Promise<void> {
    const writer = this.writer;
    let start = 0;
    for (let index = 0; index < pieces.length; ) {
      const first = pieces[index] as JournalPiece;
      let text = first.text;
      let count = first.count;
      let end = first.end;
      index += 1;
      while (index < pieces.length && count + (pieces[index] as JournalPiece).count <= this.options.batchSize) {
        const piece = pieces[index] as JournalPiece;
        if (text !== undefined) text += piece.text;
        count += piece.count;
        end = piece.end;
        index += 1;
      }
      const batch = start === 0 && count === rows.length ? rows : rows.slice(start, start + count);
      if (writer.insertJournalRange !== undefined) await writer.insertJournalRange(batch, { path: file.path, start: first.start, end });
      else if (writer.insertJournaledUsage !== undefined && text !== undefined) await writer.insertJournaledUsage(batch, text);
      else await writer.insertUsage(batch);
      start += count;
      this.written += count;
      this.lastWriteAt = Date.now();
    }
  }

  /** The rows the store does not hold yet, keys compared as a multiset (a client may repeat a request id). */
  private async notYetBooked(rows: readonly UsageRecord[]): Promise<UsageRecord[]> {
    if (rows.length === 0) return [];
    let booked: UsageKey[];
    if (this.writer.findUsageKeys !== undefined) {
      booked = await this.writer.findUsageKeys(rows);
    } else if (this.writer.listUsage !== undefined) {
      const wanted = new Set(rows.map((row) => row.requestId));
      booked = [];
      for (const accountId of new Set(rows.map((row) => row.accountId))) {
        for (const row of await this.writer.listUsage(accountId)) if (wanted.has(row.requestId)) booked.push(row);
      }
    } else {
      return [...rows];
    }
    const remaining = new Map<string, number>();
    for (const key of booked) {
      const name = usageKey(key);
      remaining.set(name, (remaining.get(name) ?? 0) + 1);
    }
    return rows.filter((row) => {
      const name = usageKey(row);
      const left = remaining.get(name) ?? 0;
      if (left === 0) return true;
      remaining.set(name, left - 1);
      return false;
    });
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
    if (this.rescanTimer !== undefined) clearInterval(this.rescanTimer);
    // A rescan under way adds its files before the drain below writes them.
    await this.rescanning;
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
      if (this.current.count === 0 && this.current.file !== undefined) journal.remove(this.current.file);
      else if (this.current.file !== undefined) journal.seal(this.current.file);
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
