import { do_not_optimize, group } from 'mitata';
import type { OutcomeInput } from '../../core/accounting/account.ts';
import type { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { usageRow } from '../../core/accounting/usage-row.ts';
import { costOf } from '../../core/catalog/pricing.ts';
import type { RequestContext, RequestOutcome, UsageRecord } from '../../core/spec/plugin.ts';
import type { Usage } from '../../core/spec/vocabulary.ts';
import { benchRequestContexts } from './fixtures/request-context.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark, benchmarkPrepared } from './registry.ts';

const USAGE: Usage = { inputTokens: 212, outputTokens: 96, totalTokens: 308, cachedInputTokens: 64, cacheWriteInputTokens: 0, reasoningTokens: 0 };

/** The bench account's gpt-4o request, as served by one of its OpenAI keys. */
function servedContexts(world: BenchWorld): () => RequestContext {
  const contexts = benchRequestContexts(world, 'gpt-4o');
  return () => {
    const context = contexts();
    context.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_bench_openai_2', owner: 'account' };
    return context;
  };
}

/**
 * A timed batch never yields to the event loop, so the queue's own flush (started at the batch
 * size) cannot finish inside it; draining outside the timed region keeps memory bounded.
 */
function afterDraining<Value>(queue: UsageQueue, batchSize: number, value: Value): Value | Promise<Value> {
  return queue.pending >= batchSize ? queue.flush().then(() => value) : value;
}

/** The account stage after a response: price it, build its row, queue the row. */
export function registerUsageBenches(world: BenchWorld): void {
  const newContext = servedContexts(world);
  const context = newContext();
  const models = ['gpt-4o', 'gpt-4o'] as const;
  const input: OutcomeInput = { status: 200, usage: USAGE, finishReason: { unified: 'stop', raw: 'stop' }, error: undefined, streamed: false };
  const outcome: RequestOutcome = { ...input, latencyMs: 812.3456, costUsd: costOf(world.catalog, 'openai', models, USAGE) };
  if (outcome.costUsd === undefined) throw new Error('the catalog does not price openai/gpt-4o');
  const row: UsageRecord = usageRow(context, outcome);
  const queue = world.usage;
  const batchSize = world.config.usageBatchSize;

  group('usage', () => {
    benchmark('usage: costOf openai/gpt-4o', () => do_not_optimize(costOf(world.catalog, 'openai', models, USAGE)));
    benchmark('usage: usageRow', () => do_not_optimize(usageRow(context, outcome)));
    benchmarkPrepared(
      `usage: UsageQueue.enqueue (no-op writer, batch ${batchSize})`,
      () => afterDraining(queue, batchSize, row),
      (queued: UsageRecord) => queue.enqueue(queued),
    );
    // The Accountant books a context once, and mitata prepares a whole batch before timing it, so
    // each call gets a context of its own; creating it stays outside the timed region.
    benchmarkPrepared(
      'usage: Accountant.account (costOf + usageRow + enqueue)',
      () => afterDraining(queue, batchSize, newContext()),
      (fresh: RequestContext) => do_not_optimize(world.accountant.account(fresh, input)),
    );
  });
}
