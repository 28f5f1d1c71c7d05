// The audit table and the compliance block's shape.

import { Type, type Static } from '@sinclair/typebox';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import type { Migration } from '../../core/spec/store.ts';

export const AUDIT_TYPES = ['admin', 'key_access', 'request'] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

const SQLITE_AUDIT_MIGRATIONS: Migration[] = [
  {
    id: '0001_audit_events',
    statements: [
      `CREATE TABLE audit_events (
          id TEXT PRIMARY KEY,
          account_id TEXT NOT NULL,
          type TEXT NOT NULL,
          occurred_at TEXT NOT NULL,
          request_id TEXT,
          actor_key_id TEXT,
          actor_role TEXT,
          actor_team_id TEXT,
          client_ip TEXT,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          status INTEGER,
          details TEXT NOT NULL
        )`,
      // Newest first, per account, with or without a type: the two ways the log is read.
      'CREATE INDEX audit_events_account_time ON audit_events (account_id, occurred_at, id)',
      'CREATE INDEX audit_events_account_type_time ON audit_events (account_id, type, occurred_at, id)',
      'CREATE INDEX audit_events_time ON audit_events (occurred_at, id)',
    ],
  },
  {
    // The compliance block's `notify` list, sealed by the crypto backend (compliance-targets.ts): the
    // block in the account's settings no longer holds it. Lists kept there before are sealed at the first start after it.
    id: '0002_compliance_targets',
    statements: [
      `CREATE TABLE compliance_targets (
          account_id TEXT PRIMARY KEY,
          notify_ciphertext TEXT NOT NULL,
          notify_backend TEXT NOT NULL,
          notify_key_version INTEGER NOT NULL,
          updated_at TEXT NOT NULL
        )`,
    ],
  },
];

export const AUDIT_MIGRATIONS = { sqlite: SQLITE_AUDIT_MIGRATIONS, postgres: postgresMigrationsFromSqlite(SQLITE_AUDIT_MIGRATIONS) };

export const DATA_RESIDENCY = ['store_encrypted', 'never_store_keys'] as const;
export const AUDIT_LOGGING = ['admin_actions', 'all_requests'] as const;
export const ENCRYPTION = ['AES-256-GCM', 'FIPS-140-2'] as const;

const oneOf = <Values extends readonly string[]>(values: Values, description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

export const ComplianceSchema = Type.Object(
  {
    data_residency: Type.Optional(
      oneOf(DATA_RESIDENCY, 'store_encrypted (default: provider keys sealed at rest) or never_store_keys (the database holds no key material)'),
    ),
    audit_logging: Type.Optional(
      oneOf(AUDIT_LOGGING, 'admin_actions (default: every management action) or all_requests (also the metadata of every request, never prompts)'),
    ),
    encryption: Type.Optional(oneOf(ENCRYPTION, 'AES-256-GCM (default) or FIPS-140-2 (a crypto backend that declares a validated module)')),
    key_access_logs: Type.Optional(Type.Boolean({ description: 'log every use of a provider key: key id, principal, request id, outcome' })),
    log_all_requests: Type.Optional(
      Type.Boolean({ description: 'with all_requests: add a SHA-256 fingerprint of each request body (prompts themselves are never stored)' }),
    ),
    audit_retention_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'days audit events are kept (default 365)' })),
    notify: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 500 }), {
        maxItems: 20,
        description: 'alert targets for a compliance alert (e-mail, https://, Slack)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ComplianceBody = Static<typeof ComplianceSchema>;

export const ComplianceEnvelopeSchema = Type.Object({ byok_compliance: ComplianceSchema }, { additionalProperties: false });

/** The block as stored and answered: every setting present. */
export interface ComplianceSettings {
  data_residency: (typeof DATA_RESIDENCY)[number];
  audit_logging: (typeof AUDIT_LOGGING)[number];
  encryption: (typeof ENCRYPTION)[number];
  key_access_logs: boolean;
  log_all_requests: boolean;
  audit_retention_days: number;
  notify: string[];
}

/** The account settings key the block is stored under. */
export const COMPLIANCE_SETTING = 'compliance';

/**
 * The stored block with defaults for what it does not say (a fresh account has none). Its `notify` is
 * what the settings still hold in plaintext (written by an earlier release): the sealed list is
 * compliance-targets.ts's, merged by `Compliance.settingsOf`.
 */
export function complianceOf(settings: Readonly<Record<string, unknown>> | undefined, defaultRetentionDays: number): ComplianceSettings {
  const stored = (settings?.[COMPLIANCE_SETTING] ?? {}) as Partial<ComplianceSettings>;
  return {
    data_residency: stored.data_residency ?? 'store_encrypted',
    audit_logging: stored.audit_logging ?? 'admin_actions',
    encryption: stored.encryption ?? 'AES-256-GCM',
    key_access_logs: stored.key_access_logs ?? false,
    log_all_requests: stored.log_all_requests ?? false,
    audit_retention_days: stored.audit_retention_days ?? defaultRetentionDays,
    notify: stored.notify ?? [],
  };
}
