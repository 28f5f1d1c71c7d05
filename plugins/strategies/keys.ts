import type { ProviderKeyRecord, RoutePlanInput } from '../../core/spec/plugin.ts';

/** FNV-1a: a fast, well-spread 32-bit hash for rendezvous scores. */
function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Orders a provider's usable keys for one request. Weighted: a key of weight 2 leads twice as often
 * as one of weight 1. Sticky: the same session always gets the same order (weighted rendezvous
 * hashing), so a conversation stays on one key and its provider-side prompt cache. Keys cooling
 * down after a rate limit go last.
 */
export function orderPool(keys: readonly ProviderKeyRecord[] | undefined, input: RoutePlanInput, random: () => number = Math.random): ProviderKeyRecord[] {
  if (keys === undefined || keys.length === 0) return [];
  const usable = keys.filter((key) => input.isAvailable(key));
  if (usable.length < 2) return usable;
  const scored = usable.map((key) => {
    const unit = input.stickyKey === undefined ? random() : (hash32(`${input.stickyKey}\u0000${key.id}`) + 0.5) / 4294967296;
    // Efraimidis–Spirakis: unit^(1/weight) orders a weighted sample without replacement.
    const score = unit ** (1 / Math.max(key.weight, 1e-6));
    return { key, score, cooling: input.isCoolingDown(key) };
  });
  scored.sort((left, right) => Number(left.cooling) - Number(right.cooling) || right.score - left.score);
  return scored.map((entry) => entry.key);
}

/** Platform keys only with the request's explicit permission, and never under `use_byok_only`. */
export function platformAllowed(input: RoutePlanInput): boolean {
  return input.routing.fallback_to_parrotrouter === true && input.routing.use_byok_only !== true;
}

/** Names in `provider_order` that mean the operator's platform keys. */
export const PLATFORM_NAMES: ReadonlySet<string> = new Set(['parrotrouter', 'platform']);
