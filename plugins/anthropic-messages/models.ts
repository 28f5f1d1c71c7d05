// GET /v1/models and /v1/models/{id} in Anthropic's shape, for the Anthropic SDKs and tools (they send
// `anthropic-version` on every call; OpenAI's SDKs never do). Anthropic's Models API answers a page
// `{data: [{type, id, display_name, created_at}], has_more, first_id, last_id}` paged by `limit`,
// `after_id` and `before_id`; OpenAI's shape left `client.models.list()` with undefined
// `display_name`/`created_at` and every model on one page whatever `limit` said (QA18).

import { invalidField } from '../../core/errors.ts';
import type { DialectModelsList, ModelListEntry } from '../../core/spec/dialect.ts';

export interface AnthropicModel {
  type: 'model';
  id: string;
  /** Keyway has no marketing names: the id, which is what a client sends back. */
  display_name: string;
  /** RFC 3339; the Unix epoch when the provider's list gives no date (Gemini, Cohere). */
  created_at: string;
  /** Keyway's addition, as on the OpenAI-shaped list: the provider that serves the id. */
  provider: string;
}

export interface AnthropicModelsPage {
  data: AnthropicModel[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** Anthropic's default page size and its largest. */
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

/** The Anthropic dialect's model list: for callers that speak Anthropic's API (its SDKs send `anthropic-version` on every request). */
export const anthropicModelsList: DialectModelsList = {
  wants: (headers) => headers.has('anthropic-version'),
  page: (entries, query) => anthropicModelsPage(entries, query),
  one: (entry) => anthropicModel(entry),
};

export function anthropicModel(entry: ModelListEntry): AnthropicModel {
  return { type: 'model', id: entry.id, display_name: entry.id, created_at: new Date(entry.created * 1000).toISOString(), provider: entry.provider };
}

/** One page of the list (already in Keyway's order), as Anthropic pages: after `after_id`, or before `before_id`. */
export function anthropicModelsPage(entries: readonly ModelListEntry[], query: URLSearchParams): AnthropicModelsPage {
  const limit = limitOf(query.get('limit'));
  const afterId = query.get('after_id');
  const beforeId = query.get('before_id');
  let start = 0;
  let end = entries.length;
  if (afterId !== null) start = positionOf(entries, afterId, 'after_id') + 1;
  if (beforeId !== null) end = positionOf(entries, beforeId, 'before_id');
  // Before an id, the page is the one that ends there (Anthropic pages backwards from it).
  const from = beforeId !== null && afterId === null ? Math.max(start, end - limit) : start;
  const to = Math.min(end, from + limit);
  const data = entries.slice(from, Math.max(from, to)).map(anthropicModel);
  const hasMore = beforeId !== null && afterId === null ? from > start : to < end;
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

function limitOf(value: string | null): number {
  if (value === null) return DEFAULT_LIMIT;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalidField('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  return limit;
}

function positionOf(entries: readonly ModelListEntry[], id: string, param: string): number {
  const position = entries.findIndex((entry) => entry.id === id);
  if (position === -1) throw invalidField(param, 'is not the id of a model this key may use');
  return position;
}
