import { do_not_optimize, group } from 'mitata';
import { costOf, usageRow } from '../../core/accounting/usage-row.ts';
import type { RequestOutcome } from '../../core/spec/plugin.ts';
import type { UsageRow } from '../../plugins/store-sqlite/repository.ts';
import type { Usage } from '../../core/spec/vocabulary.ts';
import { benchRequestContext } from './fixtures/request-context.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark, benchmarkPrepared } from './registry.ts';

const USAGE: Usage = { inputTokens: 212, outputTokens: 96, totalTokens: 308, cachedInputTokens: 64, cacheWriteInputTokens: 0, reasoningTokens: 0 };

/** The account stage after a response: price it, build its row, queue the row. */
export function registerUsageBenches(world: BenchWorld): void {
  const context = benchRequestContext(world, 'gpt-4o');
  context.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_bench_openai_2', owner: 'account' };
  const models = ['gpt-4o', 'gpt-4o'] as const;
  const outcome: RequestOutcome = { status: 200, usage: USAGE, finishReason: { unified: 'stop', raw: 'stop' }, error: undefined, latencyMs: 812.3456, streamed: false, costUsd: costOf(world.catalog, 'openai', models, USAGE) };
  if (outcome.costUsd === undefined) throw new Error('the catalog does not price openai/gpt-4o');
  const row: UsageRow = usageRow(context, outcome);
  const queue = world.usage;
  const batchSize = world.gateway.dependencies.config.usageBatchSize;

  group('usage', () => {
    benchmark('usage: costOf openai/gpt-4o', () => do_not_optimize(costOf(world.catalog, 'openai', models, USAGE)));
    benchmark('usage: usageRow', () => do_not_optimize(usageRow(context, outcome)));
    // A timed batch never yields to the event loop, so the queue's own flush (started at the batch
    // size) cannot finish inside it; draining outside the timed region keeps memory bounded.
    benchmarkPrepared(
      `usage: UsageQueue.enqueue (no-op writer, batch ${batchSize})`,
      () => (queue.pending >= batchSize ? queue.flush().then(() => row) : row),
      (queued: UsageRow) => queue.enqueue(queued),
    );
    benchmarkPrepared(
      'usage: Gateway.account (costOf + usageRow + enqueue)',
      () => (queue.pending >= batchSize ? queue.flush().then(() => outcome) : outcome),
      (finished: RequestOutcome) => do_not_optimize(world.gateway.account(context, finished)),
    );
  });
}
