// Stored responses a request needs that are not in memory (after a restart, or an evicted entry) are
// read from the database before the lifecycle starts, so the translation itself never waits: the
// one `previous_response_id` continues, and those holding the items its `item_reference`s name.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { responseIdOfItem } from './response.ts';
import type { ResponseStore } from './store.ts';

/** Bodies larger than this are not scanned before the lifecycle reads them. */
const PRELOAD_LIMIT_BYTES = 16 * 1024 * 1024;
/** A request naming more stored responses than this gets the rest from memory only. */
const MAX_REFERENCED_RESPONSES = 64;
const PREVIOUS_ID = /"previous_response_id"\s*:\s*"([\w.-]{1,200})"/;

/** The stored responses the body's item references lead to (ItemIds), read only when it has any. */
function referencedResponseIds(text: string): string[] {
  if (!text.includes('item_reference')) return [];
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [];
  }
  const input = typeof body === 'object' && body !== null ? (body as { input?: unknown }).input : undefined;
  if (!Array.isArray(input)) return [];
  const ids = new Set<string>();
  for (const item of input) {
    if (typeof item !== 'object' || item === null || item.type !== 'item_reference' || typeof item.id !== 'string') continue;
    const responseId = responseIdOfItem(item.id);
    if (responseId !== undefined) ids.add(responseId);
    if (ids.size >= MAX_REFERENCED_RESPONSES) break;
  }
  return [...ids];
}

export async function preloadStoredResponses(store: ResponseStore, services: Services, request: Request): Promise<void> {
  const length = Number(request.headers.get('content-length'));
  if (!(length > 0 && length <= PRELOAD_LIMIT_BYTES)) return;
  let principal: Principal;
  try {
    principal = services.auth.authenticate(request.headers);
  } catch {
    return;
  }
  let text: string;
  try {
    // Within the limits every body has: a body trickled past the deadline must not hold the request here.
    text = await services.http.peekText(request);
  } catch {
    // The lifecycle reads the body next and answers what went wrong (408, 413, 499), booked once.
    return;
  }
  const ids = new Set(referencedResponseIds(text));
  const previous = PREVIOUS_ID.exec(text)?.[1];
  if (previous !== undefined) ids.add(previous);
  await Promise.all(
    [...ids].map(async (id) => {
      try {
        const stored = await store.load(id, principal);
        if (stored !== undefined) store.pin(request.headers, id, stored);
      } catch (error) {
        services.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'a stored response could not be read');
        // A 503 (not_ready, storage_unavailable) is the request's answer if it needs this response.
        store.pinFailure(request.headers, id, error);
      }
    }),
  );
}
