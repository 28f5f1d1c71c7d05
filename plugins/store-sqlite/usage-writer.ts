// The usage writer: a worker thread with its own connection to the database file that writes usage
// batches and folds them into the roll-ups. SQLite calls are synchronous, so a flush of a thousand
// rows (and their roll-ups) on the gateway's thread would stall every request for milliseconds; here
// it runs beside the event loop, on another core when there is one. WAL lets the two connections
// read and write side by side; a batch is one transaction, all or none, as in the thread itself.

import { Database } from 'bun:sqlite';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { insertBatch } from './batch-insert.ts';
import { batchScheduleCallingThread, threadYielder } from '../../core/process/thread-scheduling.ts';
import { CONNECTION_PRAGMAS } from './connection-settings.ts';
import { type UsageFolder, usageFolder } from './fold-upsert.ts';
import { readJournalRange, usageValuesFromJournalText } from './usage-values.ts';

export interface OpenMessage {
  type: 'open';
  path: string;
  /** Give up wake-up preemption (SCHED_BATCH): batch work yields to the request thread (core/process/thread-scheduling.ts). */
  batchSchedule: boolean;
}

export interface InsertMessage {
  type: 'insert';
  id: number;
  sql: string;
  /**
   * The rows as one JSON text: a structured clone of thousands of small arrays costs the sending
   * thread several times what one string does (measured: ~10 µs against ~2 µs per audit row).
   */
  rows: string;
  after: readonly string[];
  /** Sum the rows into the folds the last FoldsMessage set. */
  fold: boolean;
}

/**
 * Usage rows as the usage journal wrote them (core/wire/usage-journal-text.ts): the gateway's thread
 * already paid for that text, so this thread decodes it rather than the gateway encoding the rows again.
 */
export interface InsertTextMessage {
  type: 'insert-text';
  id: number;
  sql: string;
  text: string;
  /** The batch's rows: the text must hold exactly these many. */
  count: number;
  after: readonly string[];
  /** Sum the rows into the folds the last FoldsMessage set. */
  fold: boolean;
}

/**
 * Usage rows where the usage journal wrote them (Store.insertJournalRange): bytes [start, end) of a
 * sealed segment file, read here, so the gateway's thread neither keeps their text nor copies it over.
 */
export interface InsertFileMessage {
  type: 'insert-file';
  id: number;
  sql: string;
  path: string;
  start: number;
  end: number;
  /** The batch's rows: the range must hold exactly these many. */
  count: number;
  after: readonly string[];
  /** Sum the rows into the folds the last FoldsMessage set. */
  fold: boolean;
}

/** The folds (core/spec/usage-fold.ts) every later batch is summed into, over values in `columns` order. */
export interface FoldsMessage {
  type: 'folds';
  tables: readonly UsageFoldTable[];
  columns: readonly string[];
}

export type WriterMessage = OpenMessage | InsertMessage | InsertTextMessage | InsertFileMessage | FoldsMessage;

export type WriterReply = { type: 'opened' } | { type: 'failed-to-open'; error: string } | { type: 'done'; id: number; error?: string };

declare const self: Worker;

let database: Database | undefined;
let folder: UsageFolder | undefined;
/**
 * sched_yield, once the thread gave up wake-up preemption: between the steps of a batch (a slice of
 * the decoding, 256 rows of the fold, each INSERT of 32 rows) a request thread waiting for this core
 * runs first. Without it a batch of 2,000 rows (about 10 ms of work) held the core for whole time
 * slices, and the requests that arrived meanwhile waited for them (bench/fixed-rate-variants.ts:
 * p99). On a saturated core each yield hands the rest of the turn to the request thread, so the
 * writer then gets about one step per turn of the request thread: at 10,000 requests a second on one
 * core it still kept up (a backlog under 1,000 rows, gone 3 s after the load), and yielding only
 * after a millisecond of work measured a longer tail (bench/RESULTS.md, session 7).
 */
let pause: (() => void) | undefined;

/** Lines decoded per step: about 0.3 ms of work. */
const DECODE_SLICE = 256;

/**
 * The batch's values, decoded a slice of lines at a time with a pause after each. An error names the
 * line in the batch, as the decoding of the whole text would.
 */
function decodeInSlices(text: string, count: number): Array<Array<string | number | null>> {
  if (count <= DECODE_SLICE) return usageValuesFromJournalText(text, count);
  const rows: Array<Array<string | number | null>> = [];
  let start = 0;
  let linesBefore = 0;
  while (start < text.length) {
    let end = start;
    let lines = 0;
    while (lines < DECODE_SLICE && end < text.length) {
      const newline = text.indexOf('\n', end);
      end = newline === -1 ? text.length : newline + 1;
      lines++;
    }
    try {
      // A slice may hold in-flight marks, which hold no row: only the whole batch's rows are counted.
      for (const row of usageValuesFromJournalText(text.slice(start, end), undefined)) rows.push(row);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(message.replace(/line (\d+)/, (_, line: string) => `line ${linesBefore + Number(line)}`));
    }
    linesBefore += lines;
    pause?.();
    start = end;
  }
  if (rows.length !== count) throw new Error(`the usage journal text holds ${rows.length} rows, not the ${count} of its batch`);
  return rows;
}

function insert(message: InsertMessage | InsertTextMessage | InsertFileMessage): void {
  if (database === undefined) throw new Error('the usage writer has no open database');
  const rows =
    message.type === 'insert'
      ? (JSON.parse(message.rows) as Array<Array<string | number | null>>)
      : decodeInSlices(message.type === 'insert-text' ? message.text : readJournalRange(message), message.count);
  insertBatch(database, message.sql, rows, message.after, message.fold ? folder : undefined, pause);
}

self.onmessage = (event: MessageEvent<WriterMessage>) => {
  const message = event.data;
  if (message.type === 'folds') {
    // Compiled here once; the store compiled them at start too (store.ts), so a bad fold stopped the start.
    folder = usageFolder(message.tables, message.columns);
    return;
  }
  if (message.type === 'open') {
    if (message.batchSchedule) {
      void batchScheduleCallingThread();
      void threadYielder().then((yielder) => {
        pause = yielder;
      });
    }
    try {
      database = new Database(message.path);
      database.exec(CONNECTION_PRAGMAS);
      self.postMessage({ type: 'opened' } satisfies WriterReply);
    } catch (error) {
      self.postMessage({ type: 'failed-to-open', error: error instanceof Error ? error.message : String(error) } satisfies WriterReply);
    }
    return;
  }
  try {
    insert(message);
    self.postMessage({ type: 'done', id: message.id } satisfies WriterReply);
  } catch (error) {
    self.postMessage({ type: 'done', id: message.id, error: error instanceof Error ? error.message : String(error) } satisfies WriterReply);
  }
};
