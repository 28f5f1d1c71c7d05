// The accounts' admin keys for the providers' organisation reports: sealed with the crypto backend
// provider keys use (services.secrets), bound to their row, answered only masked, opened only for a
// report call. The settings that go with them (thresholds, alert targets) live here too, their
// `notify` list sealed at rest as alert rules' targets are (../alerts/sealed-lists.ts).

import { createHash } from 'node:crypto';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { Services } from '../../core/spec/services.ts';
import { SealedLists, type SealedListPlace } from '../alerts/sealed-lists.ts';
import { DEFAULT_SETTINGS, isReconciledProvider, type ReconciledProvider, type ReconciliationSettings } from './schema.ts';

export interface AdminKeyListing {
  accountId: string;
  provider: ReconciledProvider;
  id: string;
  maskedKey: string;
  fingerprint: string;
  createdAt: string;
  /** The projects (OpenAI) or workspaces (Anthropic) the reports are narrowed to; empty for the whole organisation. */
  scope: string[];
}

interface AdminKeyRow extends AdminKeyListing {
  ciphertext: string;
  cryptoBackend: string;
}

/** What the ciphertext is bound to: moved to another account, provider or row, it no longer opens. */
function binding(accountId: string, provider: string, id: string): string {
  return `reconciliation-admin-key:${accountId}:${provider}:${id}`;
}

/** The admin keys for master-key rotation, paged by their row id (unique: a new one per key stored). */
export function adminKeyHolder(services: Pick<Services, 'store'>): CiphertextHolder {
  return tableCiphertextHolder(services, {
    name: 'reconciliation:reconciliation_admin_keys',
    table: 'reconciliation_admin_keys',
    idColumn: 'id',
    ciphertextColumn: 'ciphertext',
    backendColumn: 'crypto_backend',
    keyVersionColumn: 'key_version',
    bindingColumns: ['account_id', 'provider'],
    binding: (row) => binding(String(row.account_id), String(row.provider), String(row.id)),
  });
}

export function adminKeyFingerprint(key: string): string {
  return `sha256:${createHash('sha256').update(`keyway-admin-key:${key}`).digest('hex').slice(0, 16)}`;
}

function scopeOf(text: unknown): string[] {
  try {
    const value = JSON.parse(String(text)) as unknown;
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

function toRow(row: Record<string, unknown>): AdminKeyRow | undefined {
  const provider = String(row.provider);
  if (!isReconciledProvider(provider)) return undefined;
  return {
    accountId: String(row.account_id),
    provider,
    id: String(row.id),
    maskedKey: String(row.masked_key),
    fingerprint: String(row.fingerprint),
    createdAt: String(row.created_at),
    scope: scopeOf(row.scope),
    ciphertext: String(row.ciphertext),
    cryptoBackend: String(row.crypto_backend),
  };
}

function listing(row: AdminKeyRow): AdminKeyListing {
  const { ciphertext: _ciphertext, cryptoBackend: _backend, ...rest } = row;
  return rest;
}

export function describeAdminKey(key: AdminKeyListing): Record<string, unknown> {
  const scope = key.provider === 'openai' ? { project_ids: key.scope } : { workspace_ids: key.scope };
  return { provider: key.provider, key_id: key.id, masked_key: key.maskedKey, fingerprint: key.fingerprint, ...scope, created_at: key.createdAt };
}

export class AdminKeys {
  constructor(private readonly services: Services) {}

  private async rows(accountId?: string): Promise<AdminKeyRow[]> {
    const sql = 'SELECT account_id, provider, id, ciphertext, crypto_backend, masked_key, fingerprint, created_at, scope FROM reconciliation_admin_keys';
    const rows = accountId === undefined ? await this.services.store.query(sql) : await this.services.store.query(`${sql} WHERE account_id = ?`, [accountId]);
    return rows.map(toRow).filter((row): row is AdminKeyRow => row !== undefined);
  }

  async list(accountId?: string): Promise<AdminKeyListing[]> {
    return (await this.rows(accountId)).map(listing);
  }

  /** Seals and stores the key, replacing the account's previous one for that provider. */
  async put(accountId: string, provider: ReconciledProvider, key: string, scope: string[]): Promise<AdminKeyListing> {
    const id = this.services.credentials.randomId('rak');
    const sealed = await this.services.secrets.seal(key, binding(accountId, provider, id));
    const row: AdminKeyListing = {
      accountId,
      provider,
      id,
      maskedKey: this.services.credentials.maskKey(key),
      fingerprint: adminKeyFingerprint(key),
      createdAt: new Date(this.services.clock.now()).toISOString(),
      scope,
    };
    await this.services.store.execute(
      `INSERT INTO reconciliation_admin_keys (account_id, provider, id, ciphertext, crypto_backend, key_version, masked_key, fingerprint, created_at, scope)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, provider) DO UPDATE SET id = excluded.id, ciphertext = excluded.ciphertext, crypto_backend = excluded.crypto_backend,
         key_version = excluded.key_version, masked_key = excluded.masked_key, fingerprint = excluded.fingerprint, created_at = excluded.created_at,
         scope = excluded.scope`,
      [accountId, provider, id, sealed.ciphertext, sealed.backend, sealed.keyVersion, row.maskedKey, row.fingerprint, row.createdAt, JSON.stringify(scope)],
    );
    await this.reclaimReplaced();
    return row;
  }

  /**
   * A replaced or removed key's row is gone from the table; the files may still hold it as it was (the
   * WAL's earlier page image), where it would open for whoever holds the master key and a copy. The
   * change is stored whatever happens here, so a store too busy to reclaim now is logged, not answered.
   */
  private async reclaimReplaced(): Promise<void> {
    await this.services.store.reclaimReplacedRows?.(['reconciliation_admin_keys'])?.catch((error: unknown) => {
      this.services.logger.warn(
        { error: error instanceof Error ? error.message : String(error) },
        'the replaced reconciliation admin key is left to the next WAL checkpoint',
      );
    });
  }

  /** False when the account had no key for that provider. */
  async remove(accountId: string, provider: ReconciledProvider): Promise<boolean> {
    const existing = await this.services.store.query('SELECT id FROM reconciliation_admin_keys WHERE account_id = ? AND provider = ?', [accountId, provider]);
    if (existing.length === 0) return false;
    await this.services.store.execute('DELETE FROM reconciliation_admin_keys WHERE account_id = ? AND provider = ?', [accountId, provider]);
    await this.reclaimReplaced();
    return true;
  }

  /** The plaintext key and its scope, for one report; undefined when none is stored. */
  async open(accountId: string, provider: ReconciledProvider): Promise<{ adminKey: string; scope: string[] } | undefined> {
    const row = (await this.rows(accountId)).find((candidate) => candidate.provider === provider);
    if (row === undefined) return undefined;
    const adminKey = await this.services.secrets.open({ ciphertext: row.ciphertext, backend: row.cryptoBackend }, binding(row.accountId, row.provider, row.id));
    return { adminKey, scope: row.scope };
  }
}

/** Where the settings' `notify` list is sealed; an earlier release kept it in the `settings` JSON. */
const SETTINGS_NOTIFY: SealedListPlace = {
  name: 'reconciliation:reconciliation_settings',
  table: 'reconciliation_settings',
  idColumn: 'account_id',
  ciphertextColumn: 'notify_ciphertext',
  backendColumn: 'notify_backend',
  keyVersionColumn: 'notify_key_version',
  bindingColumns: [],
  binding: (row) => `reconciliation-notify:${String(row.account_id)}`,
  plaintext: { column: 'settings', field: 'notify' },
  what: 'reconciliation notify targets',
};

export class SettingsStore {
  /** The `notify` lists, opened once per stored value and kept in memory (the daily job reads them per account). */
  readonly notify: SealedLists;

  constructor(private readonly services: Services) {
    this.notify = new SealedLists(services, SETTINGS_NOTIFY);
  }

  async get(accountId: string): Promise<ReconciliationSettings> {
    const rows = await this.services.store.query(
      'SELECT account_id, settings, notify_ciphertext, notify_backend FROM reconciliation_settings WHERE account_id = ?',
      [accountId],
    );
    const row = rows[0];
    if (row === undefined || typeof row.settings !== 'string') return { ...DEFAULT_SETTINGS };
    let stored: Partial<ReconciliationSettings> = {};
    try {
      stored = JSON.parse(row.settings) as Partial<ReconciliationSettings>;
    } catch {
      // unreadable settings are the defaults
    }
    return { ...DEFAULT_SETTINGS, ...stored, notify: (await this.notify.open(row)).targets };
  }

  async update(accountId: string, changes: Partial<ReconciliationSettings>): Promise<ReconciliationSettings> {
    const merged = { ...(await this.get(accountId)), ...changes };
    const { notify, ...unsealed } = merged;
    const sealed = await this.notify.seal({ account_id: accountId }, notify);
    await this.services.store.execute(
      `INSERT INTO reconciliation_settings (account_id, settings, notify_ciphertext, notify_backend, notify_key_version, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET settings = excluded.settings, notify_ciphertext = excluded.notify_ciphertext,
         notify_backend = excluded.notify_backend, notify_key_version = excluded.notify_key_version, updated_at = excluded.updated_at`,
      [accountId, JSON.stringify(unsealed), sealed.ciphertext, sealed.backend, sealed.keyVersion, new Date(this.services.clock.now()).toISOString()],
    );
    return merged;
  }
}
