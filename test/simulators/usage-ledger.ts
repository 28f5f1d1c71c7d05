// What a provider simulator actually served, for its organisation usage and cost reports: every
// answered call's usage and the key that served it, priced at list price from the shipped table
// (core/catalog/model-prices.json), plus charges a test adds to make the provider disagree with
// Keyway (drift). The OpenAI and Anthropic admin endpoints (openai-admin.ts, anthropic-admin.ts)
// aggregate it in their providers' own shapes.

import { createHash } from 'node:crypto';
import prices from '../../core/catalog/model-prices.json' with { type: 'json' };

export interface ServedCall {
  /** Unix milliseconds. */
  at: number;
  apiKey: string;
  model: string;
  uncachedInputTokens: number;
  cacheReadTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  outputTokens: number;
}

/** A charge with no call behind it: the provider's bill disagreeing with what was served. */
export interface ExtraCharge {
  at: number;
  model: string;
  usd: number;
  /** Tokens the provider also claims, when the drift should show in the usage report too. */
  outputTokens?: number;
  apiKey?: string;
}

interface PriceRow {
  input_cost_per_token?: number;
  output_cost_per_token?: number;
  cache_read_input_token_cost?: number;
  cache_creation_input_token_cost?: number;
  cache_creation_input_token_cost_above_1hr?: number;
}

const PRICE_TABLE = (prices as unknown as { models: Record<string, PriceRow | undefined> }).models;

/** The list price of each kind of token of a model, in USD; undefined when the table lacks the model. */
export function listPrices(provider: string, model: string): Required<PriceRow> | undefined {
  const row = PRICE_TABLE[model] ?? PRICE_TABLE[`${provider}/${model}`];
  if (row?.input_cost_per_token === undefined || row.output_cost_per_token === undefined) return undefined;
  return {
    input_cost_per_token: row.input_cost_per_token,
    output_cost_per_token: row.output_cost_per_token,
    cache_read_input_token_cost: row.cache_read_input_token_cost ?? row.input_cost_per_token,
    cache_creation_input_token_cost: row.cache_creation_input_token_cost ?? row.input_cost_per_token,
    cache_creation_input_token_cost_above_1hr: row.cache_creation_input_token_cost_above_1hr ?? row.cache_creation_input_token_cost ?? row.input_cost_per_token,
  };
}

export type TokenKind = 'uncached_input' | 'cache_read' | 'cache_write_5m' | 'cache_write_1h' | 'output';

/** A call's cost per token kind, in USD, at list price (zero for an unpriced model). */
export function costByKind(provider: string, call: ServedCall): Record<TokenKind, number> {
  const price = listPrices(provider, call.model);
  if (price === undefined) return { uncached_input: 0, cache_read: 0, cache_write_5m: 0, cache_write_1h: 0, output: 0 };
  return {
    uncached_input: call.uncachedInputTokens * price.input_cost_per_token,
    cache_read: call.cacheReadTokens * price.cache_read_input_token_cost,
    cache_write_5m: call.cacheWrite5mTokens * price.cache_creation_input_token_cost,
    cache_write_1h: call.cacheWrite1hTokens * price.cache_creation_input_token_cost_above_1hr,
    output: call.outputTokens * price.output_cost_per_token,
  };
}

export const DAY_MS = 86_400_000;

export function dayStart(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS;
}

/** Day buckets `[start, end)` covering a query range, bucket starts snapped to UTC midnight. */
export function dayBuckets(startMs: number, endMs: number): Array<{ start: number; end: number }> {
  const buckets: Array<{ start: number; end: number }> = [];
  for (let start = dayStart(startMs); start < endMs; start += DAY_MS) buckets.push({ start, end: start + DAY_MS });
  return buckets;
}

export class UsageLedger {
  readonly served: ServedCall[] = [];
  readonly charges: ExtraCharge[] = [];
  /** Every admin report call answered, as `path?query`: tests see paging and parameters. */
  readonly reportCalls: string[] = [];

  /** API key → the project (OpenAI) or workspace (Anthropic) it belongs to, when not the default. */
  readonly groups = new Map<string, string>();

  constructor(
    private readonly idPrefix: string,
    private readonly defaultGroup: string | null,
  ) {}

  /** The project or workspace of a key: the default one unless `groups` says otherwise. */
  groupOf(apiKey: string | undefined): string | null {
    return (apiKey === undefined ? undefined : this.groups.get(apiKey)) ?? this.defaultGroup;
  }

  record(call: ServedCall): void {
    this.served.push(call);
  }

  /** Test hook: the provider bills `usd` more for `model` on the day of `at` (now by default). */
  addCharge(charge: Omit<ExtraCharge, 'at'> & { at?: number }): void {
    this.charges.push({ ...charge, at: charge.at ?? Date.now() });
  }

  /** The provider's stable id for one of its API keys. */
  keyId(apiKey: string): string {
    return `${this.idPrefix}${createHash('sha256').update(apiKey).digest('hex').slice(0, 20)}`;
  }

  clear(): void {
    this.served.length = 0;
    this.charges.length = 0;
  }
}

/** Pages over day buckets: `page` is the index of the first bucket, base64 as the providers' cursors look. */
export function pageOfBuckets<Bucket>(buckets: Bucket[], page: string | null, limit: number): { data: Bucket[]; hasMore: boolean; nextPage: string | null } {
  const offset = page === null ? 0 : Number.parseInt(Buffer.from(page, 'base64').toString('utf8'), 10) || 0;
  const data = buckets.slice(offset, offset + limit);
  const hasMore = offset + limit < buckets.length;
  return { data, hasMore, nextPage: hasMore ? Buffer.from(String(offset + limit)).toString('base64') : null };
}

/** A list parameter as the providers accept it: repeated, with brackets, or comma separated. */
export function listParameter(url: URL, name: string): string[] {
  return [...url.searchParams.getAll(name), ...url.searchParams.getAll(`${name}[]`)].flatMap((value) => value.split(',')).filter((value) => value !== '');
}

export function groupByOf(url: URL): string[] {
  return listParameter(url, 'group_by');
}

/** A key as its provider lists it: OpenAI's `redacted_value` (`sk-abc...def`), Anthropic's `partial_key_hint` (`sk-ant-api03-R2D...igAA`). */
export function redactedKey(apiKey: string, style: 'openai' | 'anthropic'): string {
  if (style === 'openai') return `${apiKey.slice(0, 6)}...${apiKey.slice(-3)}`;
  return `${apiKey.slice(0, 16)}...${apiKey.slice(-4)}`;
}
