// The hot path: which key of a rotating pair serves a request. Decided from the rotation's stored
// state and the clock only (no per-process memory), so every instance decides alike; one map
// lookup per candidate, nothing awaited.
//
// - immediate: the new key takes every new request; the old one serves none (requests already in
//   flight finish on it).
// - gradual: the new key's share of new requests rises linearly from 0 to 1 over the grace period. A
//   request lands on the new key when its unit (a hash of its session, or of its request id) is below
//   the share: a session moves once and stays moved; without a session each request draws anew.
// - After old_key_expires_at, the new key only, whatever the job has done yet.
// The pair is one key to every strategy: before routing (`collapsePairs`, the keyResolve hook) the
// strategy is shown one of the two, the old key while it can serve, so pools, weights, sticky sessions
// and a strategy that plans a single key (`direct`) order and pick it exactly as the old key alone.
// After routing (`chooseKeys`, the route hook) the planned key is swapped for the one the rotation
// chooses; a strategy that planned only one key of the pair used to see the new key dropped and fail
// with 503 (QA16: `direct` with an immediate rotation).

import type { ProviderKeyRecord, RequestContext, ResolvedKeys, RouteCandidate } from '../../core/spec/plugin.ts';
import type { ProviderKeyAnnotator } from '../../core/spec/services.ts';
import type { RotationRow } from './store.ts';

export interface RotationsSection extends ProviderKeyAnnotator {
  /** key id → the in-progress rotation it is part of (as old or new key). */
  byKey: ReadonlyMap<string, RotationRow>;
}

/** FNV-1a, spread to [0, 1). */
export function unitOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  // A final avalanche: FNV's low bits alone are poorly spread for short, similar texts.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) / 4294967296;
}

/** The share of new requests the new key takes now (0 to 1). */
export function shareOf(rotation: RotationRow, now: number): number {
  if (rotation.strategy === 'immediate' || now >= rotation.expiresAt) return 1;
  const span = rotation.expiresAt - rotation.startedAt;
  if (span <= 0) return 1;
  return Math.min(1, Math.max(0, (now - rotation.startedAt) / span));
}

export function buildSection(rotations: readonly RotationRow[]): RotationsSection {
  const byKey = new Map<string, RotationRow>();
  for (const rotation of rotations) {
    byKey.set(rotation.oldKeyId, rotation);
    byKey.set(rotation.newKeyId, rotation);
  }
  return {
    byKey,
    annotate(keyId, now) {
      const rotation = byKey.get(keyId);
      if (rotation === undefined) return undefined;
      const share = shareOf(rotation, now);
      const old = keyId === rotation.oldKeyId;
      return {
        rotation: {
          id: rotation.id,
          status: now >= rotation.expiresAt ? (old ? 'retired' : 'active') : 'in_progress',
          role: old ? 'old' : 'new',
          strategy: rotation.strategy,
          started_at: new Date(rotation.startedAt).toISOString(),
          old_key_expires_at: new Date(rotation.expiresAt).toISOString(),
          share: Math.round((old ? 1 - share : share) * 1000) / 1000,
        },
      };
    },
  };
}

const stickyOf = (context: RequestContext): string | undefined =>
  context.headers.get('x-session-id') ?? (typeof context.request.user === 'string' ? context.request.user : undefined);

/** Whether a key can take a request now (the health monitor's word). */
export type KeyAvailable = (key: ProviderKeyRecord) => boolean;

/** The context.state entry: the key each rotating pair showed the strategy → its partner, set aside. */
export const SET_ASIDE_STATE = 'rotation:set-aside';

const partnerIdOf = (rotation: RotationRow, keyId: string): string => (keyId === rotation.oldKeyId ? rotation.newKeyId : rotation.oldKeyId);

/** One provider's keys with each rotating pair shown as one key; `setAside` collects the hidden partners. */
function collapsePool(
  keys: readonly ProviderKeyRecord[],
  section: RotationsSection,
  available: KeyAvailable,
  setAside: Map<string, ProviderKeyRecord>,
): readonly ProviderKeyRecord[] {
  let kept: ProviderKeyRecord[] | undefined;
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as ProviderKeyRecord;
    const rotation = section.byKey.get(key.id);
    const partnerId = rotation === undefined ? undefined : partnerIdOf(rotation, key.id);
    const partner = partnerId === undefined ? undefined : keys.find((other) => other.id === partnerId);
    // The old key stands for the pair while it can serve; the new key only when the old one cannot.
    const shown = partner === undefined || (key.id === rotation?.oldKeyId ? available(key) || !available(partner) : !available(partner));
    if (shown) {
      kept?.push(key);
      continue;
    }
    kept ??= keys.slice(0, index);
    setAside.set(partner.id, key);
  }
  return kept ?? keys;
}

function collapseByProvider(
  pools: ReadonlyMap<string, readonly ProviderKeyRecord[]>,
  section: RotationsSection,
  available: KeyAvailable,
  setAside: Map<string, ProviderKeyRecord>,
): ReadonlyMap<string, readonly ProviderKeyRecord[]> {
  let changed: Map<string, readonly ProviderKeyRecord[]> | undefined;
  for (const [provider, keys] of pools) {
    const collapsed = collapsePool(keys, section, available, setAside);
    if (collapsed === keys) continue;
    changed ??= new Map(pools);
    changed.set(provider, collapsed);
  }
  return changed ?? pools;
}

/** Before routing: each rotating pair in the request's keys is shown to the strategy as one key. */
export function collapsePairs(context: RequestContext, section: RotationsSection | undefined, available: KeyAvailable): void {
  const keys = context.keys;
  if (section === undefined || section.byKey.size === 0 || keys === undefined) return;
  const setAside = new Map<string, ProviderKeyRecord>();
  const collapsed: ResolvedKeys = {
    account: collapseByProvider(keys.account, section, available, setAside),
    platform: collapseByProvider(keys.platform, section, available, setAside),
  };
  if (setAside.size === 0) return;
  context.keys = collapsed;
  context.state.set(SET_ASIDE_STATE, setAside);
}

/** After routing: each planned key of a rotating pair is replaced by the key the rotation chooses, in its place. */
export function chooseKeys(context: RequestContext, section: RotationsSection | undefined, now: number, available: KeyAvailable): void {
  if (section === undefined || section.byKey.size === 0) return;
  const candidates = context.candidates;
  let involved = false;
  for (const candidate of candidates) if (section.byKey.has(candidate.key.id)) involved = true;
  if (!involved) return;
  const setAside = context.state.get(SET_ASIDE_STATE) as ReadonlyMap<string, ProviderKeyRecord> | undefined;
  const chosen: RouteCandidate[] = [];
  const fallbacks: RouteCandidate[] = [];
  for (const candidate of candidates) {
    const rotation = section.byKey.get(candidate.key.id);
    if (rotation === undefined) {
      chosen.push(candidate);
      continue;
    }
    const partner = setAside?.get(candidate.key.id);
    const isOld = candidate.key.id === rotation.oldKeyId;
    const oldKey = isOld ? candidate.key : partner;
    const newKey = isOld ? partner : candidate.key;
    const as = (key: ProviderKeyRecord): RouteCandidate => (key === candidate.key ? candidate : { ...candidate, key });
    if (shareOf(rotation, now) >= 1) {
      // The old key takes no new request. Only when the new key cannot serve at all (removed, or held
      // back by health) does the old one, until it expires, rather than the request failing.
      if (newKey !== undefined && (newKey === candidate.key || available(newKey))) chosen.push(as(newKey));
      else if (oldKey !== undefined && now < rotation.expiresAt) fallbacks.push(as(oldKey));
      continue;
    }
    // Gradual, with one side gone (removed, or held back by health): the other serves alone.
    if (oldKey === undefined || newKey === undefined || !available(partner as ProviderKeyRecord)) {
      chosen.push(candidate);
      continue;
    }
    const unit = unitOf(`${stickyOf(context) ?? context.requestId}\u0000${rotation.id}`);
    const [first, second] = unit < shareOf(rotation, now) ? [newKey, oldKey] : [oldKey, newKey];
    chosen.push(as(first));
    // During a gradual grace period both keys are good: the other one is the last resort.
    fallbacks.push(as(second));
  }
  for (const fallback of fallbacks) chosen.push(fallback);
  context.candidates = chosen;
}
