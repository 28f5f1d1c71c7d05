// Rotation schedules: due runs claimed once per cluster (a conditional update of next_run_at), then
// either a rotation with a key fetched (or minted) from the schedule's key source, or a `rotation_due`
// alert to notification_email and the account's rotation_due alert channels. Also the account's
// maximum key age: a key older than it raises `rotation_due` once per key per age period.

import type { Services } from '../../core/spec/services.ts';
import { raiseAlert } from '../alerts/raise.ts';
import { nextRun, parseCron } from './cron.ts';
import type { Rotations } from './rotate.ts';
import { claimRun, dueSchedules, recordRun, type ScheduleRow } from './store.ts';

export const KEY_POLICY_SETTING = 'key_rotation_policy';
const DAY_MS = 86_400_000;
/** A schedule whose expression can no longer run (never: it was checked when stored) parks far away. */
const NEVER = 8_640_000_000_000_000;

export interface KeyPolicy {
  max_key_age_days?: number;
  notification_email?: string;
}

export function nextRunOf(schedule: Pick<ScheduleRow, 'schedule' | 'timezone'>, after: number): number {
  return nextRun(parseCron(schedule.schedule), after, schedule.timezone) ?? NEVER;
}

export class ScheduleRunner {
  /** key id + age period → raised: the alert store de-duplicates too, this spares it the asking. */
  private readonly raisedAges = new Set<string>();

  constructor(
    private readonly services: Services,
    private readonly rotations: Rotations,
  ) {}

  /** Runs every due schedule this instance manages to claim. */
  async runDue(): Promise<number> {
    const now = this.services.clock.now();
    let ran = 0;
    for (const schedule of await dueSchedules(this.services.store, this.rotations.webhooks, now)) {
      if (!(await claimRun(this.services.store, schedule, nextRunOf(schedule, now), now))) continue;
      ran++;
      await this.runOnce(schedule, now);
    }
    return ran;
  }

  private async runOnce(schedule: ScheduleRow, now: number): Promise<void> {
    const services = this.services;
    if (schedule.keySource === null) {
      await this.raiseDue(
        schedule,
        now,
        `The scheduled rotation (${schedule.schedule}, ${schedule.timezone}) of this account's ${schedule.provider} key is due.`,
      );
      await recordRun(services.store, schedule.id, 'alerted', null);
      return;
    }
    try {
      const rotation = await this.rotateFromSource(schedule);
      await recordRun(services.store, schedule.id, 'rotated', null);
      services.logger.info({ scheduleId: schedule.id, rotationId: rotation }, 'scheduled rotation started');
    } catch (error) {
      const message = services.errors.redact(error instanceof Error ? error.message : String(error));
      await recordRun(services.store, schedule.id, 'failed', message);
      services.logger.warn({ scheduleId: schedule.id, error: message }, 'scheduled rotation failed');
      await this.raiseDue(schedule, now, `The scheduled rotation of this account's ${schedule.provider} key failed: ${message}`);
    }
  }

  private async rotateFromSource(schedule: ScheduleRow): Promise<string> {
    const services = this.services;
    const reference = schedule.keySource;
    if (reference === null) throw new Error('no key source');
    const source = services.keySources.get(reference.source);
    if (source === undefined) throw new Error(`the key source '${reference.source}' is not loaded`);
    const context = { accountId: schedule.accountId, provider: schedule.provider, keyId: schedule.keyId ?? undefined };
    const fetched = source.mint === undefined ? await source.fetch(reference, context) : await source.mint(reference, context);
    const options = schedule.options;
    const rotation = await this.rotations.start({
      accountId: schedule.accountId,
      owner: 'account',
      provider: schedule.provider,
      keyId: schedule.keyId ?? undefined,
      newApiKey: fetched.apiKey,
      strategy: options.rotation_strategy ?? 'gradual',
      gracePeriodMinutes: options.grace_period_minutes ?? 60,
      testBeforeSwitch: options.test_before_switch ?? true,
      notificationWebhooks: options.notification_webhooks ?? [],
      actor: `schedule:${schedule.id}`,
      scheduleId: schedule.id,
      sourceReference: reference,
      sourceVersion: fetched.version,
    });
    return rotation.id;
  }

  private async raiseDue(schedule: ScheduleRow, now: number, message: string): Promise<void> {
    await raiseAlert(this.services, {
      accountId: schedule.accountId,
      type: 'rotation_due',
      subject: schedule.id,
      period: new Date(now).toISOString().slice(0, 16),
      message,
      details: { schedule_id: schedule.id, provider: schedule.provider, schedule: schedule.schedule, timezone: schedule.timezone, key_id: schedule.keyId },
      targets: schedule.notificationEmail === null ? [] : [schedule.notificationEmail],
      match: { provider: schedule.provider },
    });
  }

  /** Raises rotation_due for every key older than its account's max_key_age_days, once per key per period. */
  async checkKeyAges(): Promise<void> {
    const services = this.services;
    const now = services.clock.now();
    for (const account of services.snapshot.current.accounts.values()) {
      const policy = account.settings[KEY_POLICY_SETTING] as KeyPolicy | undefined;
      const maxDays = policy?.max_key_age_days;
      if (maxDays === undefined) continue;
      for (const key of services.providerKeys.list(account.id)) {
        const ageDays = (now - Date.parse(key.createdAt)) / DAY_MS;
        if (!(ageDays >= maxDays)) continue;
        const period = `age-${Math.floor(ageDays / maxDays)}`;
        const marker = `${key.id}\u0000${period}`;
        if (this.raisedAges.has(marker)) continue;
        this.raisedAges.add(marker);
        await raiseAlert(services, {
          accountId: account.id,
          type: 'rotation_due',
          subject: key.id,
          period,
          message: `The ${key.provider} key ${key.id} (${key.maskedKey}) is ${Math.floor(ageDays)} days old; the account's maximum key age is ${maxDays} days. Rotate it.`,
          details: { key_id: key.id, provider: key.provider, age_days: Math.floor(ageDays), max_key_age_days: maxDays },
          targets: policy?.notification_email === undefined ? [] : [policy.notification_email],
          match: { provider: key.provider },
        });
      }
    }
  }
}
