// The rows booked in one event-loop turn, on their way to the usage journal together (a group commit:
// one system call per turn instead of one per row), and the promise an answer waits on until they are
// there. The queue (usage-queue.ts) decides where they go; this only gathers them and ends the turn.

import type { UsageRecord } from '../spec/store.ts';

/** What a turn hands the queue when it is committed. */
export interface TurnRows {
  rows: UsageRecord[];
  /** For each row, the in-flight id its close mark names (0: none). */
  closes: number[];
  /** Settles whoever waits on these rows (`waiter()`); undefined when nobody does. */
  settle: (() => void) | undefined;
}

export class JournalTurn {
  private rows: UsageRecord[] = [];
  private closes: number[] = [];
  private written: Promise<void> | undefined;
  private settleWritten: (() => void) | undefined;
  /** A row was booked in this turn: later rows wait for its end. */
  private rowInTurn = false;
  /** The turn's end is scheduled: a row or an in-flight mark waits for it. */
  private endScheduled = false;

  /** `commit` runs at the turn's end: it takes the rows (`take()`) and journals them. */
  constructor(private readonly commit: () => void) {}

  /** Rows booked in this turn and not yet taken. */
  get length(): number {
    return this.rows.length;
  }

  /** Books a row; true when it is the turn's first, which the queue journals at once. */
  add(row: UsageRecord, close: number): boolean {
    this.rows.push(row);
    this.closes.push(close);
    if (this.rowInTurn) return false;
    this.rowInTurn = true;
    this.scheduleEnd();
    return true;
  }

  /**
   * Settles once the rows booked so far in this turn are taken and journaled (or, if they could not
   * be, held in memory); undefined when none waits. Never rejects.
   */
  waiter(): Promise<void> | undefined {
    if (this.rows.length === 0) return undefined;
    this.written ??= new Promise<void>((resolve) => {
      this.settleWritten = resolve;
    });
    return this.written;
  }

  /** Ends the turn once the event loop has run what is queued (in-flight marks ask for it too). */
  readonly scheduleEnd = (): void => {
    if (this.endScheduled) return;
    this.endScheduled = true;
    setImmediate(this.end);
  };

  private readonly end = (): void => {
    this.endScheduled = false;
    this.rowInTurn = false;
    this.commit();
  };

  /** Takes the rows booked so far; the turn goes on with none. */
  take(): TurnRows {
    const taken: TurnRows = { rows: this.rows, closes: this.closes, settle: this.settleWritten };
    this.rows = [];
    this.closes = [];
    this.written = undefined;
    this.settleWritten = undefined;
    return taken;
  }
}
