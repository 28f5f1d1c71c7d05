// The log output (core/log-output.ts): a line stdout cannot take is dropped and counted, never a
// crash and never a blocked event loop; one warning says how many were lost once lines go out again;
// the buffer is bounded; the exit is bounded.

import { describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type AsynchronousWrite, LogOutput, type WriteCallback } from '../../core/log-output.ts';
import { createLogger, flushLogs } from '../../core/logger.ts';

function errno(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: write`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

/** A destination that answers each write on a later turn: written, refused with an error, or cut short. */
class FakeDestination {
  readonly text: string[] = [];
  attempts = 0;
  /** The error every write gets while set (ENOSPC: a full disk). */
  failWith: string | undefined;
  /** Bytes the next write takes before the disk is full; undefined: all of it. */
  roomForBytes: number | undefined;
  /** Writes that never answer (a stuck pipe). */
  stuck = false;

  readonly write: AsynchronousWrite = (_descriptor, data, callback: WriteCallback) => {
    this.attempts += 1;
    if (this.stuck) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    setImmediate(() => {
      if (this.failWith !== undefined) {
        callback(errno(this.failWith), 0);
        return;
      }
      const taken = this.roomForBytes === undefined ? bytes.length : Math.min(this.roomForBytes, bytes.length);
      if (this.roomForBytes !== undefined) {
        this.roomForBytes -= taken;
        if (this.roomForBytes === 0) this.failWith = 'ENOSPC';
      }
      this.text.push(bytes.subarray(0, taken).toString('utf8'));
      callback(null, taken);
    });
  };

  lines(): string[] {
    return this.text
      .join('')
      .split('\n')
      .filter((line) => line.length > 0);
  }
}

const turn = () => new Promise((resolveTurn) => setImmediate(resolveTurn));

async function settle(output: LogOutput): Promise<void> {
  await output.idle(1_000);
  await turn();
}

describe('a destination that fails', () => {
  test('ENOSPC: lines are dropped and counted, nothing throws; one warning leads the first lines written once it works again', async () => {
    const destination = new FakeDestination();
    const output = new LogOutput({ write: destination.write, now: () => 1_700_000_000_000 });
    const logger = createLogger('info', output);
    logger.info('before the disk filled');
    await settle(output);

    destination.failWith = 'ENOSPC';
    for (let index = 0; index < 25; index++) {
      logger.info({ index }, 'while the disk is full');
      if (index % 5 === 0) await turn();
    }
    await settle(output);
    expect(output.droppedLines).toBe(25);
    expect(destination.lines()).toHaveLength(1);

    destination.failWith = undefined;
    logger.info('space is back');
    logger.info('and again');
    await settle(output);
    const lines = destination.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.msg)).toEqual([
      'before the disk filled',
      '25 log lines could not be written and were dropped',
      'space is back',
      'and again',
    ]);
    expect(lines[1]).toMatchObject({ level: 'warn', service: 'keyway', droppedLines: 25, reason: 'ENOSPC' });
    // Once: later lines carry no second warning.
    logger.info('later');
    await settle(output);
    expect(destination.lines().filter((line) => line.includes('could not be written'))).toHaveLength(1);
    expect(output.droppedLines).toBe(25);
  });

  test('a write cut short by the full disk: the rest is dropped, and the warning starts on a line of its own', async () => {
    const destination = new FakeDestination();
    const output = new LogOutput({ write: destination.write });
    const logger = createLogger('info', output);
    destination.roomForBytes = 30;
    logger.info('a line longer than thirty bytes');
    await settle(output);
    expect(output.droppedLines).toBe(1);
    destination.failWith = undefined;
    destination.roomForBytes = undefined;
    logger.info('space is back');
    await settle(output);
    const [cut, warning, next] = destination.text.join('').split('\n');
    expect(cut).toHaveLength(30);
    expect(JSON.parse(warning as string)).toMatchObject({ droppedLines: 1, reason: 'ENOSPC' });
    expect(JSON.parse(next as string)).toMatchObject({ msg: 'space is back' });
  });

  test('EAGAIN (a full non-blocking pipe) is not a loss: the same bytes are written again from a timer', async () => {
    const destination = new FakeDestination();
    const output = new LogOutput({ write: destination.write, retryDelayMs: 5 });
    destination.failWith = 'EAGAIN';
    output.write('{"msg":"one"}\n');
    output.write('{"msg":"two"}\n');
    await Bun.sleep(30);
    expect(destination.attempts).toBeGreaterThan(2);
    destination.failWith = undefined;
    await settle(output);
    expect(destination.lines()).toEqual(['{"msg":"one"}', '{"msg":"two"}']);
    expect(output.droppedLines).toBe(0);
  });

  test('a stuck destination: memory holds at most maxBufferedBytes, the rest is dropped, and idle() gives up after its timeout', async () => {
    const destination = new FakeDestination();
    destination.stuck = true;
    const output = new LogOutput({ write: destination.write, maxBufferedBytes: 10_000 });
    const line = `${JSON.stringify({ msg: 'x'.repeat(90) })}\n`;
    for (let index = 0; index < 1_000; index++) output.write(line);
    expect(output.bufferedBytes).toBeLessThanOrEqual(10_000);
    expect(output.droppedLines).toBe(1_000 - Math.floor(10_000 / Buffer.byteLength(line)));
    // One write under way, and no other attempt while it is.
    expect(destination.attempts).toBe(1);
    const started = performance.now();
    await output.idle(50);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  test('flushLogs is bounded by its timeout when stdout takes nothing', async () => {
    const destination = new FakeDestination();
    destination.stuck = true;
    const logger = createLogger('info', new LogOutput({ write: destination.write }));
    logger.info('never written');
    const started = performance.now();
    await flushLogs(logger, 50);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  test('the exit hook makes one synchronous attempt; an error drops the rest without throwing', () => {
    const destination = new FakeDestination();
    destination.stuck = true;
    let syncCalls = 0;
    const output = new LogOutput({
      write: destination.write,
      writeSync: () => {
        syncCalls += 1;
        throw errno('ENOSPC');
      },
    });
    output.write('{"msg":"in flight"}\n');
    output.write('{"msg":"waiting"}\n');
    output.write('{"msg":"waiting too"}\n');
    expect(() => output.writeOutAtExit()).not.toThrow();
    expect(syncCalls).toBe(1);
    expect(output.droppedLines).toBe(2);
  });
});

const DEV_FULL = '/dev/full';

describe.skipIf(!existsSync(DEV_FULL))('a process whose stdout is /dev/full (every write fails with ENOSPC)', () => {
  test('keeps running its event loop, counts the dropped lines, and exits on its own with 0', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'keyway-log-full-'));
    const script = join(directory, 'log-to-full.ts');
    const logger = resolve(import.meta.dir, '../../core/logger.ts');
    writeFileSync(
      script,
      `import { createLogger, flushLogs, logLinesDropped } from ${JSON.stringify(logger)};
const logger = createLogger('info');
let ticks = 0;
const heartbeat = setInterval(() => { ticks += 1; }, 5);
for (let round = 0; round < 20; round++) {
  for (let index = 0; index < 10; index++) logger.info({ round, index }, 'a line the disk cannot take');
  await new Promise((resolveRound) => setTimeout(resolveRound, 10));
}
clearInterval(heartbeat);
await flushLogs(logger);
process.stderr.write(JSON.stringify({ ticks, dropped: logLinesDropped() }) + '\\n');
process.exit(0);
`,
    );
    const stdout = openSync(DEV_FULL, 'w');
    const child = Bun.spawn([process.execPath, script], { stdin: 'ignore', stdout, stderr: 'pipe' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    try {
      const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
      expect({ code, stderr: stderr.includes('ENOSPC') ? stderr : '' }).toEqual({ code: 0, stderr: '' });
      const report = JSON.parse(stderr.trim()) as { ticks: number; dropped: number };
      expect(report.dropped).toBe(200);
      expect(report.ticks).toBeGreaterThan(10);
    } finally {
      clearTimeout(timer);
      rmSync(directory, { recursive: true, force: true });
    }
  }, 30_000);
});
