// `GET /v1/responses/{id}/input_items`: the items a stored response was answered from, as OpenAI
// lists them: a cursor page (`data`, `first_id`, `last_id`, `has_more`), newest first unless
// `order=asc`, `limit` 1–100 (20), `after` / `before` an item id. With previous_response_id the
// list holds the whole conversation the response continued, its earlier answers included, as that
// was the response's input.

import { invalidField } from '../../core/errors.ts';

type Json = Record<string, unknown>;

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

export interface InputItemsQuery {
  order: 'asc' | 'desc';
  limit: number;
  after: string | undefined;
  before: string | undefined;
}

/** The query string's paging parameters, validated (`include` is accepted: every item is kept whole). */
export function inputItemsQuery(search: URLSearchParams): InputItemsQuery {
  const order = search.get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw invalidField('order', "expected 'asc' or 'desc'");
  const limitText = search.get('limit');
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalidField('limit', `expected an integer from 1 to ${MAX_LIMIT}`);
  return { order, limit, after: search.get('after') ?? undefined, before: search.get('before') ?? undefined };
}

function textParts(content: unknown, partType: string): unknown {
  return typeof content === 'string' ? [{ type: partType, text: content, ...(partType === 'output_text' ? { annotations: [] } : {}) }] : content;
}

/** An item in the shape OpenAI lists it: typed, content as parts, a status where the type has one. */
function listedItem(item: Json): Json {
  const type = typeof item.type === 'string' ? item.type : 'message';
  if (type === 'message') {
    const partType = item.role === 'assistant' ? 'output_text' : 'input_text';
    return { ...item, type, status: item.status ?? 'completed', content: textParts(item.content, partType) };
  }
  if (type === 'reasoning') return { ...item, type };
  return { ...item, type, status: item.status ?? 'completed' };
}

function cursorIndex(items: readonly Json[], id: string, param: 'after' | 'before'): number {
  const index = items.findIndex((item) => item.id === id);
  if (index === -1) throw invalidField(param, `no input item of this response has the id '${id.slice(0, 100)}'`);
  return index;
}

export function inputItemsPage(items: readonly Json[], query: InputItemsQuery): Json {
  const ordered = query.order === 'asc' ? items : [...items].reverse();
  const start = query.after === undefined ? 0 : cursorIndex(ordered, query.after, 'after') + 1;
  const end = query.before === undefined ? ordered.length : cursorIndex(ordered, query.before, 'before');
  const data = ordered.slice(start, Math.max(start, Math.min(end, start + query.limit))).map(listedItem);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + query.limit < end,
  };
}
