// The account stage: price the call, run the account hooks, queue its usage row, log the outcome.
// The lifecycle runner calls it exactly once per authenticated request, on every path.

import { releaseClientKey } from '../credentials/client-keys.ts';
import { costBreakdown, DEFAULT_SEARCH_CONTEXT_SIZE, priceOf } from '../catalog/pricing.ts';
import type { ModelCatalog, ModelInfo } from '../catalog/catalog.ts';
import { isSnapshotOf } from '../catalog/snapshots.ts';
import type { Logger } from '../logger.ts';
import type { HookTable } from '../registry.ts';
import type { RequestContext, RequestOutcome } from '../spec/lifecycle.ts';
import type { PricingService } from '../spec/services.ts';
import type { RouteCandidate } from '../spec/strategy.ts';
import type { ChatResult, Usage } from '../spec/vocabulary.ts';
import { promptTokenBound } from './prompt-bound.ts';
import type { StreamObserver } from './stream-observer.ts';
import { estimateAnswerTokens, estimatePromptTokens } from './token-estimate.ts';
import { capUsage, lacksInputCount, lacksOutputCount, outputBound, saneUsage, withinRequestedOutput, type UsageEstimate } from './usage-limits.ts';
import { usageRow } from './usage-row.ts';
import type { UsageQueue } from './usage-queue.ts';

export type OutcomeInput = Omit<RequestOutcome, 'costUsd' | 'latencyMs'>;

/**
 * What a served answer generated, for an output count the provider did not report: a stream's running
 * estimate of what it streamed (StreamObserver.streamedTokens), or the whole non-streamed answer,
 * weighed only then.
 */
export type GeneratedOutput = ChatResult | { readonly streamedTokens: number };

function generatedTokens(generated: GeneratedOutput | undefined): number {
  if (generated === undefined) return 0;
  return 'streamedTokens' in generated ? Math.ceil(generated.streamedTokens) : estimateAnswerTokens(generated);
}

/**
 * A count of 0 that a served answer cannot have says nothing of what it used, as an absent one does: a
 * chat prompt always has tokens, and an answer that generated text has output. An OpenAI-compatible
 * server that does not count (or a proxy) sends zeros; booked as sent, the answer was free and spent no
 * budget (QA18). Such a count is marked unreported, so it is estimated and the row flagged. Embeddings
 * are left alone (their input is the texts, and no output is generated). Allocation-free when no count is 0.
 */
function withZeroCountsUnreported(context: RequestContext, usage: Usage, generated: GeneratedOutput | undefined): Usage {
  if (usage.inputTokens !== 0 && usage.outputTokens !== 0) return usage;
  const zeroInput = usage.inputTokens === 0 && usage.unreported?.inputTokens === undefined && context.endpoint !== 'embeddings';
  const zeroOutput = usage.outputTokens === 0 && usage.unreported?.outputTokens === undefined && generatedTokens(generated) > 0;
  if (!zeroInput && !zeroOutput) return usage;
  return { ...usage, unreported: { ...usage.unreported, ...(zeroInput ? { inputTokens: '0' } : {}), ...(zeroOutput ? { outputTokens: '0' } : {}) } };
}

/**
 * How long booking a row waits for a provider's tokenizer to count a prompt the provider did not
 * report (its first count loads the tokenizer's tables): past it, the estimate is booked instead.
 */
export const PROMPT_COUNT_WAIT_MS = 2_000;

function withDeadline<T>(promise: Promise<T>, milliseconds: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), milliseconds);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A request that asked for web search (`web_search_options`, OpenAI's field) searched at the size it
 * named, else the default: what a per-request search fee is priced at when the usage does not say.
 */
function withSearchSize(context: RequestContext, usage: Usage, providerSearchSize: ProviderSearchSize | undefined): Usage {
  if (usage.searchContextSize !== undefined) return usage;
  // A provider that searches on every request (Perplexity) names its depth: an estimated usage (a cut
  // stream) carries none, and the search it ran before the first token is billed all the same.
  const own = context.served === undefined ? undefined : providerSearchSize?.(context.served.provider, context.request);
  if (own !== undefined) return { ...usage, searchContextSize: own };
  const options = context.request.web_search_options;
  if (options === null || typeof options !== 'object') return usage;
  const size = (options as Record<string, unknown>).search_context_size;
  return { ...usage, searchContextSize: typeof size === 'string' ? size : DEFAULT_SEARCH_CONTEXT_SIZE };
}

/**
 * A dated snapshot's price with what the table lists for the model it serves but not for the snapshot:
 * the search fee (OpenAI answers gpt-4o-search-preview as gpt-4o-search-preview-2025-03-11, listed
 * for tokens only) and the processing tiers' rates (gpt-4o as gpt-4o-2024-08-06, listed without its
 * priority rates). The routed model's entry says what a search or a tier costs, as it does for the
 * budget's reservation; the snapshot's entry alone dropped them (QA20).
 */
function withRoutedFees(price: ModelInfo, routed: ModelInfo | undefined): ModelInfo {
  if (routed === undefined) return price;
  const searchCostPerQuery = price.searchCostPerQuery ?? routed.searchCostPerQuery;
  let serviceTiers = price.serviceTiers;
  for (const [name, rates] of Object.entries(routed.serviceTiers ?? {})) serviceTiers = { ...serviceTiers, [name]: { ...rates, ...serviceTiers?.[name] } };
  if (searchCostPerQuery === price.searchCostPerQuery && serviceTiers === price.serviceTiers) return price;
  return { ...price, searchCostPerQuery, serviceTiers };
}

/** The longest served model name a row keeps (the requested name is cut at the same length). */
const MAX_MODEL_NAME = 200;

/**
 * The model the provider reported serving, when it named one and the request was served: what the row
 * books and the price is looked up by first. An empty or non-string name is dropped (the row then books
 * the routed model).
 */
function withServedModel(context: RequestContext, input: OutcomeInput): OutcomeInput {
  const reported = input.servedModel;
  if (reported === undefined) return input;
  if (context.served === undefined || typeof reported !== 'string' || reported === '') {
    const { servedModel: _dropped, ...rest } = input;
    return rest;
  }
  // Upstream text, kept on the row: never with the key the upstream was called with (key-echo.ts).
  const kept = context.served.redactKey?.(reported) ?? reported;
  if (kept === reported && reported.length <= MAX_MODEL_NAME) return input;
  return { ...input, servedModel: kept.slice(0, MAX_MODEL_NAME) };
}

/** The search context size a provider that searches on every request searches a request at (ProviderAdapter.searchContextSizeOf). */
export type ProviderSearchSize = (provider: string, request: Readonly<Record<string, unknown>> | undefined) => string | undefined;

export interface AccountantDependencies {
  catalog: ModelCatalog;
  /** For a provider that searches on every request, the depth a request searched at: prices an estimated usage's search fee. */
  searchContextSizeOf?: ProviderSearchSize;
  usage: UsageQueue;
  logger: Logger;
  hooks: HookTable;
  /**
   * Counts a prompt with the serving provider's own tokenizer (PricingService.countPromptTokens), for a
   * served answer whose provider reported no usable prompt count; without it, or where the provider
   * has no tokenizer, the prompt's estimate is booked.
   */
  countPromptTokens?: PricingService['countPromptTokens'];
  /** How long a booking waits for that count: PROMPT_COUNT_WAIT_MS unless a test shortens it. */
  promptCountWaitMs?: number;
  /**
   * A prompt's byte bound (PricingService.promptTokenBound, which remembers the last request's, so a
   * budgeted request's is not weighed twice): what a request in flight at a crash is booked for.
   */
  promptTokenBound?: (request: RequestContext['request']) => number;
  /**
   * The prompt as a budget or an approval counted it with the provider's tokenizer for this request
   * (PricingService.countedPromptTokens), if one did: the figure its reservation was made on, so what
   * an estimate books for the prompt never exceeds it.
   */
  countedPromptTokens?: PricingService['countedPromptTokens'];
}

export class Accountant {
  private readonly promptBound: (request: RequestContext['request']) => number;

  /**
   * What an in-flight mark books for the prompt: one function for every request, so opening a call
   * allocates nothing. The byte bound, unless a budget counted the prompt with the candidate's
   * tokenizer: then its reservation held that count, and the replay books it, not the bound (QA18: three
   * calls killed in flight were booked at 2,010 prompt tokens each, the provider billed 503, and the
   * team's booked spend was twice its cap).
   */
  private readonly markedPrompt = (context: RequestContext, candidate: RouteCandidate): number => {
    if (context.endpoint === 'count_tokens') return 0;
    const bound = this.promptBound(context.request);
    const counted = this.dependencies.countedPromptTokens?.(candidate.provider, candidate.model, context.request);
    return counted === undefined ? bound : Math.min(counted, bound);
  };

  constructor(private readonly dependencies: AccountantDependencies) {
    this.promptBound = dependencies.promptTokenBound ?? promptTokenBound;
  }

  /**
   * An attempt calls `candidate`'s upstream: the request is marked in flight in the usage journal at the
   * next tick, so a process that dies before it is booked leaves it to be booked at its estimate (the
   * prompt's byte bound, or the tokenizer's count a budget reserved on: markedPrompt; 0 for token counting, which is free). Nothing
   * waits for it, and a call that ends before the tick costs a map entry.
   */
  opened(context: RequestContext, candidate: RouteCandidate): void {
    const usage = this.dependencies.usage;
    if (!usage.marksInFlight || context.outcome !== undefined) return;
    usage.opened(context, candidate, this.markedPrompt);
  }

  /** The request's answer streams: what it delivers is marked every few seconds until it is booked. */
  streaming(context: RequestContext, observer: StreamObserver): void {
    this.dependencies.usage.streaming(context, observer);
  }

  /**
   * Books the request once; a second call returns the first outcome and books nothing. The row is
   * appended to the usage journal at once when it is the first of this event-loop turn, else with the
   * turn's other rows at its end (UsageQueue.enqueue); the answer's last bytes wait for that
   * (`journaled`), so a crash after a client has its whole answer loses no row. `generated` and
   * `promptTokens` serve a served answer whose provider reported no usable input or output count: what
   * it generated, and its prompt as the provider's tokenizer counted it (promptTokensOf, which the
   * caller awaits first when lacksInputCount says so).
   */
  account(context: RequestContext, input: OutcomeInput, generated?: GeneratedOutput, promptTokens?: number): RequestOutcome {
    if (context.outcome !== undefined) return context.outcome;
    const named = withServedModel(context, input);
    const reportedCost = named.usage?.providerCostUsd !== undefined;
    // Looked up once, for the output bound and the price; a provider-reported cost needs no price.
    const price = reportedCost ? undefined : this.priceInfo(context, named);
    const checked = named.usage === undefined ? named : this.withSaneUsage(context, named, price, generated, promptTokens);
    // A reported cost the check dropped (negative, not a number) leaves the list price to look up.
    const costUsd = this.costOf(context, checked, reportedCost && checked.usage?.providerCostUsd === undefined ? this.priceInfo(context, checked) : price);
    const outcome: RequestOutcome = { ...checked, costUsd, latencyMs: performance.now() - context.startedAt };
    context.outcome = outcome;
    // The hooks first: one may mark the row for an audit (context.usageAudit) before it is built.
    for (const hook of this.dependencies.hooks.account) {
      try {
        const result = hook.run(context, outcome);
        if (result instanceof Promise) result.catch((error: unknown) => this.logHookError(hook.plugin, error));
      } catch (error) {
        this.logHookError(hook.plugin, error);
      }
    }
    this.dependencies.usage.enqueue(usageRow(context, outcome), context);
    this.logOutcome(context, outcome);
    releaseClientKey(context);
    return outcome;
  }

  /**
   * Settles once the rows booked so far are in the usage journal; undefined when none waits (no
   * journal, or nothing booked in this turn). A complete answer is released only after it. Never rejects.
   */
  journaled(): Promise<void> | undefined {
    return this.dependencies.usage.journaled();
  }

  /**
   * The prompt of the request's served (or cut) call as a budget or an approval already counted it with
   * that provider's tokenizer, or undefined when none did. Nothing is counted here: an estimate of a
   * cut stream only takes it as its ceiling (estimatedUsage), so it never books more than was reserved.
   */
  countedPrompt(context: RequestContext): number | undefined {
    const served = context.served;
    if (served === undefined) return undefined;
    return this.dependencies.countedPromptTokens?.(served.provider, served.model, context.request);
  }

  /**
   * The prompt of a served request as its provider's tokenizer counts it (undefined without one, or past
   * PROMPT_COUNT_WAIT_MS): what a row whose provider reported no prompt count books. Never rejects.
   */
  async promptTokensOf(context: RequestContext): Promise<number | undefined> {
    const count = this.dependencies.countPromptTokens;
    const served = context.served;
    if (count === undefined || served === undefined) return undefined;
    try {
      return await withDeadline(count(served.provider, served.model, context.request), this.dependencies.promptCountWaitMs ?? PROMPT_COUNT_WAIT_MS);
    } catch {
      return undefined;
    }
  }

  /**
   * Usage as reported when it is sane and within the request's output (the usual case: nothing is
   * allocated); else repaired by usage-limits.ts (a missing count estimated, an absurd one capped, a
   * fraction rounded up), the row flagged when a count is not the provider's own, with a warning.
   */
  private withSaneUsage(
    context: RequestContext,
    input: OutcomeInput,
    price: ModelInfo | undefined,
    generated: GeneratedOutput | undefined,
    promptTokens: number | undefined,
  ): OutcomeInput {
    const usage = withZeroCountsUnreported(context, input.usage as Usage, generated);
    const request = context.request;
    const sane = saneUsage(usage);
    if (sane && withinRequestedOutput(usage.outputTokens, request)) return input;
    const bound = outputBound(request, price?.maxOutputTokens, usage.reasoningTokens);
    if (sane && (bound === undefined || usage.outputTokens <= bound)) return input;
    const estimate = lacksInputCount(usage) || lacksOutputCount(usage) ? this.estimateOf(context, usage, generated, promptTokens) : undefined;
    const { usage: fixed, capped, estimated } = capUsage(usage, { outputTokens: bound, estimate });
    if (fixed === usage) return input;
    if (capped === undefined && estimated === undefined) return { ...input, usage: fixed };
    // A cut stream's counts are already Keyway's estimate: bounding them says nothing of the provider.
    if (input.usageEstimated !== true) this.warnUnreliableUsage(context, { capped, estimated, bound });
    return { ...input, usage: fixed, usageEstimated: true };
  }

  /**
   * Keyway's estimate of a served answer's counts: the prompt as the provider's tokenizer counted it,
   * else token-estimate.ts; the output from what the answer generated, plus the reasoning the provider
   * reported (hidden reasoning is not in the text).
   */
  private estimateOf(context: RequestContext, usage: Usage, generated: GeneratedOutput | undefined, promptTokens: number | undefined): UsageEstimate {
    const reasoning = Number.isFinite(usage.reasoningTokens) && usage.reasoningTokens > 0 ? usage.reasoningTokens : 0;
    return {
      inputTokens: lacksInputCount(usage) ? (promptTokens ?? estimatePromptTokens(context.request)) : 0,
      outputTokens: lacksOutputCount(usage) ? generatedTokens(generated) + reasoning : 0,
    };
  }

  /** Names the request and what the provider sent (counts and their kinds, never text of the answer). */
  private warnUnreliableUsage(
    context: RequestContext,
    notes: { capped: Record<string, string> | undefined; estimated: Record<string, string> | undefined; bound: number | undefined },
  ): void {
    this.dependencies.logger.warn(
      {
        requestId: context.requestId,
        accountId: context.principal.accountId,
        provider: context.served?.provider,
        model: context.served?.model,
        reported: notes.capped,
        unreported: notes.estimated,
        outputBound: notes.bound,
      },
      notes.estimated === undefined
        ? 'the provider reported absurd usage; capped and flagged as estimated'
        : "the provider reported no usable token count; booked at Keyway's estimate and flagged as estimated",
    );
  }

  /**
   * The price the row is booked at: the first the table has of the model the provider reported
   * serving (a dated name), the routed model (an alias the table may list where it lacks the dated
   * name), the first candidate's. Undefined when nothing was served or used, or none is priced.
   */
  private priceInfo(context: RequestContext, input: OutcomeInput): ModelInfo | undefined {
    const served = context.served;
    if (served === undefined || input.usage === undefined) return undefined;
    const routed = [served.model, context.candidates[0]?.model ?? served.model];
    // Only a dated snapshot of the routed model is priced by its own name: a budget reserved for the
    // dearest of those (core/catalog/snapshots.ts), so the booked cost stays within the reservation.
    const reported = input.servedModel;
    const names = reported === undefined || reported === served.model || !isSnapshotOf(reported, served.model) ? routed : [reported, ...routed];
    const price = priceOf(this.dependencies.catalog, served.provider, names);
    // An alias the table does not price (Anthropic's claude-3-7-sonnet-latest, claude-sonnet-4-0) is
    // served by a model it does: that model's price, rather than an unpriced row. Only then, as no
    // budget can have reserved for an unpriced routed model (a budgeted team is refused it).
    if (price === undefined) return reported === undefined || names !== routed ? undefined : priceOf(this.dependencies.catalog, served.provider, [reported]);
    if (names === routed || price.model !== reported) return price;
    return withRoutedFees(price, priceOf(this.dependencies.catalog, served.provider, routed));
  }

  /**
   * The provider's own reported cost wins (it knows fees a token price cannot); else list price;
   * undefined (booked unpriced) only when something was used of a model no price is known for. A
   * request that used nothing (refused, failed before an answer) cost nothing: 0.
   */
  private costOf(context: RequestContext, input: OutcomeInput, price: ModelInfo | undefined): number | undefined {
    const usage = input.usage;
    if (context.served === undefined || usage === undefined) return 0;
    if (usage.providerCostUsd !== undefined) return usage.providerCostUsd;
    return price === undefined ? undefined : costBreakdown(price, withSearchSize(context, usage, this.dependencies.searchContextSizeOf)).total;
  }

  /** Never headers or bodies: ids, status, timings and the error code only. */
  private logOutcome(context: RequestContext, outcome: RequestOutcome): void {
    const { logger } = this.dependencies;
    const level = outcome.status >= 500 ? 'warn' : 'debug';
    if (!logger.isLevelEnabled(level)) return;
    logger[level](
      {
        requestId: context.requestId,
        accountId: context.principal.accountId,
        gatewayKeyId: context.principal.keyId,
        endpoint: context.endpoint,
        status: outcome.status,
        provider: context.served?.provider,
        model: context.served?.model,
        providerKeyId: context.served?.keyId,
        attempts: context.attempts,
        latencyMs: Math.round(outcome.latencyMs * 100) / 100,
        error: outcome.error === undefined ? undefined : { code: outcome.error.code, message: outcome.error.message },
      },
      'request finished',
    );
  }

  private logHookError(plugin: string, error: unknown): void {
    this.dependencies.logger.error({ plugin, error: error instanceof Error ? error.message : String(error) }, 'account hook failed');
  }
}
