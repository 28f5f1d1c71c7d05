// The usage row as the columns of usage_records, in one order: shared by the gateway's thread (store.ts)
// and the usage writer thread (usage-writer.ts), which turns journal text into these values itself.

import { rowsFromJournalText } from '../../core/wire/usage-journal-text.ts';
import type { UsageRecord } from '../../core/spec/store.ts';

/** Column order of the usage fast path (database.ts insertMany); `usageValues` gives the values in this order. */
export const USAGE_COLUMN_NAMES = [
  'request_id',
  'account_id',
  'gateway_key_id',
  'team_id',
  'project_tag',
  'endpoint',
  'provider',
  'model',
  'requested_model',
  'provider_key_id',
  'byok',
  'status',
  'error_code',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'cache_write_1h_tokens',
  'reasoning_tokens',
  'cost_usd',
  'unpriced',
  'latency_ms',
  'streamed',
  'fallback_attempts',
  'created_at',
  'usage_estimated',
  'audited',
  'client_ip',
  'actor_role',
  'request_sha256',
] as const;

/**
 * One row's values in USAGE_COLUMN_NAMES order, as one array literal: a table of 30 reader
 * functions mapped per row cost about six times as much on the gateway's thread at each flush.
 */
export function usageValues(row: UsageRecord): Array<string | number | null> {
  return [
    row.requestId,
    row.accountId,
    row.gatewayKeyId,
    row.teamId,
    row.projectTag,
    row.endpoint,
    row.provider,
    row.model,
    row.requestedModel,
    row.providerKeyId,
    row.byok ? 1 : 0,
    row.status,
    row.errorCode,
    row.inputTokens,
    row.outputTokens,
    row.cachedInputTokens,
    row.cacheWriteTokens,
    row.cacheWrite1hTokens ?? 0,
    row.reasoningTokens,
    row.costUsd ?? 0,
    row.costUsd === null ? 1 : 0,
    row.latencyMs,
    row.streamed ? 1 : 0,
    row.fallbackAttempts,
    row.createdAt,
    row.usageEstimated === true ? 1 : 0,
    row.audited === true ? 1 : 0,
    row.clientIp ?? null,
    row.actorRole ?? null,
    row.requestSha256 ?? null,
  ];
}

/**
 * The values of the rows a usage journal text holds (core/wire/usage-journal-text.ts), decoded with
 * the journal's own reader, so a field the journal line gains reaches here with it. Throws unless the
 * text holds exactly `count` rows.
 */
export function usageValuesFromJournalText(text: string, count: number): Array<Array<string | number | null>> {
  const rows = rowsFromJournalText(text);
  if (rows.length !== count) throw new Error(`the usage journal text holds ${rows.length} rows, not the ${count} of its batch`);
  return rows.map(usageValues);
}
