// The crash journal's price on the request path (issue 8: at most 5 µs a request): the synchronous
// append of one journal line (core/accounting/usage-journal.ts), alone, through UsageQueue.enqueue,
// and as part of the whole account stage. Under load the queue writes the rows of a whole event-loop
// turn in one write; in a measured loop a turn may hold up to a batch of rows, so the enqueue figures
// can be below what one request pays, and the single-line append is the upper bound. The files go to
// a temporary folder that is emptied as the bench runs (a flush deletes written segments) and removed
// at exit.
//
// The in-flight marks (core/accounting/in-flight.ts) are measured as a busy turn books them: 27 requests
// start their upstream call (Accountant.opened, the prompt's byte bound weighed, no budget to reuse it
// from) and the 27 the turn before started are booked, then the turn ends (a setImmediate: the group
// write). The same turn without the marks is the baseline; the difference over 27 is what a request pays.

import { do_not_optimize, group } from 'mitata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Accountant, type OutcomeInput } from '../../core/accounting/account.ts';
import { UsageJournal, type JournalFile } from '../../core/accounting/usage-journal.ts';
import { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { usageRow } from '../../core/accounting/usage-row.ts';
import { costOf } from '../../core/catalog/pricing.ts';
import type { HookTable } from '../../core/registry.ts';
import type { RequestContext, RequestOutcome, RouteCandidate, UsageRecord } from '../../core/spec/plugin.ts';
import type { Usage } from '../../core/spec/vocabulary.ts';
import { benchRequestContexts } from './fixtures/request-context.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark, benchmarkPrepared } from './registry.ts';

const USAGE: Usage = { inputTokens: 212, outputTokens: 96, totalTokens: 308, cachedInputTokens: 64, cacheWriteInputTokens: 0, reasoningTokens: 0 };
/** Lines per file before the raw-append bench starts a new one, so the folder stays small. */
const LINES_PER_FILE = 20_000;

const NO_HOOKS: HookTable = { auth: [], keyResolve: [], route: [], call: [], account: [] };
/** Requests booked in one event-loop turn at 64 concurrent requests (docs/security.md, "The books"). */
const REQUESTS_PER_TURN = 27;
const CANDIDATE = { provider: 'openai', model: 'gpt-4o', key: { id: 'pk_bench_openai_2', owner: 'account' } } as unknown as RouteCandidate;
const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function afterDraining<Value>(queue: UsageQueue, batchSize: number, value: Value): Value | Promise<Value> {
  return queue.pending >= batchSize ? queue.flush().then(() => value) : value;
}

export function registerUsageJournalBenches(world: BenchWorld): void {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-bench-journal-'));
  process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
  const journal = UsageJournal.open(join(directory, 'raw'), world.logger);
  const contexts = benchRequestContexts(world, 'gpt-4o');
  const newContext = (): RequestContext => {
    const context = contexts();
    context.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_bench_openai_2', owner: 'account' };
    return context;
  };
  const input: OutcomeInput = { status: 200, usage: USAGE, finishReason: { unified: 'stop', raw: 'stop' }, error: undefined, streamed: false };
  const outcome: RequestOutcome = { ...input, latencyMs: 812.3456, costUsd: costOf(world.catalog, 'openai', ['gpt-4o'], USAGE) };
  const row: UsageRecord = usageRow(newContext(), outcome);

  let file: JournalFile = journal.newFile();
  let lines = 0;
  const rotate = (): UsageRecord => {
    if (++lines >= LINES_PER_FILE) {
      journal.remove(file);
      file = journal.newFile();
      lines = 0;
    }
    return row;
  };

  const batchSize = world.config.usageBatchSize;
  const queue = new UsageQueue({ insertUsage: async () => undefined }, world.logger, {
    flushIntervalMs: 3_600_000,
    batchSize,
    journal: UsageJournal.open(join(directory, 'queue'), world.logger),
  });
  const accountantQueue = new UsageQueue({ insertUsage: async () => undefined }, world.logger, {
    flushIntervalMs: 3_600_000,
    batchSize,
    journal: UsageJournal.open(join(directory, 'account'), world.logger),
  });
  const accountant = new Accountant({ catalog: world.catalog, usage: accountantQueue, logger: world.logger, hooks: NO_HOOKS });

  /** One busy turn: REQUESTS_PER_TURN upstream calls start (marked or not), the previous turn's are booked, the turn ends. */
  const busyTurn = (name: string, marked: boolean) => {
    const usage = new UsageQueue({ insertUsage: async () => undefined }, world.logger, {
      flushIntervalMs: 3_600_000,
      batchSize,
      journal: UsageJournal.open(join(directory, name), world.logger),
    });
    const booking = new Accountant({ catalog: world.catalog, usage, logger: world.logger, hooks: NO_HOOKS });
    let started: RequestContext[] = [];
    const turn = async (): Promise<void> => {
      const starting: RequestContext[] = [];
      for (let index = 0; index < REQUESTS_PER_TURN; index++) {
        const context = newContext();
        if (marked) booking.opened(context, CANDIDATE);
        starting.push(context);
      }
      for (const context of started) booking.account(context, input);
      started = starting;
      await turnEnd();
    };
    return { usage, turn };
  };
  const plainTurn = busyTurn('turn-plain', false);
  const markedTurn = busyTurn('turn-marked', true);

  group('usage journal', () => {
    benchmark('usage: JSON.stringify of a usage row', () => do_not_optimize(JSON.stringify(row)));
    benchmarkPrepared('usage: journal append (one JSON line, writeSync)', rotate, (queued: UsageRecord) => journal.append(file, [queued]), 'journal');
    benchmarkPrepared(
      `usage: UsageQueue.enqueue with journal (no-op writer, batch ${batchSize})`,
      () => afterDraining(queue, batchSize, row),
      (queued: UsageRecord) => queue.enqueue(queued),
      'journal',
    );
    benchmarkPrepared(
      'usage: Accountant.account with journal (costOf + usageRow + journal + enqueue)',
      () => afterDraining(accountantQueue, batchSize, newContext()),
      (fresh: RequestContext) => do_not_optimize(accountant.account(fresh, input)),
    );
    benchmarkPrepared(
      `usage: a busy turn of ${REQUESTS_PER_TURN} requests booked, with journal, no in-flight marks`,
      () => afterDraining(plainTurn.usage, batchSize, undefined),
      () => plainTurn.turn(),
    );
    benchmarkPrepared(
      `usage: a busy turn of ${REQUESTS_PER_TURN} requests booked, with journal and in-flight marks`,
      () => afterDraining(markedTurn.usage, batchSize, undefined),
      () => markedTurn.turn(),
    );
  });
}
