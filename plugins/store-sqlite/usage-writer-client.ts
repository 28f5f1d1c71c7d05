// The gateway's side of the usage writer (usage-writer.ts): starts the worker on the first batch and
// hands it each batch. If the worker cannot start (a runtime without workers), batches are written on
// the calling thread instead, as before: never lost, only slower.

import type { Logger } from '../../core/logger.ts';
import type { JournalRange } from '../../core/spec/store.ts';
import type { UsageFoldTable } from '../../core/spec/usage-fold.ts';
import { choiceSetting } from '../../core/spec/settings.ts';
import { readJournalRange, usageValuesFromJournalText } from './usage-values.ts';
import type { FoldsMessage, InsertFileMessage, InsertMessage, InsertTextMessage, OpenMessage, WriterReply } from './usage-writer.ts';

/** The writer's module by its path from the repository root: scripts/build-binary.ts embeds it under this path. */
export const USAGE_WRITER_ENTRY_POINT = 'plugins/store-sqlite/usage-writer.ts';

/**
 * What the writer thread is started from. From source, that file in the checkout (this file sits two
 * folders below its root). In the single binary `import.meta.url` is no guide: bun fixes it at build
 * time to the build machine's path, where a target machine has no file (or another checkout's). There
 * the writer is the entry point embedded under its path from the build's `--root`, which a relative
 * specifier names (docs/binary.md).
 */
function writerModule(): string {
  return Bun.isStandaloneExecutable ? `./${USAGE_WRITER_ENTRY_POINT}` : new URL(`../../${USAGE_WRITER_ENTRY_POINT}`, import.meta.url).href;
}

const WRITER_MODULE = writerModule();

type InlineInsert = (
  sql: string,
  rows: ReadonlyArray<readonly unknown[]>,
  after: readonly string[],
  folds: readonly UsageFoldTable[],
  columns: readonly string[],
) => void;

export interface UsageWriterClient {
  /** `folds` (core/spec/usage-fold.ts) read the rows' values in `columns` order. */
  insert(
    sql: string,
    rows: ReadonlyArray<readonly unknown[]>,
    after: readonly string[],
    folds: readonly UsageFoldTable[],
    columns: readonly string[],
  ): Promise<void>;
  /** Usage rows as the journal's text (usage-values.ts): the writer thread decodes them. */
  insertJournalText(
    sql: string,
    text: string,
    count: number,
    after: readonly string[],
    folds: readonly UsageFoldTable[],
    columns: readonly string[],
  ): Promise<void>;
  /** Usage rows as a byte range of a usage journal file: the writer thread reads and decodes them. */
  insertJournalFile(
    sql: string,
    range: JournalRange,
    count: number,
    after: readonly string[],
    folds: readonly UsageFoldTable[],
    columns: readonly string[],
  ): Promise<void>;
  close(): void;
}

/** Test and bench switch: `KEYWAY_USAGE_WRITER=inline` keeps writes on the gateway's thread. */
export function usageWriterMode(env: Readonly<Record<string, string | undefined>>): 'worker' | 'inline' {
  return choiceSetting('KEYWAY_USAGE_WRITER', env.KEYWAY_USAGE_WRITER, ['worker', 'inline'], 'worker');
}

/** `KEYWAY_THREAD_SCHEDULING` (core/config.ts checks its value at start): the writer thread gives up wake-up preemption unless it is `default`. */
export function usageWriterBatchScheduled(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.KEYWAY_THREAD_SCHEDULING?.trim().toLowerCase() !== 'default';
}

export interface UsageWriterOptions {
  batchSchedule?: boolean;
  /** Told once the thread has opened the database, so an operator sees that it runs (the single binary's check). */
  logger?: Logger;
}

export function createUsageWriterClient(path: string, inline: InlineInsert, options: UsageWriterOptions = {}): UsageWriterClient {
  let worker: Worker | undefined;
  let ready: Promise<boolean> | undefined;
  let nextId = 0;
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  const fallBack = (reason: string): void => {
    // Once, on stderr: the store has no logger, and the operator should know the writes share the thread.
    process.stderr.write(
      `${JSON.stringify({ level: 40, time: Date.now(), msg: `usage writer thread unavailable (${reason}); usage is written on the gateway's thread` })}\n`,
    );
  };
  const start = (): Promise<boolean> => {
    ready ??= new Promise<boolean>((resolve) => {
      try {
        worker = new Worker(WRITER_MODULE);
      } catch (error) {
        fallBack(error instanceof Error ? error.message : String(error));
        resolve(false);
        return;
      }
      worker.onmessage = (event: MessageEvent<WriterReply>) => {
        const reply = event.data;
        if (reply.type === 'opened') {
          options.logger?.info({ thread: 'usage-writer' }, 'usage writer thread started');
          resolve(true);
        } else if (reply.type === 'failed-to-open') {
          worker?.terminate();
          worker = undefined;
          fallBack(reply.error);
          resolve(false);
        } else {
          const waiter = pending.get(reply.id);
          pending.delete(reply.id);
          if (reply.error === undefined) waiter?.resolve();
          else waiter?.reject(new Error(reply.error));
        }
      };
      worker.onerror = (event) => {
        const error = new Error(`the usage writer failed: ${event.message}`);
        for (const waiter of pending.values()) waiter.reject(error);
        pending.clear();
        worker = undefined;
        fallBack(event.message);
        resolve(false);
      };
      worker.postMessage({ type: 'open', path, batchSchedule: options.batchSchedule ?? true } satisfies OpenMessage);
    });
    return ready;
  };

  // The folds cross to the thread once (it compiles them once), not with every batch: sent again only
  // when the list changes. A batch without folds (a plugin's appendRows) says so and leaves them in place.
  let foldsSent: readonly UsageFoldTable[] = [];
  const send = (
    running: Worker,
    message: InsertMessage | InsertTextMessage | InsertFileMessage,
    folds: readonly UsageFoldTable[],
    columns: readonly string[],
  ): Promise<void> => {
    if (folds.length > 0 && folds !== foldsSent) {
      running.postMessage({ type: 'folds', tables: folds, columns } satisfies FoldsMessage);
      foldsSent = folds;
    }
    const done = new Promise<void>((resolve, reject) => pending.set(message.id, { resolve, reject }));
    running.postMessage(message);
    return done;
  };

  return {
    async insert(sql, rows, after, folds, columns) {
      if (!(await start()) || worker === undefined) {
        inline(sql, rows, after, folds, columns);
        return;
      }
      return send(worker, { type: 'insert', id: nextId++, sql, rows: JSON.stringify(rows), after, fold: folds.length > 0 }, folds, columns);
    },
    async insertJournalText(sql, text, count, after, folds, columns) {
      if (!(await start()) || worker === undefined) {
        inline(sql, usageValuesFromJournalText(text, count), after, folds, columns);
        return;
      }
      return send(worker, { type: 'insert-text', id: nextId++, sql, text, count, after, fold: folds.length > 0 }, folds, columns);
    },
    async insertJournalFile(sql, range, count, after, folds, columns) {
      if (!(await start()) || worker === undefined) {
        inline(sql, usageValuesFromJournalText(readJournalRange(range), count), after, folds, columns);
        return;
      }
      const { path, start: from, end } = range;
      return send(worker, { type: 'insert-file', id: nextId++, sql, path, start: from, end, count, after, fold: folds.length > 0 }, folds, columns);
    },
    close() {
      worker?.terminate();
      worker = undefined;
      for (const waiter of pending.values()) waiter.reject(new Error('the store closed before the usage batch was written'));
      pending.clear();
    },
  };
}
