// The account stage: price the call, run the account hooks, queue its usage row, log the outcome.
// The lifecycle runner calls it exactly once per authenticated request, on every path.

import { releaseClientKey } from '../credentials/client-keys.ts';
import { costOf, DEFAULT_SEARCH_CONTEXT_SIZE } from '../catalog/pricing.ts';
import type { ModelCatalog } from '../catalog/catalog.ts';
import { isSnapshotOf } from '../catalog/snapshots.ts';
import type { Logger } from '../logger.ts';
import type { HookTable } from '../registry.ts';
import type { RequestContext, RequestOutcome } from '../spec/lifecycle.ts';
import type { Usage } from '../spec/vocabulary.ts';
import { capUsage } from './usage-limits.ts';
import { usageRow } from './usage-row.ts';
import type { UsageQueue } from './usage-queue.ts';

export type OutcomeInput = Omit<RequestOutcome, 'costUsd' | 'latencyMs'>;

/**
 * A request that asked for web search (`web_search_options`, OpenAI's field) searched at the size it
 * named, else the default: what a per-request search fee is priced at when the usage does not say.
 */
function withSearchSize(context: RequestContext, usage: Usage): Usage {
  if (usage.searchContextSize !== undefined) return usage;
  const options = context.request.web_search_options;
  if (options === null || typeof options !== 'object') return usage;
  const size = (options as Record<string, unknown>).search_context_size;
  return { ...usage, searchContextSize: typeof size === 'string' ? size : DEFAULT_SEARCH_CONTEXT_SIZE };
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
  return reported.length > MAX_MODEL_NAME ? { ...input, servedModel: reported.slice(0, MAX_MODEL_NAME) } : input;
}

export interface AccountantDependencies {
  catalog: ModelCatalog;
  usage: UsageQueue;
  logger: Logger;
  hooks: HookTable;
}

export class Accountant {
  constructor(private readonly dependencies: AccountantDependencies) {}

  /**
   * Books the request once; a second call returns the first outcome and books nothing. The row is
   * appended to the usage journal at once when it is the first of this event-loop turn, else with the
   * turn's other rows at its end (UsageQueue.enqueue); the answer's last bytes wait for that
   * (`journaled`), so a crash after a client has its whole answer loses no row.
   */
  account(context: RequestContext, input: OutcomeInput): RequestOutcome {
    if (context.outcome !== undefined) return context.outcome;
    const checked = withServedModel(context, input.usage === undefined ? input : this.withSaneUsage(context, input));
    const outcome: RequestOutcome = { ...checked, costUsd: this.costOf(context, checked), latencyMs: performance.now() - context.startedAt };
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
    this.dependencies.usage.enqueue(usageRow(context, outcome));
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

  /** Absurd counts (1e15, negative, NaN) are capped and the row flagged, with a warning: see usage-limits.ts. */
  private withSaneUsage(context: RequestContext, input: OutcomeInput): OutcomeInput {
    const { usage, capped } = capUsage(input.usage as NonNullable<OutcomeInput['usage']>);
    if (capped === undefined) return input;
    this.dependencies.logger.warn(
      {
        requestId: context.requestId,
        accountId: context.principal.accountId,
        provider: context.served?.provider,
        model: context.served?.model,
        reported: capped,
      },
      'the provider reported absurd usage; capped and flagged as estimated',
    );
    return { ...input, usage, usageEstimated: true };
  }

  /**
   * The provider's own reported cost wins (it knows fees a token price cannot); else list price;
   * undefined (booked unpriced) only when something was used of a model no price is known for. A
   * request that used nothing (refused, failed before an answer) cost nothing: 0. The price is the
   * first the table has of: the model the provider reported serving (a dated name), the routed model
   * (an alias the table may list where it lacks the dated name), the first candidate's.
   */
  private costOf(context: RequestContext, input: OutcomeInput): number | undefined {
    const served = context.served;
    const usage = input.usage;
    if (served === undefined || usage === undefined) return 0;
    if (usage.providerCostUsd !== undefined) return usage.providerCostUsd;
    const routed = [served.model, context.candidates[0]?.model ?? served.model];
    // Only a dated snapshot of the routed model is priced by its own name: a budget reserved for the
    // dearest of those (core/catalog/snapshots.ts), so the booked cost stays within the reservation.
    const reported = input.servedModel;
    const names = reported === undefined || reported === served.model || !isSnapshotOf(reported, served.model) ? routed : [reported, ...routed];
    return costOf(this.dependencies.catalog, served.provider, names, withSearchSize(context, usage));
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
