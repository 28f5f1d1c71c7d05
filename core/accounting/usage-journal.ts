// The usage journal: every usage row is appended to a file before its response ends, so a process
// that dies (SIGKILL, OOM kill, a crash) loses no row that had not reached the store yet.
//
// Layout. `<data dir>/usage-journal/<pid>-<instance>-<sequence>[.<chunk>].jsonl`, one JSON usage row
// per line, the rest of the file zero bytes. The usage queue (usage-queue.ts) seals a segment when it
// flushes and starts the next one; a sealed segment's files are deleted only once every row in it was
// committed to the store. So at any moment the files hold every row not yet known to be committed,
// and possibly rows committed just before the process died.
//
// Writing. Each file is a fixed-size chunk, zero-filled when created (so its disk blocks exist: a
// write into a mapped page can then never fail for want of space, which would be a SIGBUS), then
// memory-mapped shared: appending a row is a copy into the page cache, with no system call. The kernel
// owns those pages, so they survive the death of the process exactly as a write() would; only a power
// loss or a kernel crash can lose what the page cache had not written out. A row that does not fit
// the chunk opens the segment's next chunk. A per-row writeSync cost ~1.5 µs alone but ~8 µs per
// request under load (a system call and the file's lock on the request thread); the mapped copy costs
// well under a microsecond (bench/micro/usage-journal.ts). Keyway does not fsync: put the data
// directory on a disk whose write cache is safe if power loss must not cost rows.
//
// Replay. At start (UsageQueue.recover), the files of processes that are gone are read and their rows
// inserted, skipping every row the store already holds (same request id, account and creation time,
// counted as a multiset): a row written to the store and still in the journal is not booked twice,
// and a replay cut short by another crash is simply replayed again. A file is deleted once its rows
// are in. A file belongs to a process that is gone when no live process has its pid, or the pid is
// this process's own (a restart in a container reuses pids) under another instance id. Two gateways
// in different pid namespaces (containers) must not share one data directory.

import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { UsageRecord } from '../spec/store.ts';

export const JOURNAL_DIRECTORY_NAME = 'usage-journal';

const FILE_PATTERN = /^(\d+)-([a-z0-9]+)-(\d+)(?:\.\d+)?\.jsonl$/;
/** 2 MiB: a second of rows at ~3,500 req/s before the next chunk; zero-filling one takes ~1 ms. */
const CHUNK_BYTES = 2 * 1024 * 1024;
const ZEROS = new Uint8Array(256 * 1024);

/** Journals of this process still in use: another runtime in the same process must not replay them. */
const liveInstances = new Set<string>();

/** One segment: its first chunk's path, the chunks written so far, and where the next row goes. */
export interface JournalFile {
  readonly path: string;
  chunks: string[];
  /** The current chunk's mapping, as a Buffer so a row is written without a subarray per row. */
  map: Buffer | undefined;
  offset: number;
}

/** Creates a zero-filled chunk file, on the request thread: only when no spare chunk is ready. */
function zeroFillNow(path: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    for (let written = 0; written < CHUNK_BYTES; written += ZEROS.byteLength) writeSync(fd, ZEROS);
  } finally {
    closeSync(fd);
  }
}

function mapShared(path: string): Buffer {
  const map = Bun.mmap(path, { shared: true });
  return Buffer.from(map.buffer, map.byteOffset, map.byteLength);
}

const SPARE_PATTERN = /^spare-([a-z0-9]+)-\d+\.tmp$/;

export interface JournalContents {
  rows: UsageRecord[];
  /** Lines that did not parse as a usage row (a line cut by a power loss). */
  unreadable: number;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process with that pid exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isUsageRow(value: unknown): value is UsageRecord {
  if (value === null || typeof value !== 'object') return false;
  const row = value as Record<string, unknown>;
  return typeof row.requestId === 'string' && typeof row.accountId === 'string' && typeof row.createdAt === 'string';
}

export class UsageJournal {
  readonly instance = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
  private sequence = 0;
  /** A zero-filled chunk made in the background, ready to be renamed into place. */
  private spare: string | undefined;
  private spareSequence = 0;
  private preparing = false;
  private closed = false;

  private constructor(
    readonly directory: string,
    private readonly logger: Logger,
  ) {
    liveInstances.add(this.instance);
    this.removeDeadSpares();
  }

  /** Creates the directory if needed; throws when it cannot be created. */
  static open(directory: string, logger: Logger): UsageJournal {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    return new UsageJournal(directory, logger);
  }

  /** A new segment; its file is created by its first append. */
  newFile(): JournalFile {
    this.sequence += 1;
    return {
      path: join(this.directory, `${process.pid}-${this.instance}-${String(this.sequence).padStart(6, '0')}.jsonl`),
      chunks: [],
      map: undefined,
      offset: 0,
    };
  }

  /** A segment file found on disk (a leftover), for removal once replayed. */
  existing(path: string): JournalFile {
    return { path, chunks: [path], map: undefined, offset: 0 };
  }

  /** One line, in the page cache before this returns. Throws when a chunk cannot be created. */
  append(file: JournalFile, row: UsageRecord): void {
    const line = `${JSON.stringify(row)}\n`;
    if (file.map === undefined || !this.tryCopy(file, line)) {
      const chunkPath = file.chunks.length === 0 ? file.path : file.path.replace(/\.jsonl$/, `.${file.chunks.length}.jsonl`);
      file.map = this.newChunk(chunkPath);
      file.chunks.push(chunkPath);
      file.offset = 0;
      if (!this.tryCopy(file, line)) throw new Error(`a usage row of ${line.length} characters does not fit a journal chunk`);
    }
  }

  /** Copies the line if it fits whole (a cut line would not parse); false when the chunk is full. */
  private tryCopy(file: JournalFile, line: string): boolean {
    const map = file.map as Buffer;
    // A UTF-8 character is at most 3 bytes per UTF-16 unit: below this bound the line always fits;
    // above it, measure first, so a line is never cut (a cut line would not parse).
    if (file.offset + line.length * 3 > map.byteLength && file.offset + Buffer.byteLength(line) > map.byteLength) return false;
    file.offset += map.write(line, file.offset, 'utf8');
    return true;
  }

  /** No more rows go to this segment; its mapping is released with the object. */
  seal(file: JournalFile): void {
    file.map = undefined;
  }

  /** Deletes a segment whose rows are all committed. */
  remove(file: JournalFile): void {
    this.seal(file);
    for (const path of file.chunks) {
      try {
        unlinkSync(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        // Left behind, it is replayed at the next start, where rows already in the store are skipped.
        this.logger.warn({ file: path, error: (error as Error).message }, 'a written usage journal segment could not be deleted');
      }
    }
    file.chunks = [];
  }

  /** Every row of a segment, chunk after chunk. */
  readSegment(file: JournalFile): JournalContents {
    const all: JournalContents = { rows: [], unreadable: 0 };
    for (const path of file.chunks) {
      const contents = this.read(path);
      all.rows.push(...contents.rows);
      all.unreadable += contents.unreadable;
    }
    return all;
  }

  /** The rows of one chunk file: its lines up to the first zero byte. */
  read(path: string): JournalContents {
    const rows: UsageRecord[] = [];
    let unreadable = 0;
    let text: string;
    try {
      const bytes = readFileSync(path);
      const end = bytes.indexOf(0);
      text = bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { rows, unreadable };
      throw error;
    }
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      try {
        const value: unknown = JSON.parse(line);
        if (isUsageRow(value)) rows.push(value);
        else unreadable += 1;
      } catch {
        unreadable += 1;
      }
    }
    return { rows, unreadable };
  }

  /** Segment files left by processes that are gone, oldest name first. */
  leftovers(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return [];
    }
    const files: string[] = [];
    for (const name of names.sort()) {
      const match = FILE_PATTERN.exec(name);
      if (match === null) continue;
      const pid = Number(match[1]);
      const instance = match[2] as string;
      if (liveInstances.has(instance)) continue;
      if (pid !== process.pid && processIsAlive(pid)) continue;
      files.push(join(this.directory, name));
    }
    return files;
  }

  /**
   * A chunk at `path`: the spare one when it is ready (a rename), else zero-filled right now. Zero-
   * filling 2 MiB takes ~1 ms; done on the request thread each time, it showed in the p99 latency.
   */
  private newChunk(path: string): Buffer {
    const spare = this.spare;
    this.spare = undefined;
    if (spare !== undefined) {
      try {
        renameSync(spare, path);
        this.prepareSpare();
        return mapShared(path);
      } catch {
        // Fall through: make one now.
      }
    }
    zeroFillNow(path);
    this.prepareSpare();
    return mapShared(path);
  }

  /** Zero-fills the next chunk off the request thread (the file system's worker threads). */
  private prepareSpare(): void {
    if (this.preparing || this.closed) return;
    this.preparing = true;
    this.spareSequence += 1;
    const path = join(this.directory, `spare-${this.instance}-${this.spareSequence}.tmp`);
    writeFile(path, new Uint8Array(CHUNK_BYTES), { mode: 0o600, flag: 'wx' })
      .then(() => {
        if (this.closed) unlinkSync(path);
        else this.spare = path;
      })
      .catch((error: unknown) =>
        this.logger.warn({ error: (error as Error).message }, 'could not prepare a usage journal chunk; the next one is made when needed'),
      )
      .finally(() => {
        this.preparing = false;
      });
  }

  /** Spare chunks left by processes that are gone hold no rows: removed. */
  private removeDeadSpares(): void {
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return;
    }
    for (const name of names) {
      const match = SPARE_PATTERN.exec(name);
      if (match === null || liveInstances.has(match[1] as string)) continue;
      try {
        unlinkSync(join(this.directory, name));
      } catch {
        // Someone else removed it.
      }
    }
  }

  /** This process no longer writes here; what is left may be replayed by the next start. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    liveInstances.delete(this.instance);
    if (this.spare !== undefined) {
      try {
        unlinkSync(this.spare);
      } catch {
        // Already gone.
      }
      this.spare = undefined;
    }
  }
}
