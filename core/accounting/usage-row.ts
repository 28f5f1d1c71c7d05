// What a finished request cost and the usage row it leaves behind.

import type { ModelCatalog } from '../catalog/catalog.ts';
import { finishReasonFromOpenAI, usageFromOpenAI } from '../wire/openai-shape.ts';
import type { RequestContext, RequestOutcome } from '../spec/plugin.ts';
import type { UsageRow } from '../../plugins/store-sqlite/repository.ts';
import type { FinishReason, StreamPart, Usage } from '../spec/vocabulary.ts';

/**
 * List price of a call in USD: uncached input, cache reads and cache writes at their own rates,
 * output at the output rate. Undefined when the catalog does not price the model.
 */
export function costOf(catalog: ModelCatalog, provider: string, models: readonly string[], usage: Usage): number | undefined {
  let info;
  for (const model of models) {
    info = catalog.get(provider, model);
    if (info !== undefined) break;
  }
  if (info === undefined) return undefined;
  const uncachedInput = Math.max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens);
  const cost =
    uncachedInput * info.inputCostPerToken +
    usage.cachedInputTokens * (info.cacheReadCostPerToken ?? info.inputCostPerToken) +
    usage.cacheWriteInputTokens * (info.cacheWriteCostPerToken ?? info.inputCostPerToken) +
    usage.outputTokens * info.outputCostPerToken;
  // Micro-dollar precision: enough for one token of the cheapest model, free of float noise.
  return Math.round(cost * 1e9) / 1e9;
}

/**
 * The cost a provider reported itself (Perplexity's `usage.cost.total_cost`, which includes the
 * per-request search fee a token price cannot know about), carried in `usage_details`.
 */
export function providerReportedCost(extraFields: Record<string, unknown> | undefined): number | undefined {
  const details = extraFields?.usage_details as { cost?: { total_cost?: unknown } } | undefined;
  const total = details?.cost?.total_cost;
  return typeof total === 'number' && Number.isFinite(total) && total >= 0 ? total : undefined;
}

/** Follows a stream as it passes, for accounting: no buffering of content. */
export class StreamObserver {
  usage: Usage | undefined;
  finishReason: FinishReason | undefined;
  model: string | undefined;
  error: StreamPart | undefined;
  providerCostUsd: number | undefined;

  observe(part: StreamPart): void {
    switch (part.type) {
      case 'openai-chunk': {
        const chunk = part.chunk;
        if (this.model === undefined && chunk.model) this.model = chunk.model;
        if (chunk.usage) this.usage = usageFromOpenAI(chunk.usage);
        const finish = chunk.choices[0]?.finish_reason;
        if (finish) this.finishReason = finishReasonFromOpenAI(finish);
        return;
      }
      case 'start':
        if (part.model) this.model = part.model;
        return;
      case 'usage':
        this.usage = part.usage;
        return;
      case 'finish':
        this.finishReason = part.finishReason;
        return;
      case 'error':
        this.error = part;
        return;
      case 'extra-fields': {
        const reported = providerReportedCost(part.fields);
        if (reported !== undefined) this.providerCostUsd = reported;
        return;
      }
      default:
        return;
    }
  }
}

export function usageRow(context: RequestContext, outcome: RequestOutcome): UsageRow {
  const usage = outcome.usage;
  return {
    requestId: context.requestId,
    accountId: context.principal.accountId,
    gatewayKeyId: context.principal.keyId,
    teamId: context.principal.teamId ?? null,
    projectTag: context.projectTag ?? null,
    endpoint: context.endpoint,
    provider: context.served?.provider ?? null,
    model: context.served?.model ?? null,
    requestedModel: typeof context.request.model === 'string' ? context.request.model.slice(0, 200) : '',
    providerKeyId: context.served?.keyId ?? null,
    byok: context.served === undefined ? 0 : context.served.owner === 'account' ? 1 : 0,
    status: outcome.status,
    errorCode: outcome.error?.code ?? null,
    inputTokens: usage?.inputTokens ?? 0,
    outputTokens: usage?.outputTokens ?? 0,
    cachedInputTokens: usage?.cachedInputTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteInputTokens ?? 0,
    reasoningTokens: usage?.reasoningTokens ?? 0,
    costUsd: outcome.costUsd ?? 0,
    latencyMs: Math.round(outcome.latencyMs * 1000) / 1000,
    streamed: outcome.streamed ? 1 : 0,
    fallbackAttempts: context.attempts.length,
    createdAt: new Date().toISOString(),
  };
}
