// The body a provider's own Responses API receives (ProviderAdapter.native.responses, OpenAI's), and
// what Keyway changes in what it answers. The caller's body passes through, except for what Keyway
// owns: `provider` and `routing` (Keyway's routing), `metadata` (kept by Keyway, never sent upstream,
// as on every route), `previous_response_id` (resolved by Keyway into the stored items, which come
// first in `input`), and `store`, always false upstream: Keyway keeps the conversation itself, so a
// continuation works on any provider and after a fallback, `DELETE /v1/responses/{id}` really deletes
// it, retention and team scoping are Keyway's, and a provider key shared by an account does not
// collect its teams' conversations in the provider's dashboard (zero-data-retention organisations
// refuse `store: true` anyway). Response ids and sequence numbers stay the provider's: a stored
// response is kept under the id the client saw. Item ids become Keyway's, made from that response id
// (NativeItemIds), so an `item_reference` to them finds its stored response as on every route;
// reasoning items keep the provider's id, which their encrypted content belongs to.

import { ItemIds } from './response.ts';

type Json = Record<string, unknown>;

/** Fields of the caller's body that are Keyway's, never the provider's. */
const KEYWAY_FIELDS = new Set(['provider', 'routing', 'metadata', 'previous_response_id', 'store', 'model']);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An item as a provider that stores nothing can take it: an `item_reference` becomes the item of the
 * continued conversation it names, and reasoning without `encrypted_content` (a translated provider's
 * summary, or a reasoning id from a stored conversation) is dropped, as the provider could not find it.
 */
export function replayable(item: Json, previous: readonly Json[]): Json | undefined {
  if (item.type === 'item_reference') {
    const referenced = previous.find((candidate) => candidate.id === item.id && candidate.type !== 'item_reference');
    return referenced === undefined ? undefined : replayable(referenced, previous);
  }
  if (item.type === 'reasoning') {
    if (typeof item.encrypted_content !== 'string' || item.encrypted_content === '') return undefined;
    // The provider reads the encrypted reasoning; the summary is a display copy of it. Replayed, it would
    // be client text no policy has read (the translation the content scan sees has no reasoning items):
    // it is sent empty, as OpenAI itself returns reasoning when no summary is asked for.
    if (Array.isArray(item.summary) && item.summary.length > 0) return { ...item, summary: [] };
  }
  return item;
}

/** The provider's body, less the model (set per candidate). */
export function nativeBodyOf(body: Json, previous: readonly Json[], inputItems: readonly Json[]): Json {
  const native: Json = {};
  for (const name in body) if (!KEYWAY_FIELDS.has(name)) native[name] = body[name];
  if (previous.length === 0 && typeof body.input === 'string') native.input = body.input;
  else {
    const input: Json[] = [];
    for (const item of [...previous, ...inputItems]) {
      const kept = isObject(item) ? replayable(item, previous) : undefined;
      if (kept !== undefined) input.push(kept);
    }
    native.input = input;
  }
  native.store = false;
  return native;
}

/** What the response object says that Keyway decides rather than the provider. */
export interface KeywayEcho {
  store: boolean;
  previous_response_id: string | null;
  metadata: Json;
}

/** The provider's response object with Keyway's side of it. */
export function withKeywayEcho(response: Json, echo: KeywayEcho): Json {
  return { ...response, store: echo.store, previous_response_id: echo.previous_response_id, metadata: echo.metadata };
}

/**
 * A native answer's item ids, renamed to Keyway's (ItemIds of its response id) in everything the client
 * sees. The provider's ids are unique random strings, so a textual replacement is exact.
 */
export class NativeItemIds {
  private readonly names = new Map<string, string>();
  private readonly ids: ItemIds;

  constructor(responseId: string) {
    this.ids = new ItemIds(responseId);
  }

  /** Gives an item of the answer its Keyway id (once); reasoning keeps the provider's. */
  name(item: unknown): void {
    if (!isObject(item) || typeof item.id !== 'string' || item.type === 'reasoning' || this.names.has(item.id)) return;
    const underscore = item.id.indexOf('_');
    this.names.set(item.id, this.ids.next(underscore > 0 && underscore <= 8 ? item.id.slice(0, underscore) : 'item'));
  }

  /** Every named item of a response object. */
  nameOutput(response: Json): void {
    if (Array.isArray(response.output)) for (const item of response.output) this.name(item);
  }

  /**
   * A delta event's text: it names one item (`item_id`, written before the delta itself), so only
   * that id is renamed, once, and the generated text is never searched.
   */
  rewriteItem(text: string, itemId: unknown): string {
    if (typeof itemId !== 'string') return this.rewrite(text);
    const to = this.names.get(itemId);
    return to === undefined ? text : text.replace(itemId, to);
  }

  rewrite(text: string): string {
    let rewritten = text;
    for (const [from, to] of this.names) if (rewritten.includes(from)) rewritten = rewritten.replaceAll(from, to);
    return rewritten;
  }
}

/** A whole native response object with Keyway's item ids. */
export function withKeywayItemIds(response: Json): Json {
  if (typeof response.id !== 'string') return response;
  const names = new NativeItemIds(response.id);
  names.nameOutput(response);
  return JSON.parse(names.rewrite(JSON.stringify(response))) as Json;
}
