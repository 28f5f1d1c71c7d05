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
// The pair takes the old key's place in the strategy's order, so pools, weights and sticky sessions
// order it exactly as they ordered the old key alone (scores are per key, independent of the others).

import type { RequestContext, RouteCandidate } from '../../core/spec/plugin.ts';
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

/** Rewrites the candidates so each rotating pair holds one place, the old key's, with the chosen key. */
export function chooseKeys(context: RequestContext, section: RotationsSection | undefined, now: number): void {
  if (section === undefined || section.byKey.size === 0) return;
  const candidates = context.candidates;
  let involved = false;
  for (const candidate of candidates) if (section.byKey.has(candidate.key.id)) involved = true;
  if (!involved) return;
  const chosen: RouteCandidate[] = [];
  const fallbacks: RouteCandidate[] = [];
  for (const candidate of candidates) {
    const rotation = section.byKey.get(candidate.key.id);
    if (rotation === undefined) {
      chosen.push(candidate);
      continue;
    }
    const partner = candidates.find((other) => other.key.id === (candidate.key.id === rotation.oldKeyId ? rotation.newKeyId : rotation.oldKeyId));
    const isOld = candidate.key.id === rotation.oldKeyId;
    const share = shareOf(rotation, now);
    if (share >= 1) {
      // The old key takes no new request; the new key keeps its own place in the order. Only when the new
      // key cannot serve at all (removed, or held back by health) does the old one, until it expires,
      // rather than the request failing.
      if (!isOld) chosen.push(candidate);
      else if (partner === undefined && now < rotation.expiresAt) fallbacks.push(candidate);
      continue;
    }
    if (!isOld) {
      // The new key is placed where the old key stands; alone (old key unavailable) it keeps its own place.
      if (partner === undefined) chosen.push(candidate);
      continue;
    }
    const unit = unitOf(`${stickyOf(context) ?? context.requestId}\u0000${rotation.id}`);
    if (partner === undefined || unit >= share) {
      chosen.push(candidate);
      if (partner !== undefined) fallbacks.push(partner);
    } else {
      chosen.push(partner);
      // During a gradual grace period both keys are good: the other one is the last resort.
      fallbacks.push(candidate);
    }
  }
  for (const fallback of fallbacks) chosen.push(fallback);
  context.candidates = chosen;
}
