// Rotation's `notification_webhooks` at rest, sealed as alert rules' targets are
// (../alerts/sealed-lists.ts): a rotation's in `key_rotations`, a schedule's in
// `key_rotation_schedules` (an earlier release kept those in the `options` JSON). Opened once per stored
// value into memory: the rotations in progress when the snapshot loads, the rest when first read, so
// the completion's notification decrypts nothing.

import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { JobDefinition } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { SealedLists, untilDone, type OpenedList, type SealedListColumns, type SealedListPlace } from '../alerts/sealed-lists.ts';

type Row = Record<string, unknown>;

const SEALED_COLUMNS = { ciphertextColumn: 'webhooks_ciphertext', backendColumn: 'webhooks_backend', keyVersionColumn: 'webhooks_key_version' };

const ROTATION_WEBHOOKS: SealedListPlace = {
  name: 'rotation:key_rotations',
  table: 'key_rotations',
  idColumn: 'id',
  ...SEALED_COLUMNS,
  bindingColumns: ['owner', 'account_id'],
  // A platform key's rotation belongs to no account.
  binding: (row) => `rotation-webhooks:${String(row.owner)}:${String(row.account_id ?? '')}:${String(row.id)}`,
  plaintext: { column: 'notification_webhooks' },
  what: 'rotation notification webhooks',
};

const SCHEDULE_WEBHOOKS: SealedListPlace = {
  name: 'rotation:key_rotation_schedules',
  table: 'key_rotation_schedules',
  idColumn: 'id',
  ...SEALED_COLUMNS,
  bindingColumns: ['account_id'],
  binding: (row) => `rotation-schedule-webhooks:${String(row.account_id)}:${String(row.id)}`,
  plaintext: { column: 'options', field: 'notification_webhooks' },
  what: 'rotation schedule notification webhooks',
};

export class RotationWebhooks {
  private readonly rotations: SealedLists;
  private readonly schedules: SealedLists;

  constructor(services: Services) {
    this.rotations = new SealedLists(services, ROTATION_WEBHOOKS);
    this.schedules = new SealedLists(services, SCHEDULE_WEBHOOKS);
  }

  holders(): CiphertextHolder[] {
    return [this.rotations.holder(), this.schedules.holder()];
  }

  sealRotation(rotation: { id: string; owner: string; accountId: string | null }, webhooks: readonly string[]): Promise<SealedListColumns> {
    return this.rotations.seal({ id: rotation.id, owner: rotation.owner, account_id: rotation.accountId }, webhooks);
  }

  sealSchedule(schedule: { id: string; accountId: string }, webhooks: readonly string[]): Promise<SealedListColumns> {
    return this.schedules.seal({ id: schedule.id, account_id: schedule.accountId }, webhooks);
  }

  /** Each rotation row's webhooks, from memory where that stored list was opened before. */
  ofRotations(rows: readonly Row[]): Promise<OpenedList[]> {
    return Promise.all(rows.map((row) => this.rotations.open(row)));
  }

  ofSchedules(rows: readonly Row[]): Promise<OpenedList[]> {
    return Promise.all(rows.map((row) => this.schedules.open(row)));
  }

  /**
   * Once per process, a second after the start: the lists an earlier release stored in plaintext are
   * sealed, and the schedules' lists opened into memory (the rotations in progress are opened by the
   * snapshot; a finished rotation's list is only counted in answers, opened when first read).
   */
  startJob(): JobDefinition {
    return {
      name: 'rotation-seal-webhooks',
      intervalMs: 1_000,
      run: untilDone(async () => {
        await this.rotations.sealPlaintext();
        await this.schedules.sealPlaintext();
        await this.schedules.openStored();
      }),
    };
  }
}
