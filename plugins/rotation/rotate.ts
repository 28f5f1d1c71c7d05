// Starting and completing a rotation. Start: pick the old key, optionally test the new one with the
// provider's free call, store it beside the old one (same settings, weight and organization), record
// the rotation, refresh the snapshot once, notify. Complete: once old_key_expires_at passed, the old
// key is removed, then one instance claims the rotation (a conditional update) and notifies.

import type { KeyReference } from '../../core/spec/key-source.ts';
import type { KeyOwner } from '../../core/spec/provider.ts';
import { PROVIDER_KEY_ANNOTATIONS_SECTION, type ProviderKeyView, type Services } from '../../core/spec/services.ts';
import { sendSignedWebhook } from '../webhooks/index.ts';
import { withoutAddresses } from '../../core/wire/outbound.ts';
import type { RotationsSection } from './choose.ts';
import { claimCompletion, insertRotation, rotationById, type RotationRow, type RotationStrategy } from './store.ts';
import type { RotationWebhooks } from './webhooks.ts';

export const ROTATIONS_SECTION = PROVIDER_KEY_ANNOTATIONS_SECTION;
/** The account the operator key acts in (the core's `default` account). */
const OPERATOR_ACCOUNT_ID = 'default';

export interface StartRotation {
  accountId: string | null;
  owner: KeyOwner;
  provider: string;
  keyId: string | undefined;
  newApiKey: string;
  strategy: RotationStrategy;
  gracePeriodMinutes: number;
  testBeforeSwitch: boolean;
  notificationWebhooks: string[];
  actor: string;
  scheduleId?: string;
  sourceReference?: KeyReference;
  sourceVersion?: string;
}

/** The key a rotation replaces: the one named, or the provider's only key not already being replaced. */
export function pickOldKey(services: Services, accountId: string | null, provider: string, keyId: string | undefined): ProviderKeyView {
  const keys = services.providerKeys.list(accountId).filter((key) => key.provider === provider);
  const rotating = services.snapshot.section<RotationsSection>(ROTATIONS_SECTION)?.byKey;
  if (keyId !== undefined) {
    const named = keys.find((key) => key.id === keyId);
    if (named === undefined) throw services.errors.create('not_found', { detail: `No ${provider} provider key ${keyId} here.` });
    const running = rotating?.get(named.id);
    // A key that is either side of a rotation in progress waits for it: chains of half-done rotations are not allowed.
    if (running !== undefined)
      throw services.errors.create('conflict', {
        detail: `Provider key ${named.id} is part of rotation ${running.id}, in progress until ${new Date(running.expiresAt).toISOString()}.`,
      });
    return named;
  }
  const candidates = keys.filter((key) => rotating?.get(key.id) === undefined);
  if (candidates.length === 0) {
    if (keys.length > 0)
      throw services.errors.create('conflict', { detail: `Every ${provider} provider key here is part of a rotation in progress; wait for it to complete.` });
    throw services.errors.create('not_found', { detail: `No ${provider} provider key to rotate; add one with POST /v1/providers/keys.` });
  }
  if (candidates.length > 1)
    throw services.errors.create(
      'invalid_field',
      {
        param: 'key_id',
        detail: `this account has ${candidates.length} ${provider} keys (${candidates.map((key) => key.id).join(', ')}); name the one to rotate`,
      },
      { param: 'key_id' },
    );
  return candidates[0] as ProviderKeyView;
}

export class Rotations {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly services: Services,
    /** The sealed `notification_webhooks` of rotations and schedules. */
    readonly webhooks: RotationWebhooks,
  ) {}

  async start(input: StartRotation): Promise<RotationRow> {
    const services = this.services;
    const old = pickOldKey(services, input.accountId, input.provider, input.keyId);
    const print = services.providerKeys.fingerprint(input.newApiKey);
    const same = services.providerKeys.list(input.accountId).find((key) => key.provider === input.provider && key.fingerprint === print);
    if (same !== undefined)
      throw services.errors.create('conflict', { detail: `This ${input.provider} key is already stored as ${same.id}.` }, { param: 'new_api_key' });
    let tested = false;
    if (input.testBeforeSwitch) {
      const outcome = await services.providerKeys.test({
        provider: input.provider,
        apiKey: input.newApiKey,
        organizationId: old.organizationId,
        settings: old.settings,
      });
      if (!outcome.ok)
        throw services.errors.create(
          'rotation_test_failed',
          { detail: `The new key failed its test (listing models): ${outcome.error}. Nothing was changed; ${old.id} stays in use.` },
          { param: 'new_api_key', extra: { reason: outcome.reason } },
        );
      tested = true;
    }
    const added = await services.providerKeys.add({
      owner: input.owner,
      accountId: input.accountId,
      provider: input.provider,
      apiKey: input.newApiKey,
      organizationId: old.organizationId,
      settings: old.settings,
      weight: old.weight,
    });
    const now = services.clock.now();
    const rotation: RotationRow = {
      id: services.credentials.randomId('rot'),
      accountId: input.accountId,
      owner: input.owner,
      provider: input.provider,
      oldKeyId: old.id,
      newKeyId: added.id,
      strategy: input.strategy,
      gracePeriodMinutes: input.gracePeriodMinutes,
      startedAt: now,
      expiresAt: now + Math.round(input.gracePeriodMinutes * 60_000),
      status: 'in_progress',
      completedAt: null,
      tested,
      notificationWebhooks: input.notificationWebhooks,
      scheduleId: input.scheduleId ?? null,
      sourceReference: input.sourceReference ?? null,
      sourceVersion: input.sourceVersion ?? null,
      createdBy: input.actor,
    };
    try {
      await insertRotation(services.store, this.webhooks, rotation);
    } catch (error) {
      await services.providerKeys.remove(added.id, input.owner, input.accountId);
      if (/unique/i.test(String(error))) throw services.errors.create('conflict', { detail: `Provider key ${old.id} is already being rotated.` });
      throw error;
    }
    // One refresh: the new key appears together with the rotation that places it.
    await services.snapshot.refresh();
    services.logger.info(
      { rotationId: rotation.id, provider: rotation.provider, oldKeyId: old.id, newKeyId: added.id, strategy: rotation.strategy },
      'provider key rotation started',
    );
    this.notify(rotation, 'key_rotation.started', added);
    return rotation;
  }

  /** Completes every rotation whose grace period ended; each is completed by one instance only. */
  async completeDue(): Promise<void> {
    const services = this.services;
    const now = services.clock.now();
    const due = await services.store.query("SELECT id FROM key_rotations WHERE status = 'in_progress' AND expires_at <= ?", [now]);
    let changed = false;
    for (const row of due) {
      const id = String(row.id);
      const ending = await rotationById(services.store, this.webhooks, id);
      if (ending === undefined || ending.status !== 'in_progress') continue;
      // The old key goes before the rotation is marked completed: a snapshot loaded between the two
      // writes still holds the rotation, which sends every request to the new key. The other order
      // showed two ordinary keys there, the retired one among them.
      if (await services.providerKeys.remove(ending.oldKeyId, ending.owner, ending.accountId)) changed = true;
      if (!(await claimCompletion(services.store, id, now))) continue;
      const completed = await rotationById(services.store, this.webhooks, id);
      if (completed === undefined) continue;
      changed = true;
      services.logger.info({ rotationId: id, oldKeyId: completed.oldKeyId, newKeyId: completed.newKeyId }, 'provider key rotation completed: old key retired');
      this.notify(completed, 'key_rotation.completed', services.providerKeys.get(completed.newKeyId));
      this.track(this.revokeMinted(completed));
    }
    if (changed) await services.snapshot.refresh();
  }

  /** A key source that minted the old key revokes it once it is retired. */
  private async revokeMinted(rotation: RotationRow): Promise<void> {
    const services = this.services;
    if (rotation.sourceReference === null) return;
    const source = services.keySources.get(rotation.sourceReference.source);
    if (source?.revoke === undefined) return;
    const minted = await services.store.query('SELECT source_version FROM key_rotations WHERE new_key_id = ? AND source_version IS NOT NULL', [
      rotation.oldKeyId,
    ]);
    const version = minted[0]?.source_version;
    if (typeof version !== 'string') return;
    try {
      await source.revoke(rotation.sourceReference, version, { accountId: rotation.accountId, provider: rotation.provider, keyId: rotation.oldKeyId });
    } catch (error) {
      services.logger.warn({ rotationId: rotation.id, error: services.errors.redact(String(error)) }, 'the key source could not revoke the retired key');
    }
  }

  private notify(rotation: RotationRow, event: 'key_rotation.started' | 'key_rotation.completed', newKey: ProviderKeyView | undefined): void {
    if (rotation.notificationWebhooks.length === 0) return;
    // Platform keys belong to no account: their notifications are signed with the secret of the operator's own account.
    const signer = rotation.accountId ?? OPERATOR_ACCOUNT_ID;
    const body = JSON.stringify({
      event,
      created_at: new Date(this.services.clock.now()).toISOString(),
      rotation: describeRotation(rotation, this.services.clock.now()),
      new_key: newKey === undefined ? null : { key_id: newKey.id, masked_key: newKey.maskedKey, fingerprint: newKey.fingerprint },
    });
    for (const url of rotation.notificationWebhooks) this.track(this.deliver(signer, url, event, body));
  }

  private async deliver(accountId: string, url: string, event: string, body: string): Promise<void> {
    const deliveryId = this.services.credentials.randomId('whd');
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await sendSignedWebhook(this.services, { accountId, url, event, body, deliveryId });
        return;
      } catch (error) {
        if (attempt === 3)
          this.services.logger.warn({ event, deliveryId, error: withoutAddresses((error as Error).message) }, 'rotation webhook not delivered');
        else await Bun.sleep(250 * attempt);
      }
    }
  }

  private track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Resolves when every notification started so far has been delivered or given up (tests). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

/** A rotation as the API answers it. */
export function describeRotation(rotation: RotationRow, now: number): Record<string, unknown> {
  const expired = now >= rotation.expiresAt;
  const span = rotation.expiresAt - rotation.startedAt;
  const share = rotation.strategy === 'immediate' || expired || span <= 0 ? 1 : Math.max(0, (now - rotation.startedAt) / span);
  return {
    id: rotation.id,
    object: 'key_rotation',
    status: rotation.status === 'completed' ? 'completed' : 'in_progress',
    provider: rotation.provider,
    old_key_id: rotation.oldKeyId,
    new_key_id: rotation.newKeyId,
    rotation_strategy: rotation.strategy,
    grace_period_minutes: rotation.gracePeriodMinutes,
    tested: rotation.tested,
    started_at: new Date(rotation.startedAt).toISOString(),
    old_key_expires_at: new Date(rotation.expiresAt).toISOString(),
    old_key_retired: rotation.status === 'completed' || expired,
    completed_at: rotation.completedAt === null ? null : new Date(rotation.completedAt).toISOString(),
    new_key_share: Math.round(share * 1000) / 1000,
    schedule_id: rotation.scheduleId,
    notification_webhooks: rotation.notificationWebhooks.length,
  };
}
