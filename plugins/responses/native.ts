// The body a provider's own Responses API receives (ProviderAdapter.native.responses, OpenAI's), and
// what Keyway changes in what it answers. The caller's body passes through, except for what Keyway
// owns: `provider` and `routing` (Keyway's routing), `metadata` (kept by Keyway, never sent upstream,
// as on every route), `previous_response_id` (resolved by Keyway into the stored items, which come
// first in `input`), and `store`, always false upstream: Keyway keeps the conversation itself, so a
// continuation works on any provider and after a fallback, `DELETE /v1/responses/{id}` really deletes
// it, retention and team scoping are Keyway's, and a provider key shared by an account does not
// collect its teams' conversations in the provider's dashboard (zero-data-retention organisations
// refuse `store: true` anyway). Response and item ids and sequence numbers stay the provider's: a
// stored response is kept under the id the client saw.

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
function replayable(item: Json, previous: readonly Json[]): Json | undefined {
  if (item.type === 'item_reference') {
    const referenced = previous.find((candidate) => candidate.id === item.id && candidate.type !== 'item_reference');
    return referenced === undefined ? undefined : replayable(referenced, previous);
  }
  if (item.type === 'reasoning' && (typeof item.encrypted_content !== 'string' || item.encrypted_content === '')) return undefined;
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
