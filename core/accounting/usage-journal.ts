// The usage journal: every usage row is appended to a file before its answer is released, so a
// process that dies (SIGKILL, OOM kill, a crash) loses no row whose answer a client received.
//
// Layout. `<data dir>/usage-journal/<pid>.<start time>-<instance>-<sequence>.jsonl`, one usage row per
// line, a JSON array of its fields (journal-line.ts). The start time is the process's, from
// /proc/self/stat (journal-owner.ts); without /proc (macOS) the name is `<pid>-<instance>-<sequence>.jsonl`,
// which is also what releases before start times were recorded wrote, and is still read.
// A process writes one file (a "segment") at a time, opened with O_APPEND. The usage queue
// (usage-queue.ts) seals the segment when it flushes and starts the next one; a sealed segment's file
// is deleted only once every row in it was committed to the store. So at any moment the files hold
// every row not yet known to be committed, and possibly rows committed just before the process died.
//
// Group commit. The first row of an event-loop turn is appended at once; the turn's later rows are
// appended together in one `writeSync` at the end of the turn (UsageQueue.enqueue, a setImmediate),
// and their answers are released once it is done (Accountant.journaled, awaited by the lifecycle
// runner and before a stream's last bytes). At low load a turn books one row and nothing waits; at
// c=64 a turn books about 27: two system calls for all of them instead of one each, which cost about
// 1 µs per row alone (bench/micro/usage-journal.ts) and up to 4 µs under load. What a SIGKILL can
// lose is the rows of the turn it strikes in whose answers were not released yet: the same as a
// request killed before it was booked. A shared memory-mapped file was tried before (no system call
// per row): no faster under load, and its p99 at concurrency 1 was worse (4.7–5.0 ms against 3.4–3.6
// ms): a write fault on a mapped page can wait for that page's writeback, and a full disk turns into
// SIGBUS. The plain write stays.
// Bytes handed to the kernel survive the death of the process without an fsync; only a power loss
// or a kernel crash can lose the last seconds the page cache had not written out. Keyway does not
// fsync each row (that costs a disk flush per request); put the data directory on a disk whose
// write cache is safe if power loss must not cost rows.
//
// Replay. At start (UsageQueue.recover), and every KEYWAY_USAGE_JOURNAL_RESCAN_MS while running
// (UsageQueue.rescan), the files of processes that are gone are read and their rows inserted, skipping
// every row the store already holds (same request id, account and creation time, counted as a
// multiset): a row written to the store and still in the journal is not booked twice, and a replay cut
// short by another crash is simply replayed again. A file is deleted once its rows are in. A file
// belongs to a process that is gone when its pid runs no process, or a zombie, or a process that
// started at another time than the one in the name (the pid was reused); or when the pid is this
// process's own (a restart in a container reuses pids) under another instance id. A file without a
// start time (an older release's) is gone only when its pid runs no process or a zombie. Two gateways
// in different pid namespaces (containers) must not share one data directory.
//
// In flight. A request whose upstream call has started is billed by the provider whether or not its
// row is ever written, so a call still under way at the once-a-second tick leaves a small open mark in
// the current segment, written with the turn's rows (nothing waits for it), and its row is followed by
// the request's close mark; a stream adds a progress mark at each tick. A sealed segment's open requests are marked
// again at the start of the next one, and the sealed one gets a seal mark, so only a dead process's
// newest segment holds requests that never ended. A replay books each of them once at Keyway's
// estimate (in-flight.ts, in-flight-marks.ts; docs/security.md, "Requests in flight at a crash").
//
// Several processes on one data directory (KEYWAY_WORKERS) may look for leftovers at once: a worker
// restarted while another starts, and every worker's periodic rescan. A live sibling's files are never
// taken: its pid runs, with the start time its names record. Each claims a leftover by renaming it into
// its own name space (its pid, start time and instance) before reading it; a rename succeeds for one
// process only, so no file is replayed by two. A claimer that dies in turn leaves the file under its
// own pid, a leftover for the next start or rescan.

import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { UsageRecord } from '../spec/store.ts';
import { type OwnerCheck, ownerIsAlive, ownStartTime } from './journal-owner.ts';
import { isJournalMark, journalLine, rowFromLine } from './journal-line.ts';
import { closeMark, MarkReader, type UnfinishedRequest } from './in-flight-marks.ts';

export const JOURNAL_DIRECTORY_NAME = 'usage-journal';

/** `<pid>.<start time>-<instance>-<sequence>.jsonl`; the start time is missing from older files. */
const FILE_PATTERN = /^(\d+)(?:\.(\d+))?-([a-z0-9]+)-(\d+)\.jsonl$/;

/** Journals of this process still in use: another runtime in the same process must not replay them. */
const liveInstances = new Set<string>();

/** One segment file: created on its first row, closed when sealed. */
export interface JournalFile {
  readonly path: string;
  fd: number | undefined;
}

export interface JournalContents {
  rows: UsageRecord[];
  /** Requests whose upstream call was under way when the file's writer died (in-flight-marks.ts). */
  unfinished: UnfinishedRequest[];
  /** Lines that did not parse as a usage row or a mark (a line cut by a power loss). */
  unreadable: number;
}

/** What one write handed to the kernel. */
export interface Appended {
  /** The rows' lines alone, marks left out: what a store that takes journal text is given. */
  text: string;
  /** Every byte written, marks included. */
  bytes: number;
}

export interface UsageJournalOptions {
  /** Whether a file's writer still runs (journal-owner.ts); a test fakes a live pid with it. */
  ownerIsAlive?: OwnerCheck;
}

export class UsageJournal {
  readonly instance = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
  private sequence = 0;
  private closed = false;
  /** `<pid>.<start time>`, or `<pid>` without /proc: who wrote a file, as its name says. */
  private readonly owner: string;
  private readonly ownerIsAlive: OwnerCheck;

  private constructor(
    readonly directory: string,
    private readonly logger: Logger,
    options: UsageJournalOptions,
  ) {
    liveInstances.add(this.instance);
    const startTime = ownStartTime();
    this.owner = startTime === undefined ? String(process.pid) : `${process.pid}.${startTime}`;
    this.ownerIsAlive = options.ownerIsAlive ?? ownerIsAlive;
  }

  /** Creates the directory if needed; throws when it cannot be created. */
  static open(directory: string, logger: Logger, options: UsageJournalOptions = {}): UsageJournal {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    return new UsageJournal(directory, logger, options);
  }

  /** A new segment; its file is created by its first append. */
  newFile(): JournalFile {
    this.sequence += 1;
    return { path: join(this.directory, `${this.owner}-${this.instance}-${String(this.sequence).padStart(6, '0')}.jsonl`), fd: undefined };
  }

  /**
   * Takes a leftover for this process to replay: renamed to a segment name of its own, so no other
   * process adopts it meanwhile. Undefined when another process claimed it first.
   */
  claim(path: string): JournalFile | undefined {
    const file = this.newFile();
    try {
      renameSync(path, file.path);
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Every row of a segment. */
  readSegment(file: JournalFile): JournalContents {
    return this.read(file.path);
  }

  /**
   * The rows, one line each, handed to the kernel in one write before this returns, after `marks`
   * (in-flight marks, in-flight-marks.ts), each row followed by the close mark of its request when
   * `closes` names one (0: none). Answers the rows' text and the bytes written (the usage queue hands
   * the one or the other to the store). Throws when the write fails; a write cut short (a full disk)
   * leaves a cut last line, which a replay skips.
   */
  append(file: JournalFile, rows: readonly UsageRecord[], marks = '', closes?: readonly number[]): Appended {
    let text = '';
    let written = marks;
    for (let index = 0; index < rows.length; index++) {
      const line = `${journalLine(rows[index] as UsageRecord)}\n`;
      text += line;
      written += line;
      // Right after its row, not before: a write a SIGKILL cuts short (it can, between pages) then
      // loses no request. The row it cuts between is at worst booked twice, its row and its estimate.
      const close = closes?.[index];
      if (close !== undefined && close !== 0) written += closeMark(close);
    }
    return { text, bytes: this.appendText(file, written) };
  }

  /** Lines as they are (marks), in one write; answers the bytes written. Throws as `append` does. */
  appendText(file: JournalFile, text: string): number {
    if (file.fd === undefined) file.fd = openSync(file.path, 'a', 0o600);
    const bytes = Buffer.from(text);
    // A regular file takes the whole write at once unless the disk is full; loop all the same.
    for (let offset = 0; offset < bytes.length; ) {
      const written = writeSync(file.fd, bytes, offset);
      if (written <= 0) throw new Error('the usage journal took no bytes');
      offset += written;
    }
    return bytes.length;
  }

  /** No more rows go to this file. */
  seal(file: JournalFile): void {
    if (file.fd === undefined) return;
    try {
      closeSync(file.fd);
    } catch {
      // Already closed.
    }
    file.fd = undefined;
  }

  /** Deletes a segment whose rows are all committed. */
  remove(file: JournalFile): void {
    this.seal(file);
    try {
      unlinkSync(file.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      // Left behind, it is replayed at the next start, where rows already in the store are skipped.
      this.logger.warn({ file: file.path, error: (error as Error).message }, 'a written usage journal segment could not be deleted');
    }
  }

  read(path: string): JournalContents {
    const rows: UsageRecord[] = [];
    const marks = new MarkReader();
    let unreadable = 0;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { rows, unfinished: [], unreadable };
      throw error;
    }
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      try {
        const value: unknown = JSON.parse(line);
        if (isJournalMark(value)) {
          if (!marks.read(value)) unreadable += 1;
          continue;
        }
        const row = rowFromLine(value);
        if (row !== undefined) rows.push(row);
        else unreadable += 1;
      } catch {
        unreadable += 1;
      }
    }
    return { rows, unfinished: marks.unfinished(), unreadable };
  }

  /**
   * Segment files left by processes that are gone, oldest name first. A directory listing, plus one
   * read of /proc/<pid>/stat per other process with files there: cheap enough for a periodic rescan.
   */
  leftovers(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return [];
    }
    const files: string[] = [];
    // Each writer is asked about once per listing, however many files it has.
    const alive = new Map<string, boolean>();
    for (const name of names.sort()) {
      const match = FILE_PATTERN.exec(name);
      if (match === null) continue;
      const instance = match[3] as string;
      if (liveInstances.has(instance)) continue;
      const pid = Number(match[1]);
      // This pid under an instance no runtime of this process holds: a previous process with this pid.
      if (pid !== process.pid && this.isAlive(alive, pid, match[2])) continue;
      files.push(join(this.directory, name));
    }
    return files;
  }

  private isAlive(known: Map<string, boolean>, pid: number, startTime: string | undefined): boolean {
    const key = `${pid}.${startTime ?? ''}`;
    let alive = known.get(key);
    if (alive === undefined) {
      alive = this.ownerIsAlive(pid, startTime);
      known.set(key, alive);
    }
    return alive;
  }

  /** This process no longer writes here; what is left may be replayed by the next start. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    liveInstances.delete(this.instance);
  }
}
