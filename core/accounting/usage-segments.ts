// How a usage segment's rows reach the store (usage-queue.ts): the writer's contract, a sealed
// segment's write (writeSegment), its journaled pieces handed over as the journal wrote them, the rows
// read back from a file (with the estimates of the requests a dead process left in flight), the
// replay's check against the store, and the claiming of a dead process's files.

import type { Logger } from '../logger.ts';
import type { HeldLease } from '../spec/lifecycle.ts';
import type { JournalRange, UsageKey, UsageRecord } from '../spec/store.ts';
import { estimatedRow, type PriceUsage } from './in-flight-marks.ts';
import type { JournalFile, UsageJournal } from './usage-journal.ts';

export interface UsageWriter {
  insertUsage(rows: readonly UsageRecord[]): Promise<void>;
  /** Store.insertJournaledUsage: the batch with the journal's own text for its rows, so they are not encoded again. */
  insertJournaledUsage?(rows: readonly UsageRecord[], lines: string): Promise<void>;
  /** Store.insertJournalRange: the batch as a byte range of its journal file, read by the store's own thread. */
  insertJournalRange?(count: number, range: JournalRange): Promise<void>;
  /** Store.findUsageKeys: lets a replay skip rows the store already holds. */
  findUsageKeys?(keys: readonly UsageKey[]): Promise<UsageKey[]>;
  /** The fallback for a replay when the store has no findUsageKeys. */
  listUsage?(accountId: string): Promise<UsageRecord[]>;
}

/**
 * The budget leases a request a dead process left in flight held, by its estimated row: settled to the
 * row's cost once the row is written (UsageQueueOptions.settleLeases). A WeakMap, as only those rows,
 * read back at a replay, are ever entered.
 */
const replayedLeases = new WeakMap<UsageRecord, HeldLease[]>();

/** A replayed row written to the store, with the leases its request held. */
export interface ReplayedLeases {
  row: UsageRecord;
  leases: HeldLease[];
}

/** A run of rows journaled to one file, written to the store in one batch and then deleted. */
export interface Segment {
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
  /** A dead process's file: the requests it left in flight are booked with its rows (in-flight-marks.ts). */
  adopted: boolean;
  /** An append to its file failed: the file may hold a cut line, so it is read back line by line, never handed over as a range. */
  torn?: boolean;
}

/** One turn's rows as the journal wrote them: bytes [start, end) of the file, and their text only for a writer that takes text. */
export interface JournalPiece {
  text: string | undefined;
  start: number;
  end: number;
  count: number;
}

const usageKey = (row: UsageKey): string => `${row.requestId}\u0000${row.accountId}\u0000${row.createdAt}`;

/**
 * The segment's rows as the journal wrote them, in batches of whole turns of at most a batch (or one
 * larger turn), each all or none: a byte range of the file for a writer that reads it, else the text.
 * A failure leaves the segment marked for replay, whose retry takes the rows path and skips what the
 * store already holds.
 */
export async function writeJournaledPieces(
  writer: UsageWriter,
  batchSize: number,
  rows: readonly UsageRecord[],
  file: JournalFile,
  pieces: readonly JournalPiece[],
  written: (rows: number) => void,
): Promise<void> {
  let start = 0;
  for (let index = 0; index < pieces.length; ) {
    const first = pieces[index] as JournalPiece;
    let text = first.text;
    let count = first.count;
    let end = first.end;
    index += 1;
    while (index < pieces.length && count + (pieces[index] as JournalPiece).count <= batchSize) {
      const piece = pieces[index] as JournalPiece;
      if (text !== undefined) text += piece.text;
      count += piece.count;
      end = piece.end;
      index += 1;
    }
    if (writer.insertJournalRange !== undefined) await writer.insertJournalRange(count, { path: file.path, start: first.start, end });
    else {
      const batch = start === 0 && count === rows.length ? rows : rows.slice(start, start + count);
      if (writer.insertJournaledUsage !== undefined && text !== undefined) await writer.insertJournaledUsage(batch, text);
      else await writer.insertUsage(batch);
    }
    start += count;
    written(count);
  }
}

/**
 * Writes one sealed segment: the first time as the journal wrote its pieces, when it has them; else
 * its rows (from memory, or read back from its file), a replay's without those the store already has.
 */
export async function writeSegment(
  writer: UsageWriter,
  segment: Segment,
  options: { batchSize: number; journal?: UsageJournal; price?: PriceUsage; settleLeases?: (written: ReplayedLeases[]) => void },
  written: (rows: number) => void,
): Promise<void> {
  if (await writeSpilledRange(writer, segment, written)) return;
  let rows = segment.rows;
  if (rows === undefined) {
    if (segment.file === undefined || options.journal === undefined) throw new Error('a usage segment has neither rows nor a journal file');
    rows = segmentFileRows(options.journal, segment.file, segment.adopted, options.price);
  }
  const replay = segment.replay;
  // From here on, a failure leaves doubt about what the store took.
  segment.replay = true;
  if (!replay && segment.pieces !== undefined && segment.file !== undefined) {
    await writeJournaledPieces(writer, options.batchSize, rows, segment.file, segment.pieces, written);
    return;
  }
  const toWrite = replay ? await rowsNotYetBooked(writer, rows) : rows;
  // A replayed segment may be large (a crashed process's): written in batches, each all or none.
  for (let start = 0; start < toWrite.length; start += options.batchSize) {
    const batch = start === 0 && toWrite.length <= options.batchSize ? toWrite : toWrite.slice(start, start + options.batchSize);
    await writer.insertUsage(batch);
    written(batch.length);
    // Only rows this write booked: one the store already held (a replay run again) had its leases settled then.
    if (options.settleLeases !== undefined && replay) settleWritten(batch, options.settleLeases);
  }
}

/**
 * A segment past the buffer's bound lives in its file only: a writer that reads journal files (the
 * SQLite writer thread) is handed the whole file as one range on its first write, so the gateway's
 * thread reads none of it back. A replay (a write that failed, which may have committed), a dead
 * process's file and a file an append tore take the rows path. False when it does not apply.
 */
async function writeSpilledRange(writer: UsageWriter, segment: Segment, written: (rows: number) => void): Promise<boolean> {
  const { file } = segment;
  if (segment.rows !== undefined || segment.replay || segment.adopted || segment.torn === true || file === undefined) return false;
  if (writer.insertJournalRange === undefined || segment.count === 0) return false;
  segment.replay = true;
  await writer.insertJournalRange(segment.count, { path: file.path, start: 0, end: segment.bytes });
  written(segment.count);
  return true;
}

function settleWritten(batch: readonly UsageRecord[], settle: (written: ReplayedLeases[]) => void): void {
  let settled: ReplayedLeases[] | undefined;
  for (const row of batch) {
    const leases = replayedLeases.get(row);
    if (leases !== undefined) (settled ??= []).push({ row, leases });
  }
  if (settled !== undefined) settle(settled);
}

/**
 * A segment's rows read from its file; a dead process's (`adopted`) with a row at Keyway's estimate
 * for each request it left in flight. This process's own files never: its open requests are alive.
 */
export function segmentFileRows(journal: UsageJournal, file: JournalFile, adopted: boolean, price: PriceUsage | undefined): UsageRecord[] {
  const contents = journal.readSegment(file);
  if (!adopted || contents.unfinished.length === 0) return contents.rows;
  return contents.rows.concat(
    contents.unfinished.map((request) => {
      const row = estimatedRow(request, price);
      if (request.leases !== undefined && request.leases.length > 0) replayedLeases.set(row, request.leases);
      return row;
    }),
  );
}

/** The rows the store does not hold yet, keys compared as a multiset (a client may repeat a request id). */
export async function rowsNotYetBooked(writer: UsageWriter, rows: readonly UsageRecord[]): Promise<UsageRecord[]> {
  if (rows.length === 0) return [];
  let booked: UsageKey[];
  if (writer.findUsageKeys !== undefined) {
    booked = await writer.findUsageKeys(rows);
  } else if (writer.listUsage !== undefined) {
    const wanted = new Set(rows.map((row) => row.requestId));
    booked = [];
    for (const accountId of new Set(rows.map((row) => row.accountId))) {
      for (const row of await writer.listUsage(accountId)) if (wanted.has(row.requestId)) booked.push(row);
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
 * Claims the files (one process wins each) and answers them as segments to replay, read again when
 * written (a big file is not kept in memory meanwhile); an empty one is deleted at once. Logs what it
 * found: `message` when there is anything to replay.
 */
export function claimLeftovers(journal: UsageJournal, paths: readonly string[], logger: Logger, message: string): { adopted: Segment[]; rows: number } {
  const adopted: Segment[] = [];
  let rows = 0;
  let unfinished = 0;
  let unreadable = 0;
  for (const path of paths) {
    const file: JournalFile | undefined = journal.claim(path);
    if (file === undefined) continue;
    const contents = journal.readSegment(file);
    unreadable += contents.unreadable;
    const count = contents.rows.length + contents.unfinished.length;
    if (count === 0) {
      journal.remove(file);
      continue;
    }
    rows += count;
    unfinished += contents.unfinished.length;
    adopted.push({ file, rows: undefined, count, pieces: undefined, bytes: 0, replay: true, adopted: true });
  }
  if (unreadable > 0) logger.warn({ unreadable }, 'lines of the usage journal could not be read and were skipped');
  if (adopted.length === 0) return { adopted, rows };
  logger.info({ files: adopted.length, rows }, message);
  if (unfinished > 0) {
    logger.warn(
      { requests: unfinished },
      'requests were in flight upstream when their gateway process died: each is booked once at its estimate (error code gateway_stopped)',
    );
  }
  return { adopted, rows };
}
