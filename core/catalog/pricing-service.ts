// The pricing service policies read (services.pricing): each model's price as a worst-case view (the
// dearest input and output rates, per-request fees, long-context tiers), the prompt's token estimate
// (rate limits) and its bound (budgets and approvals), on every such request's path.

import { promptTokenBound } from '../accounting/prompt-bound.ts';
import { estimatePromptTokens } from '../accounting/token-estimate.ts';
import type { PricingService } from '../spec/plugin.ts';
import type { TextTokenCount } from '../spec/provider.ts';
import { isPriced, type ModelCatalog, type ModelInfo } from './catalog.ts';
import { snapshotFamily } from './snapshots.ts';

type PriceView = NonNullable<ReturnType<PricingService['price']>>;

const UNPRICED = Symbol('unpriced');

/** Where the pricing service finds a provider's tokenizer for a model: the loaded provider adapters. */
export type TokenizerSource = (provider: string) => ((model: string) => Promise<TextTokenCount | undefined>) | undefined;

/**
 * Prices for policies. Several policies judge one request (budgets, approvals, rate limits): the
 * prompt estimate is made once per request and each model's price view once per process.
 */
/** Whether a provider bills cache writes only for requests that mark them (ProviderAdapter.cacheWrites). */
export type CacheWritesSource = (provider: string) => 'marked' | 'automatic' | undefined;

export function createPricingService(
  catalog: ModelCatalog,
  tokenizerOf: TokenizerSource = () => undefined,
  onLoadFailure?: (provider: string, model: string, error: unknown) => void,
  cacheWritesOf: CacheWritesSource = () => undefined,
): PricingService {
  // A tokenizer that cannot count is said once per provider and model, not once per request.
  const failed = new Set<string>();
  const failure = (provider: string, model: string, error: unknown): void => {
    const key = `${provider}\n${model}`;
    if (failed.has(key) || failed.size >= 512) return;
    failed.add(key);
    onLoadFailure?.(provider, model, error);
  };
  // Each provider's tokenizer of a model is loaded once; one that fails to load leaves that model on the byte bound.
  const tokenizers = new Map<string, Promise<TextTokenCount | undefined>>();
  const tokenizerFor = (provider: string, model: string): Promise<TextTokenCount | undefined> => {
    const key = `${provider}\n${model}`;
    let loading = tokenizers.get(key);
    if (loading === undefined) {
      const load = tokenizerOf(provider);
      loading =
        load === undefined
          ? Promise.resolve(undefined)
          : load(model).catch((error: unknown) => {
              failure(provider, model, error);
              return undefined;
            });
      // Model names come from requests: past a few hundred, an unknown one is not remembered.
      if (tokenizers.size < 512) tokenizers.set(key, loading);
    }
    return loading;
  };
  // The prompts counted, by request: only requests a budget or an approval counted are entered (the
  // rare path), and the entry goes with the request, so an ordinary request's lookup finds nothing.
  const counted = new WeakMap<object, Map<string, number>>();
  let lastEstimated: object | undefined;
  let lastEstimate = 0;
  let lastBounded: object | undefined;
  let lastBound = 0;
  // By provider, then model: no key string built per call. An unpriced model is cached as UNPRICED,
  // so one `get` answers both cases.
  const views = new Map<string, Map<string, PriceView | typeof UNPRICED>>();
  let cached = 0;
  let viewsVersion = catalog.version;
  return {
    estimatePromptTokens(request) {
      // The policies of one request ask in turn, within one stage: remembering the last request is
      // enough, where a WeakMap entry per request cost more than the estimate it saved (JSC's weak
      // table grows with every request until a collection clears it).
      if (request !== lastEstimated) {
        lastEstimated = request;
        lastEstimate = estimatePromptTokens(request);
      }
      return lastEstimate;
    },
    promptTokenBound(request) {
      // A few native byte counts per request; remembered for the last request as the estimate is, so
      // the mark of a budgeted request's upstream call (Accountant.opened) reuses the budget's bound.
      if (request !== lastBounded) {
        lastBounded = request;
        lastBound = promptTokenBound(request);
      }
      return lastBound;
    },
    async countPromptTokens(provider, model, request) {
      const count = await tokenizerFor(provider, model);
      if (count === undefined) return undefined;
      // The texts the bound weighs, in the order it weighs them; counted together, then the bound again with their counts.
      const texts: string[] = [];
      promptTokenBound(request, (text) => texts.push(text));
      let counts: number[];
      try {
        counts = await count(texts);
      } catch (error) {
        failure(provider, model, error);
        return undefined;
      }
      let index = 0;
      // Never more than the bytes: a byte-level tokenizer cannot exceed them, and a faulty one must not raise the bound.
      const tokens = promptTokenBound(request, (text) => {
        const bytes = Buffer.byteLength(text, 'utf8');
        const count = counts[index++];
        return typeof count === 'number' && count >= 0 ? Math.min(count, bytes) : bytes;
      });
      let byModel = counted.get(request);
      if (byModel === undefined) {
        byModel = new Map();
        counted.set(request, byModel);
      }
      byModel.set(`${provider}\n${model}`, tokens);
      return tokens;
    },
    countedPromptTokens(provider, model, request) {
      return counted.get(request)?.get(`${provider}\n${model}`);
    },
    price(provider, model) {
      // A new price table (an override, a reloaded file) makes every cached view stale.
      if (catalog.version !== viewsVersion) {
        views.clear();
        cached = 0;
        viewsVersion = catalog.version;
      }
      let models = views.get(provider);
      if (models === undefined) {
        models = new Map();
        views.set(provider, models);
      }
      const known = models.get(model);
      if (known !== undefined) return known === UNPRICED ? undefined : known;
      // The dearest of the model and its dated snapshots: the provider picks the snapshot that serves it.
      // A snapshot's search fee is left out: it applies to web searches the request would ask for, and
      // the routed model's own entry says what those cost (the price data gives some snapshots a fee
      // their alias lacks, which would make every small budget refuse every call).
      const view = familyView(
        snapshotFamily(catalog, provider, model)
          .filter(isPriced)
          .map((info) => priceView(info, info === catalog.get(provider, model), cacheWritesOf(provider) === 'marked')),
      );
      // Model names come from requests: bounded, as a cache of them must be.
      if (++cached > 10_000) {
        views.clear();
        cached = 0;
      }
      let target = views.get(provider);
      if (target === undefined) {
        target = new Map();
        views.set(provider, target);
      }
      target.set(model, view ?? UNPRICED);
      return view;
    },
  };
}

/**
 * The dearest per-request search fee (one that varies with the search size, as Perplexity's does);
 * a per-search fee (the same at every size) depends on searches no request can bound, so it adds nothing.
 */
function perRequestSearchFee(fees: Readonly<Record<string, number>> | undefined): number {
  const values = Object.values(fees ?? {});
  return values.length > 0 && values.some((value) => value !== values[0]) ? Math.max(...values) : 0;
}

/** A fee the same at every search size is charged per search: the fee, else 0. */
function perSearchFee(fees: Readonly<Record<string, number>> | undefined): number {
  const values = Object.values(fees ?? {});
  return values.length > 0 && values.every((value) => value === values[0]) ? (values[0] as number) : 0;
}

/** Each processing tier's dearest input and output rates, a rate it does not name being the standard one. */
function serviceTierViews(info: ModelInfo): PriceView['serviceTiers'] {
  if (info.serviceTiers === undefined) return undefined;
  const views: Record<string, { worstInputPerToken: number; worstOutputPerToken: number }> = {};
  for (const [name, rates] of Object.entries(info.serviceTiers)) {
    const input = rates.inputCostPerToken ?? info.inputCostPerToken;
    views[name] = {
      worstInputPerToken: Math.max(input, rates.cacheWriteCostPerToken ?? info.cacheWriteCostPerToken ?? 0, info.cacheWrite1hCostPerToken ?? 0),
      worstOutputPerToken: Math.max(rates.outputCostPerToken ?? info.outputCostPerToken, info.reasoningCostPerToken ?? 0),
    };
  }
  return views;
}

function priceView(info: ModelInfo, withSearchFee: boolean, cacheWritesMarked: boolean): PriceView {
  return {
    inputPerToken: info.inputCostPerToken,
    outputPerToken: info.outputCostPerToken,
    maxOutputTokens: info.maxOutputTokens,
    maxInputTokens: info.maxInputTokens,
    worstInputPerToken: Math.max(info.inputCostPerToken, info.cacheWriteCostPerToken ?? 0, info.cacheWrite1hCostPerToken ?? 0),
    cacheWritesMarked,
    fiveMinuteWriteInputPerToken: Math.max(info.inputCostPerToken, info.cacheWriteCostPerToken ?? 0),
    worstOutputPerToken: Math.max(info.outputCostPerToken, info.reasoningCostPerToken ?? 0),
    perRequestUsd: (info.requestCostUsd ?? 0) + (withSearchFee ? perRequestSearchFee(info.searchCostPerQuery) : 0),
    perSearchUsd: withSearchFee ? perSearchFee(info.searchCostPerQuery) : 0,
    serviceTiers: serviceTierViews(info),
    tiers: info.tiers.map((tier) => ({
      aboveInputTokens: tier.aboveInputTokens,
      worstInputPerToken: Math.max(
        tier.inputCostPerToken ?? info.inputCostPerToken,
        tier.cacheWriteCostPerToken ?? info.cacheWriteCostPerToken ?? 0,
        tier.cacheWrite1hCostPerToken ?? info.cacheWrite1hCostPerToken ?? 0,
      ),
      worstOutputPerToken: Math.max(tier.outputCostPerToken ?? info.outputCostPerToken, info.reasoningCostPerToken ?? 0),
      inputPerToken: tier.inputCostPerToken ?? info.inputCostPerToken,
      fiveMinuteWriteInputPerToken: Math.max(tier.inputCostPerToken ?? info.inputCostPerToken, tier.cacheWriteCostPerToken ?? info.cacheWriteCostPerToken ?? 0),
    })),
  };
}

/** Each processing tier's rates, the dearest any view of the family has. */
function dearestServiceTiers(views: PriceView[]): PriceView['serviceTiers'] {
  let merged: Record<string, { worstInputPerToken: number; worstOutputPerToken: number }> | undefined;
  for (const view of views) {
    for (const [name, rates] of Object.entries(view.serviceTiers ?? {})) {
      merged ??= {};
      const known = merged[name];
      merged[name] =
        known === undefined
          ? { ...rates }
          : {
              worstInputPerToken: Math.max(known.worstInputPerToken, rates.worstInputPerToken),
              worstOutputPerToken: Math.max(known.worstOutputPerToken, rates.worstOutputPerToken),
            };
    }
  }
  return merged;
}

/** Each rate the dearest of the views; every view's tiers, in threshold order. Undefined for none. */
function familyView(views: PriceView[]): PriceView | undefined {
  const [first, ...rest] = views;
  if (first === undefined || rest.length === 0) return first;
  const largest = (pick: (view: PriceView) => number | undefined): number | undefined => {
    let value: number | undefined;
    for (const view of views) {
      const picked = pick(view);
      if (picked !== undefined && (value === undefined || picked > value)) value = picked;
    }
    return value;
  };
  return {
    inputPerToken: largest((view) => view.inputPerToken) ?? first.inputPerToken,
    outputPerToken: largest((view) => view.outputPerToken) ?? first.outputPerToken,
    maxOutputTokens: largest((view) => view.maxOutputTokens),
    maxInputTokens: largest((view) => view.maxInputTokens),
    worstInputPerToken: largest((view) => view.worstInputPerToken),
    // The provider's, the same for every model of the family.
    cacheWritesMarked: first.cacheWritesMarked,
    fiveMinuteWriteInputPerToken: largest((view) => view.fiveMinuteWriteInputPerToken),
    worstOutputPerToken: largest((view) => view.worstOutputPerToken),
    perRequestUsd: largest((view) => view.perRequestUsd),
    perSearchUsd: largest((view) => view.perSearchUsd),
    serviceTiers: dearestServiceTiers(views),
    tiers: views.flatMap((view) => view.tiers ?? []).sort((left, right) => left.aboveInputTokens - right.aboveInputTokens),
  };
}
