// Where the log lines go: pino's JSON lines to stdout, written asynchronously, and never allowed to
// stop the gateway.
//
// pino's own destination (sonic-boom) was not safe there. On a full disk its asynchronous write
// failed with ENOSPC, which it emitted as an 'error' no one handled, so the process died. On the way
// out, pino's exit hook called `flushSync`, which retries a failed write forever and sleeps 100 ms
// between tries (Atomics.wait). The process hung in its exit, unable to answer, until space came
// back, and then died with the usage rows it still held in memory. So the rules here are:
// - A line that cannot be written (ENOSPC, EIO, EPIPE, any error but EAGAIN) is dropped and counted.
//   The first line written after that is preceded by one warning that says how many were lost.
// - Lines wait in memory up to `maxBufferedBytes`; past that they are dropped (and counted) instead of
//   growing the heap while the output is stuck.
// - Nothing here ever blocks or sleeps. EAGAIN (a non-blocking pipe that is full) is retried from a
//   timer. The one synchronous write is the exit hook's single attempt to write out what is buffered.
//
// The normal case costs what sonic-boom cost: per line a byte count, a string append and, when no write
// is under way, one asynchronous write. Lines that arrive during a write go out together in the next.

import { write as writeToDescriptor, writeSync as writeToDescriptorSync } from 'node:fs';

export type WriteCallback = (error: NodeJS.ErrnoException | null, written: number) => void;

/** `fs.write` with a string or bytes: injectable so a test can make the destination fail. */
export type AsynchronousWrite = (descriptor: number, data: string | Uint8Array, callback: WriteCallback) => void;

export type SynchronousWrite = (descriptor: number, data: Uint8Array) => number;

export interface LogOutputOptions {
  /** The file descriptor; 1 (stdout) unless a test says otherwise. */
  descriptor?: number;
  /** Bytes held in memory, written or waiting, before new lines are dropped. */
  maxBufferedBytes?: number;
  /** How long to wait before writing again after EAGAIN. */
  retryDelayMs?: number;
  write?: AsynchronousWrite;
  writeSync?: SynchronousWrite;
  now?: () => number;
}

/** 4 MiB: thousands of lines, seconds of a busy gateway's log; little memory next to the rest. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const DEFAULT_RETRY_DELAY_MS = 100;

const NEWLINE = 0x0a;

const defaultWrite: AsynchronousWrite = (descriptor, data, callback) => {
  if (typeof data === 'string') writeToDescriptor(descriptor, data, null, 'utf8', callback);
  else writeToDescriptor(descriptor, data, 0, data.length, null, callback);
};

const defaultWriteSync: SynchronousWrite = (descriptor, data) => writeToDescriptorSync(descriptor, data);

/** Errors that mean "not now" rather than "never": the same bytes are written again later. */
function isTransient(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK' || error.code === 'EBUSY' || error.code === 'EINTR';
}

function countLines(data: Uint8Array): number {
  let lines = 0;
  for (let index = data.indexOf(NEWLINE); index !== -1; index = data.indexOf(NEWLINE, index + 1)) lines += 1;
  return lines;
}

/** A chunk handed to the kernel: its bytes, the log lines in it, and the dropped lines its notice reports. */
interface Chunk {
  data: string | Uint8Array;
  bytes: number;
  lines: number;
  /** Bytes of the notice at its start; 0 when it carries none. */
  noticeBytes: number;
  reported: number;
}

/** A pino destination (`write(line)`) that drops what it cannot write, and says so once it can. */
export class LogOutput {
  private readonly descriptor: number;
  private readonly maxBufferedBytes: number;
  private readonly retryDelayMs: number;
  private readonly writeAsynchronously: AsynchronousWrite;
  private readonly writeSynchronously: SynchronousWrite;
  private readonly now: () => number;
  private pending = '';
  private pendingBytes = 0;
  private pendingLines = 0;
  private inFlight: Chunk | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private dropped = 0;
  /** Dropped lines no notice has reported yet. */
  private unreported = 0;
  private lastFailure = '';
  /** A chunk was dropped after part of it was written: the output ends in the middle of a line. */
  private cutLine = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: LogOutputOptions = {}) {
    this.descriptor = options.descriptor ?? 1;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    this.writeAsynchronously = options.write ?? defaultWrite;
    this.writeSynchronously = options.writeSync ?? defaultWriteSync;
    this.now = options.now ?? Date.now;
  }

  /** Lines dropped since the start: they could not be written, or the buffer was full. */
  get droppedLines(): number {
    return this.dropped;
  }

  /** Bytes in memory: waiting, or in the write under way. */
  get bufferedBytes(): number {
    return this.pendingBytes + (this.inFlight?.bytes ?? 0);
  }

  /** pino's entry point: one JSON line, with its newline. Never throws, never waits. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes + bytes + (this.inFlight?.bytes ?? 0) > this.maxBufferedBytes) {
      this.drop(1, 'the log buffer is full');
      return true;
    }
    this.pending += line;
    this.pendingBytes += bytes;
    this.pendingLines += 1;
    if (this.inFlight === undefined) this.writeNext();
    return true;
  }

  /** pino's `logger.flush(callback)`: called once everything buffered is written or dropped. */
  flush(callback?: (error?: Error) => void): void {
    void this.idle().then(() => callback?.());
  }

  /**
   * Resolves once everything buffered is written or dropped, or after `timeoutMs` (a stdout that
   * never takes the bytes must not hold the exit).
   */
  idle(timeoutMs?: number): Promise<void> {
    if (this.inFlight === undefined && this.pendingLines === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.idleWaiters.push(done);
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
    });
  }

  /**
   * The exit hook: one attempt to write what waits in memory, synchronously (there is no event loop
   * left). A write under way in its thread is left to finish; an error drops the rest. No retry, no sleep.
   */
  writeOutAtExit(): void {
    const parts: Uint8Array[] = [];
    let lines = this.pendingLines;
    // A chunk waiting for its EAGAIN retry is not being written: it goes first.
    if (this.inFlight !== undefined && this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      parts.push(typeof this.inFlight.data === 'string' ? Buffer.from(this.inFlight.data) : this.inFlight.data);
      lines += this.inFlight.lines;
    }
    if (this.pendingLines > 0) parts.push(Buffer.from(this.pending));
    this.pending = '';
    this.pendingBytes = 0;
    this.pendingLines = 0;
    if (parts.length === 0) return;
    let data: Uint8Array = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    try {
      while (data.length > 0) {
        const written = this.writeSynchronously(this.descriptor, data);
        if (written <= 0) break;
        data = data.subarray(written);
      }
    } catch {
      // Full disk, closed pipe, or a pipe that would block: what is left is lost with the process.
    }
    if (data.length > 0) this.dropped += Math.min(lines, countLines(data));
  }

  private drop(lines: number, reason: string): void {
    this.dropped += lines;
    this.unreported += lines;
    this.lastFailure = reason;
  }

  /** Hands what waits to the kernel, led by the notice of lines dropped before, if any. */
  private writeNext(): void {
    if (this.pendingLines === 0) {
      this.settleIdleWaiters();
      return;
    }
    const notice = this.unreported > 0 ? this.notice() : '';
    const noticeBytes = Buffer.byteLength(notice);
    const data = notice === '' ? this.pending : notice + this.pending;
    this.inFlight = { data, bytes: this.pendingBytes + noticeBytes, lines: this.pendingLines, noticeBytes, reported: this.unreported };
    this.pending = '';
    this.pendingBytes = 0;
    this.pendingLines = 0;
    this.writeAsynchronously(this.descriptor, data, this.written);
  }

  /** One warning line in pino's shape, after a newline if the output was left in the middle of a line. */
  private notice(): string {
    const line = JSON.stringify({
      level: 'warn',
      time: this.now(),
      service: 'keyway',
      droppedLines: this.unreported,
      reason: this.lastFailure,
      msg: `${this.unreported} log lines could not be written and were dropped`,
    });
    return `${this.cutLine ? '\n' : ''}${line}\n`;
  }

  private readonly written = (error: NodeJS.ErrnoException | null, count: number): void => {
    const chunk = this.inFlight;
    if (chunk === undefined) return;
    if (error !== null && error !== undefined) {
      this.failed(chunk, error);
      return;
    }
    if (count <= 0 && chunk.bytes > 0) {
      // Nothing taken and no error: trying again at once would spin.
      this.failed(chunk, Object.assign(new Error('the output took no bytes'), { code: 'EZEROWRITE' }));
      return;
    }
    if (count >= chunk.noticeBytes && chunk.noticeBytes > 0) {
      this.unreported -= chunk.reported;
      chunk.noticeBytes = 0;
      chunk.reported = 0;
      this.cutLine = false;
    }
    if (count < chunk.bytes) {
      // A short write (a disk with room for part of it): the rest goes next, or is dropped if it fails.
      this.writeRest(chunk, count);
      return;
    }
    this.inFlight = undefined;
    this.writeNext();
  };

  private writeRest(chunk: Chunk, count: number): void {
    const all = typeof chunk.data === 'string' ? Buffer.from(chunk.data) : chunk.data;
    const rest = all.subarray(count);
    chunk.noticeBytes = Math.max(0, chunk.noticeBytes - count);
    chunk.data = rest;
    chunk.bytes = rest.length;
    chunk.lines = Math.min(chunk.lines, countLines(rest));
    this.cutLine = all[count - 1] !== NEWLINE;
    this.writeAsynchronously(this.descriptor, rest, this.written);
  }

  private failed(chunk: Chunk, error: NodeJS.ErrnoException): void {
    if (isTransient(error)) {
      this.retryTimer = setTimeout(this.retry, this.retryDelayMs);
      // A stuck stdout must not keep a process alive that would otherwise end.
      this.retryTimer.unref?.();
      return;
    }
    this.inFlight = undefined;
    this.drop(chunk.lines, error.code ?? error.message);
    // Lines logged meanwhile are tried now: the next write tells whether the output works again.
    this.writeNext();
  }

  private readonly retry = (): void => {
    this.retryTimer = undefined;
    const chunk = this.inFlight;
    if (chunk !== undefined) this.writeAsynchronously(this.descriptor, chunk.data, this.written);
  };

  private settleIdleWaiters(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
