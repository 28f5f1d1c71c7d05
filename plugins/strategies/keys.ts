import type { ProviderKeyRecord, RoutePlanInput } from '../../core/plugin.ts';

/** The usable keys of one provider, heaviest first; declaration order breaks ties. */
export function usableKeys(keys: readonly ProviderKeyRecord[] | undefined, input: RoutePlanInput): ProviderKeyRecord[] {
  if (keys === undefined || keys.length === 0) return [];
  const usable = keys.filter((key) => input.isAvailable(key));
  if (usable.length > 1) usable.sort((left, right) => right.weight - left.weight);
  return usable;
}

/** Platform keys only with the request's explicit permission, and never under `use_byok_only`. */
export function platformAllowed(input: RoutePlanInput): boolean {
  return input.routing.fallback_to_parrotrouter === true && input.routing.use_byok_only !== true;
}
