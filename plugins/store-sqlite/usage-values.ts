// The usage row as the columns of usage_records, in one order: shared by the gateway's thread (store.ts)
// and the usage writer thread (usage-writer.ts), which turns journal text into these values itself.

import { closeSync, openSync, readSync } from 'node:fs';
import { fieldsFromJournalText, JOURNAL_FIELDS, journalFields, rowsFromJournalText } from '../../core/wire/usage-journal-text.ts';
import type { JournalRange, UsageRecord } from '../../core/spec/store.ts';

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
 * One row's values in USAGE_COLUMN_NAMES order: the row's journal fields (core/accounting/journal-line.ts)
 * mapped to columns by the one mapping below, which the writer thread applies to journal text, so a row
 * written from memory and one written from its journal line cannot differ.
 */
export function usageValues(row: UsageRecord): Value[] {
  return usageValuesFromFields(journalFields(row));
}

/** A field's position in a current journal line (journal-line.ts: the version first, then JOURNAL_FIELDS). */
const at = (field: (typeof JOURNAL_FIELDS)[number]): number => JOURNAL_FIELDS.indexOf(field) + 1;
const REQUEST_ID = at('requestId');
const ACCOUNT_ID = at('accountId');
const GATEWAY_KEY_ID = at('gatewayKeyId');
const TEAM_ID = at('teamId');
const PROJECT_TAG = at('projectTag');
const ENDPOINT = at('endpoint');
const PROVIDER = at('provider');
const MODEL = at('model');
const REQUESTED_MODEL = at('requestedModel');
const PROVIDER_KEY_ID = at('providerKeyId');
const BYOK = at('byok');
const STATUS = at('status');
const ERROR_CODE = at('errorCode');
const INPUT_TOKENS = at('inputTokens');
const OUTPUT_TOKENS = at('outputTokens');
const CACHED_INPUT_TOKENS = at('cachedInputTokens');
const CACHE_WRITE_TOKENS = at('cacheWriteTokens');
const CACHE_WRITE_1H_TOKENS = at('cacheWrite1hTokens');
const REASONING_TOKENS = at('reasoningTokens');
const COST_USD = at('costUsd');
const LATENCY_MS = at('latencyMs');
const STREAMED = at('streamed');
const FALLBACK_ATTEMPTS = at('fallbackAttempts');
const CREATED_AT = at('createdAt');
const USAGE_ESTIMATED = at('usageEstimated');
const AUDITED = at('audited');
const CLIENT_IP = at('clientIp');
const ACTOR_ROLE = at('actorRole');
const REQUEST_SHA256 = at('requestSha256');

type Value = string | number | null;

/**
 * The columns of a current journal line's fields (optional fields null or absent): booleans as 0/1, a
 * null cost as 0 with `unpriced` 1. Read straight from the fields, without a row object per line
 * (~0.2 µs a row on the writer thread). One array literal: a table of 30 reader functions mapped per
 * row cost about six times as much.
 */
function usageValuesFromFields(line: readonly unknown[]): Value[] {
  const cost = line[COST_USD] as number | null;
  return [
    line[REQUEST_ID] as Value,
    line[ACCOUNT_ID] as Value,
    line[GATEWAY_KEY_ID] as Value,
    line[TEAM_ID] as Value,
    line[PROJECT_TAG] as Value,
    line[ENDPOINT] as Value,
    line[PROVIDER] as Value,
    line[MODEL] as Value,
    line[REQUESTED_MODEL] as Value,
    line[PROVIDER_KEY_ID] as Value,
    line[BYOK] ? 1 : 0,
    line[STATUS] as Value,
    line[ERROR_CODE] as Value,
    line[INPUT_TOKENS] as Value,
    line[OUTPUT_TOKENS] as Value,
    line[CACHED_INPUT_TOKENS] as Value,
    line[CACHE_WRITE_TOKENS] as Value,
    (line[CACHE_WRITE_1H_TOKENS] as number | null) ?? 0,
    line[REASONING_TOKENS] as Value,
    cost ?? 0,
    cost === null ? 1 : 0,
    line[LATENCY_MS] as Value,
    line[STREAMED] ? 1 : 0,
    line[FALLBACK_ATTEMPTS] as Value,
    line[CREATED_AT] as Value,
    line[USAGE_ESTIMATED] === true ? 1 : 0,
    line[AUDITED] === true ? 1 : 0,
    (line[CLIENT_IP] as Value) ?? null,
    (line[ACTOR_ROLE] as Value) ?? null,
    (line[REQUEST_SHA256] as Value) ?? null,
  ];
}

/**
 * The values of the rows a usage journal text holds (core/wire/usage-journal-text.ts), decoded with
 * the journal's own reader (older lines are rewritten as current ones there; the journal's in-flight
 * marks are skipped). A field the line gains needs its column here as in `usageValues`:
 * test/store-sqlite/journal-text.test.ts compares the two on a row with every field set. Throws unless
 * the text holds exactly `count` rows; any number when `count` is undefined.
 */
export function usageValuesFromJournalText(text: string, count: number | undefined): Value[][] {
  const lines = fieldsFromJournalText(text);
  if (count !== undefined && lines.length !== count) throw new Error(`the usage journal text holds ${lines.length} rows, not the ${count} of its batch`);
  return lines.map(usageValuesFromFields);
}

/**
 * The text of bytes [start, end) of a usage journal file (Store.insertJournalRange). Throws when the
 * file holds fewer bytes: a batch is never decoded from part of its lines.
 */
export function readJournalRange(range: JournalRange): string {
  const length = range.end - range.start;
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(length) || range.start < 0 || length < 0) {
    throw new Error(`the usage journal range ${range.start}–${range.end} is not a byte range`);
  }
  const bytes = Buffer.allocUnsafe(length);
  const descriptor = openSync(range.path, 'r');
  try {
    let read = 0;
    while (read < length) {
      const got = readSync(descriptor, bytes, read, length - read, range.start + read);
      if (got <= 0) throw new Error(`the usage journal file holds ${range.start + read} bytes, not the ${range.end} of its batch`);
      read += got;
    }
  } finally {
    closeSync(descriptor);
  }
  return bytes.toString('utf8');
}

/** The rows of a journal range, for a store that writes on this thread; throws unless the range holds `count` rows. */
export function rowsOfRange(range: JournalRange, count: number): UsageRecord[] {
  const rows = rowsFromJournalText(readJournalRange(range));
  if (rows.length !== count) throw new Error(`the usage journal text holds ${rows.length} rows, not the ${count} of its batch`);
  return rows;
}
