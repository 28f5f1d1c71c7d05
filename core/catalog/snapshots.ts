// A model's dated snapshots: the names a provider answers an alias with (`gpt-4o` → `gpt-4o-2024-08-06`,
// `claude-sonnet-4-5` → `claude-sonnet-4-5-20250929`, `gpt-4` → `gpt-4-0613`). A budget reserves for
// the dearest of them, since the provider, not the client, picks which one serves the call; and a usage
// row is priced by the served name only when it is one of them (costs.md, "The model booked").

import type { ModelCatalog, ModelInfo } from './catalog.ts';

const SNAPSHOT_SUFFIX = /^-(\d{4}-\d{2}-\d{2}|\d{8}|(?:0[1-9]|1[0-2])\d{2})$/;
const ENDS_IN_SNAPSHOT = /-(\d{4}-\d{2}-\d{2}|\d{8}|(?:0[1-9]|1[0-2])\d{2})$/;

/** The name a dated snapshot is a snapshot of (`gpt-4o-2024-08-06` → `gpt-4o`); undefined for an undated name. */
export function snapshotBase(name: string): string | undefined {
  const match = ENDS_IN_SNAPSHOT.exec(name);
  return match === null || match.index === 0 ? undefined : name.slice(0, match.index);
}

/** Whether `served` is `base` itself or one of its dated snapshots. */
export function isSnapshotOf(served: string, base: string): boolean {
  return served === base || (served.startsWith(base) && SNAPSHOT_SUFFIX.test(served.slice(base.length)));
}

/** `model`'s own entry and its dated snapshots' entries that `provider` has in the catalog. */
export function snapshotFamily(catalog: ModelCatalog, provider: string, model: string): ModelInfo[] {
  const family: ModelInfo[] = [];
  const own = catalog.get(provider, model);
  if (own !== undefined) family.push(own);
  for (const name of catalog.names()) {
    if (name === model || !isSnapshotOf(name, model)) continue;
    const info = catalog.get(provider, name);
    if (info !== undefined) family.push(info);
  }
  return family;
}
