// Rows out as domain records: what each column of the core schema holds in PostgreSQL (BIGINT as
// BigInt, flags as 0/1, JSON as text) read back into the records the Store contract answers. The
// writes, and the usage columns the batch insert sends, are in store.ts.

import type { KeyOwner, PrincipalRole, ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { AccountRecord, GatewayKeyRecord, StoredProviderKey, UsageRecord } from '../../core/spec/store.ts';

export type Row = Record<string, unknown>;

function parseJsonObject(text: unknown): Record<string, unknown> {
  try {
    const value = JSON.parse(String(text)) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** BIGINT columns arrive as BigInt (the client's `bigint: true`); plugin code and the contract want numbers. */
export function normalize(row: Row): Row {
  for (const [key, value] of Object.entries(row)) if (typeof value === 'bigint') row[key] = Number(value);
  return row;
}

export const textOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

export const toAccount = (row: Row): AccountRecord => ({
  id: String(row.id),
  name: String(row.name),
  createdAt: String(row.created_at),
  settings: parseJsonObject(row.settings),
});

export const toGatewayKey = (row: Row): GatewayKeyRecord => ({
  id: String(row.id),
  accountId: String(row.account_id),
  role: row.role as PrincipalRole,
  name: String(row.name),
  keyHash: String(row.key_hash),
  maskedKey: String(row.masked_key),
  teamId: textOrNull(row.team_id),
  byokAccess: Number(row.byok_access) === 1,
  settings: parseJsonObject(row.settings),
  createdAt: String(row.created_at),
  revokedAt: textOrNull(row.revoked_at),
});

/** What a provider key row says about its sealed secret: all master-key rotation reads. */
export const sealedPart = (row: Row) => ({
  id: String(row.id),
  owner: row.owner as KeyOwner,
  accountId: textOrNull(row.account_id),
  provider: String(row.provider),
  ciphertext: String(row.ciphertext),
  keyVersion: Number(row.key_version),
  cryptoBackend: String(row.crypto_backend),
  status: String(row.status),
  deletedAt: textOrNull(row.deleted_at),
});

export const toProviderKey = (row: Row): StoredProviderKey => ({
  ...sealedPart(row),
  maskedKey: String(row.masked_key),
  fingerprint: String(row.fingerprint),
  organizationId: textOrNull(row.organization_id),
  settings: parseJsonObject(row.settings) as ProviderKeySettings,
  weight: Number(row.weight),
  createdAt: String(row.created_at),
});

export const toUsage = (row: Row): UsageRecord => ({
  requestId: String(row.request_id),
  accountId: String(row.account_id),
  gatewayKeyId: String(row.gateway_key_id),
  teamId: textOrNull(row.team_id),
  projectTag: textOrNull(row.project_tag),
  endpoint: String(row.endpoint),
  provider: textOrNull(row.provider),
  model: textOrNull(row.model),
  requestedModel: String(row.requested_model),
  providerKeyId: textOrNull(row.provider_key_id),
  byok: Number(row.byok) === 1,
  status: Number(row.status),
  errorCode: textOrNull(row.error_code),
  inputTokens: Number(row.input_tokens),
  outputTokens: Number(row.output_tokens),
  cachedInputTokens: Number(row.cached_input_tokens),
  cacheWriteTokens: Number(row.cache_write_tokens),
  cacheWrite1hTokens: Number(row.cache_write_1h_tokens),
  reasoningTokens: Number(row.reasoning_tokens),
  costUsd: Number(row.unpriced) === 1 ? null : Number(row.cost_usd),
  latencyMs: Number(row.latency_ms),
  streamed: Number(row.streamed) === 1,
  fallbackAttempts: Number(row.fallback_attempts),
  createdAt: String(row.created_at),
  usageEstimated: Number(row.usage_estimated) === 1,
  audited: Number(row.audited) === 1,
  clientIp: textOrNull(row.client_ip),
  actorRole: textOrNull(row.actor_role),
  requestSha256: textOrNull(row.request_sha256),
});
