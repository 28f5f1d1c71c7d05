// The operator's price control: the effective table (GET /v1/platform/prices), per-model overrides
// (PUT, DELETE /v1/platform/prices/{provider}/{model}) stored as a platform setting, and a re-read of
// KEYWAY_PRICES_FILE (POST /v1/platform/prices/reload). Overrides reach the in-memory catalog through
// the snapshot refresh; rows booked after the change are priced with them, earlier rows keep theirs.

import { Type, type Static } from '@sinclair/typebox';
import { isPriced, PRICE_SOURCES, type ModelInfo, type PriceSource } from '../catalog/catalog.ts';
import { PRICE_OVERRIDES_SETTING, type PriceOverride } from '../catalog/price-book.ts';
import { PriceFileError } from '../catalog/price-file.ts';
import { KeywayError } from '../errors.ts';
import { CLUSTER_TOPICS } from '../spec/cluster.ts';
import type { Runtime } from '../runtime.ts';
import { recordChange } from './kit/audit-trail.ts';
import { readJson, validateBody } from './kit/body.ts';
import { guarded } from './kit/guard.ts';
import { refuseUnknownParameters } from './kit/query.ts';
import { decodedPathPart, requestUrl } from './kit/request-url.ts';
import { json } from './kit/respond.ts';

const Rate = (description: string) => Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: `${description}, USD per token` }));
const Fee = (description: string) => Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: `${description}, USD` }));
const Limit = (description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000, description }));

export const PriceOverrideSchema = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 100, description: 'The name of a loaded provider plugin' }),
    model: Type.String({ minLength: 1, maxLength: 200, description: 'The model name as the provider knows it' }),
    input_cost_per_token: Rate('Uncached input'),
    output_cost_per_token: Rate('Output'),
    cache_read_input_token_cost: Rate('Cache reads'),
    cache_creation_input_token_cost: Rate('Cache writes (5-minute writes where the provider has two lifetimes)'),
    cache_creation_input_token_cost_above_1hr: Rate('1-hour cache writes'),
    output_cost_per_reasoning_token: Rate('Reasoning tokens, when priced apart from output'),
    citation_cost_per_token: Rate('Citation tokens of retrieved sources'),
    input_cost_per_request: Fee('A flat fee on every request'),
    search_context_cost_per_query: Type.Optional(
      Type.Object(
        {
          search_context_size_low: Fee('Search fee at low context'),
          search_context_size_medium: Fee('Search fee at medium context'),
          search_context_size_high: Fee('Search fee at high context'),
        },
        {
          additionalProperties: false,
          description: 'The search fee by search_context_size: once per request when it varies with the size, per reported search when it does not',
        },
      ),
    ),
    tool_call_costs: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), Type.Number({ minimum: 0, maximum: 1000 }), {
        maxProperties: 32,
        description:
          "Hosted tools billed per call, USD per call by fee name (the provider's own names, such as web_search or file_search); named fees replace the provider's defaults",
      }),
    ),
    max_input_tokens: Limit('Prompt limit, tokens'),
    max_output_tokens: Limit('Output limit, tokens (budgets reserve it when a request names none)'),
  },
  { additionalProperties: false },
);

export const PriceOverridesBodySchema = Type.Object(
  { prices: Type.Array(PriceOverrideSchema, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false, description: 'Per-model price overrides; a single override object is also accepted' },
);

type OverrideBody = Static<typeof PriceOverrideSchema>;

/** Management writes of the overrides, one at a time: two concurrent PUTs must not lose one another's models. */
let writes: Promise<unknown> = Promise.resolve();
function serialised<Value>(work: () => Promise<Value>): Promise<Value> {
  const next = writes.then(work, work);
  writes = next.catch(() => undefined);
  return next;
}

function fees(runtime: Runtime): { platform_markup_percent: number; byok_fee_percent: number } {
  const settings = runtime.snapshots.current.platformSettings;
  const number = (value: unknown, fallback: number): number => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);
  return { platform_markup_percent: number(settings.platform_markup_percent, 5), byok_fee_percent: number(settings.byok_fee_percent, 0) };
}

/** One model of the effective table, in LiteLLM's field names (null where the table is silent). */
export function priceRow(info: ModelInfo): Record<string, unknown> {
  const search = info.searchCostPerQuery;
  return {
    provider: info.provider,
    model: info.model,
    mode: info.mode,
    source: info.source,
    priced: isPriced(info),
    input_cost_per_token: info.entry.input_cost_per_token ?? null,
    output_cost_per_token: info.entry.output_cost_per_token ?? null,
    cache_read_input_token_cost: info.cacheReadCostPerToken ?? null,
    cache_creation_input_token_cost: info.cacheWriteCostPerToken ?? null,
    cache_creation_input_token_cost_above_1hr: info.cacheWrite1hCostPerToken ?? null,
    output_cost_per_reasoning_token: info.reasoningCostPerToken ?? null,
    citation_cost_per_token: info.citationCostPerToken ?? null,
    input_cost_per_request: info.requestCostUsd ?? null,
    search_context_cost_per_query:
      search === undefined ? null : Object.fromEntries(Object.entries(search).map(([size, fee]) => [`search_context_size_${size}`, fee])),
    tool_call_costs: info.toolCallCosts === undefined ? null : { ...info.toolCallCosts },
    long_prompt_tiers: info.tiers.map((tier) => ({
      above_input_tokens: tier.aboveInputTokens,
      input_cost_per_token: tier.inputCostPerToken ?? null,
      output_cost_per_token: tier.outputCostPerToken ?? null,
      cache_read_input_token_cost: tier.cacheReadCostPerToken ?? null,
      cache_creation_input_token_cost: tier.cacheWriteCostPerToken ?? null,
      cache_creation_input_token_cost_above_1hr: tier.cacheWrite1hCostPerToken ?? null,
    })),
    max_input_tokens: info.maxInputTokens ?? null,
    max_output_tokens: info.maxOutputTokens ?? null,
  };
}

function fileStatus(runtime: Runtime): Record<string, unknown> {
  const file = runtime.prices.file;
  return { path: file.path ?? null, loaded_at: file.loadedAt ?? null, models: file.models, error: file.error ?? null };
}

/**
 * A hosted-tool fee is charged only under a name the provider counts calls by: any other name would be
 * stored and shown as the model's fee while no call is ever charged it (a typo such as `websearch`, or a
 * provider whose searches are priced by search_context_cost_per_query), so it is refused.
 */
function checkToolCallFees(runtime: Runtime, override: OverrideBody, index: number): void {
  if (override.tool_call_costs === undefined) return;
  const billed = runtime.prices.toolCallFeeNames(override.provider);
  for (const name of Object.keys(override.tool_call_costs)) {
    if (billed.includes(name)) continue;
    const param = `prices[${index}].tool_call_costs.${name}`;
    const detail =
      billed.length === 0
        ? `${override.provider} bills no hosted tool per call; its searches are priced by search_context_cost_per_query`
        : `${override.provider} bills hosted tool calls as ${billed.join(', ')}`;
    throw new KeywayError('invalid_field', { param, detail }, { param });
  }
}

/** Checks what the schema cannot: a loaded provider, and both rates for a model the table does not price. */
function checkOverride(runtime: Runtime, override: OverrideBody, index: number): void {
  if (!runtime.plugins.providers.has(override.provider)) {
    const known = [...runtime.plugins.providers.keys()].join(', ');
    throw new KeywayError(
      'invalid_field',
      { param: `prices[${index}].provider`, detail: `no loaded provider is called '${override.provider}' (loaded: ${known})` },
      { param: `prices[${index}].provider` },
    );
  }
  checkToolCallFees(runtime, override, index);
  const table = runtime.prices.tableEntry(override.provider, override.model);
  const pricedWithout = table !== undefined && isPriced(table);
  for (const field of ['input_cost_per_token', 'output_cost_per_token'] as const) {
    if (override[field] === undefined && !pricedWithout) {
      throw new KeywayError('missing_field', { param: `prices[${index}].${field}` }, { param: `prices[${index}].${field}` });
    }
  }
}

function storedOverrides(runtime: Runtime): PriceOverride[] {
  const stored = runtime.snapshots.current.platformSettings[PRICE_OVERRIDES_SETTING];
  return Array.isArray(stored) ? [...(stored as PriceOverride[])] : [];
}

async function saveOverrides(runtime: Runtime, overrides: PriceOverride[]): Promise<void> {
  await runtime.store.setPlatformSetting(PRICE_OVERRIDES_SETTING, overrides);
  // The refresh hands the new list to the price book (core/catalog/open-prices.ts) before it returns.
  await runtime.snapshots.refresh();
}

function rowsFor(runtime: Runtime, wanted: ReadonlyArray<{ provider: string; model: string }>): Record<string, unknown>[] {
  return wanted.flatMap(({ provider, model }) => {
    const info = runtime.catalog.get(provider, model);
    return info === undefined ? [] : [priceRow(info)];
  });
}

/**
 * Each named model's price as GET showed it, for the audit entry: a model the table does not know yet
 * is listed too (`source: null`), so an entry shows that a price was added rather than changed.
 */
function pricesOf(runtime: Runtime, wanted: ReadonlyArray<{ provider: string; model: string }>): Record<string, unknown>[] {
  return wanted.map(({ provider, model }) => {
    const info = runtime.catalog.get(provider, model);
    return info === undefined ? { provider, model, source: null, priced: false } : priceRow(info);
  });
}

const PRICE_LIST_PARAMETERS = ['provider', 'model', 'source'] as const;

export const priceRoutes = {
  list: guarded(
    'operator',
    (runtime, request) => {
      const query = requestUrl(request).searchParams;
      refuseUnknownParameters(query, PRICE_LIST_PARAMETERS);
      const provider = query.get('provider');
      const model = query.get('model');
      const source = query.get('source');
      // A filter no price can match is a mistake (`?source=overrides`), not a question whose answer is an empty list.
      if (source !== null && !PRICE_SOURCES.includes(source as PriceSource))
        throw new KeywayError('invalid_field', { param: 'source', detail: `expected one of: ${PRICE_SOURCES.join(', ')}` }, { param: 'source' });
      const data: Record<string, unknown>[] = [];
      for (const info of runtime.catalog.models()) {
        if (provider !== null && info.provider !== provider) continue;
        if (model !== null && info.model !== model) continue;
        if (source !== null && info.source !== source) continue;
        data.push(priceRow(info));
      }
      return json({ object: 'list', data, fees: fees(runtime), file: fileStatus(runtime) });
    },
    { query: PRICE_LIST_PARAMETERS },
  ),

  put: guarded(
    'operator',
    async (runtime, request) => {
      const body = await readJson(request, runtime.config);
      const wrapped = body !== null && typeof body === 'object' && !Array.isArray(body) && 'provider' in body ? { prices: [body] } : body;
      const { prices } = validateBody(PriceOverridesBodySchema, wrapped);
      prices.forEach((override, index) => checkOverride(runtime, override, index));
      const updatedAt = new Date().toISOString();
      await serialised(async () => {
        // Read inside the queue: what this PUT replaced, not what an earlier one in flight did.
        recordChange(request, { before: { prices: pricesOf(runtime, prices) } });
        const overrides = storedOverrides(runtime);
        for (const override of prices) {
          const position = overrides.findIndex((entry) => entry.provider === override.provider && entry.model === override.model);
          // A second PUT for a model replaces its override whole: what it does not name comes from the table again.
          const entry: PriceOverride = { ...override, updated_at: updatedAt };
          if (position === -1) overrides.push(entry);
          else overrides[position] = entry;
        }
        await saveOverrides(runtime, overrides);
      });
      const data = rowsFor(runtime, prices);
      recordChange(request, { after: { prices: pricesOf(runtime, prices) } });
      return json({ object: 'list', data });
    },
    { body: PriceOverridesBodySchema },
  ),

  remove: guarded('operator', async (runtime, request, _principal, parameters) => {
    // Named as a client names them (Elysia calls the model, which may hold slashes, `*`). The router
    // decoded the provider already; the model it leaves encoded, and a bad escape in it (`%FF`) names no
    // override: 404, not the URIError a second decode of either threw (QA17).
    const provider = parameters.provider ?? '';
    const model = decodedPathPart(parameters['*'] ?? parameters.model ?? '');
    recordChange(request, { target: { provider, model } });
    const removed = await serialised(async () => {
      const overrides = storedOverrides(runtime);
      const kept = overrides.filter((entry) => !(entry.provider === provider && entry.model === model));
      if (kept.length === overrides.length) return false;
      const info = runtime.catalog.get(provider, model);
      recordChange(request, { before: info === undefined ? { provider, model } : priceRow(info) });
      await saveOverrides(runtime, kept);
      return true;
    });
    if (!removed) throw new KeywayError('not_found', { detail: `No price override for ${provider}/${model}.` });
    const info = runtime.catalog.get(provider, model);
    const now = info === undefined ? null : priceRow(info);
    // The price in force once the override is gone (the table's, or none): what the deletion changed it to.
    recordChange(request, { after: now });
    return json({ deleted: true, provider, model, now });
  }),

  reload: guarded('operator', (runtime, request) => {
    recordChange(request, { before: fileStatus(runtime) });
    if (runtime.prices.file.path === undefined) {
      throw new KeywayError('invalid_request', { detail: 'KEYWAY_PRICES_FILE is not set: there is no price file to reload.' });
    }
    try {
      runtime.prices.reloadFile();
    } catch (error) {
      if (!(error instanceof PriceFileError)) throw error;
      runtime.logger.error({ path: runtime.prices.file.path, error: error.message }, 'KEYWAY_PRICES_FILE refused on reload; the table in use stays');
      // A refusal is news too: every member re-reads, so each shows this error as `file.error`, not an older one.
      tellClusterToReload(runtime);
      throw new KeywayError('invalid_request', {
        detail: `KEYWAY_PRICES_FILE ${runtime.prices.file.path} refused: ${error.message}. The price table in use is unchanged.`,
      });
    }
    tellClusterToReload(runtime);
    const file = fileStatus(runtime);
    recordChange(request, { after: file });
    return json({ reloaded: true, file });
  }),
};

/** The other workers (KEYWAY_WORKERS) or instances re-read their file too: one table, and one file status, everywhere. */
function tellClusterToReload(runtime: Runtime): void {
  Promise.resolve(runtime.cluster.publish(CLUSTER_TOPICS.pricesFile, '')).catch((failure: unknown) =>
    runtime.logger.warn({ error: failure instanceof Error ? failure.message : String(failure) }, 'could not tell the cluster to reload the price file'),
  );
}
