// One usage row as one line of the usage journal (usage-journal.ts): a JSON array of its fields in a
// fixed order, led by the format's version. An array is 40 % of the bytes of the row's JSON object
// (about 200 against 490) and cheaper to write: under load the journal's JSON, its bytes and its
// write were the gateway thread's largest usage cost. Lines written as objects (before the version
// field existed) are still read, and so are version 1 lines (before the audit fields), so a journal
// left by an older release replays.

import type { UsageRecord } from '../spec/store.ts';

const LINE_VERSION = 2;

/** The fields a line carries after its version, in order. `journalLine` writes them in this order. */
export const JOURNAL_FIELDS = [
  'requestId',
  'accountId',
  'gatewayKeyId',
  'teamId',
  'projectTag',
  'endpoint',
  'provider',
  'model',
  'requestedModel',
  'providerKeyId',
  'byok',
  'status',
  'errorCode',
  'inputTokens',
  'outputTokens',
  'cachedInputTokens',
  'cacheWriteTokens',
  'cacheWrite1hTokens',
  'reasoningTokens',
  'costUsd',
  'latencyMs',
  'streamed',
  'fallbackAttempts',
  'createdAt',
  'usageEstimated',
  'audited',
  'clientIp',
  'actorRole',
  'requestSha256',
] as const satisfies ReadonlyArray<keyof UsageRecord>;

/** Version 1 lines carry the fields before the audit's, in the same order. */
const VERSION_1_FIELDS = JOURNAL_FIELDS.length - 4;

// A field added to UsageRecord and not to the line would be lost by a replay: this stops the build.
type UnjournaledField = Exclude<keyof UsageRecord, (typeof JOURNAL_FIELDS)[number]>;
export const EVERY_FIELD_JOURNALED: [UnjournaledField] extends [never] ? true : UnjournaledField = true;

/** Fields a row may leave out: a line holds null for them, and a replayed row leaves them out again. */
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set<keyof UsageRecord>([
  'cacheWrite1hTokens',
  'usageEstimated',
  'audited',
  'clientIp',
  'actorRole',
  'requestSha256',
]);

/**
 * A line that is no usage row but an in-flight mark (in-flight-marks.ts): an array led by a string tag.
 * Rows lead with their version number (or are objects), so the two never mix up; readers of the rows
 * skip marks.
 */
export function isJournalMark(value: unknown): value is readonly unknown[] {
  return Array.isArray(value) && typeof value[0] === 'string';
}

/** The row's line, without its newline. */
export function journalLine(row: UsageRecord): string {
  return JSON.stringify(journalFields(row));
}

/**
 * The row as a current line's field list (the version, then JOURNAL_FIELDS in order): what the line
 * serialises, and what a reader mapping fields to its own columns takes (fieldsFromLine gives the same
 * for a line read back). One array literal: a loop over the field names costs more per row.
 */
export function journalFields(row: UsageRecord): unknown[] {
  return [
    LINE_VERSION,
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
    row.byok,
    row.status,
    row.errorCode,
    row.inputTokens,
    row.outputTokens,
    row.cachedInputTokens,
    row.cacheWriteTokens,
    row.cacheWrite1hTokens,
    row.reasoningTokens,
    row.costUsd,
    row.latencyMs,
    row.streamed,
    row.fallbackAttempts,
    row.createdAt,
    row.usageEstimated,
    row.audited,
    row.clientIp,
    row.actorRole,
    row.requestSha256,
  ];
}

function isUsageRow(value: unknown): value is UsageRecord {
  if (value === null || typeof value !== 'object') return false;
  const row = value as Record<string, unknown>;
  return typeof row.requestId === 'string' && typeof row.accountId === 'string' && typeof row.createdAt === 'string';
}

/** Positions in a current line of the fields a usage row cannot do without (isUsageRow). */
const REQUEST_ID = JOURNAL_FIELDS.indexOf('requestId') + 1;
const ACCOUNT_ID = JOURNAL_FIELDS.indexOf('accountId') + 1;
const CREATED_AT = JOURNAL_FIELDS.indexOf('createdAt') + 1;

/**
 * A parsed line as a current-version field list: the version at position 0, then JOURNAL_FIELDS in order,
 * null for an optional field left out. A current line is given back as it is; an older line (an object, a
 * version 1 array) is rewritten into that form. Undefined when it is not a usage row. A reader that maps
 * the fields to its own columns (the SQLite usage writer thread) skips building a row object per line.
 */
export function fieldsFromLine(value: unknown): readonly unknown[] | undefined {
  if (Array.isArray(value) && value[0] === LINE_VERSION && value.length === JOURNAL_FIELDS.length + 1)
    return typeof value[REQUEST_ID] === 'string' && typeof value[ACCOUNT_ID] === 'string' && typeof value[CREATED_AT] === 'string' ? value : undefined;
  const row = rowFromLine(value);
  return row === undefined ? undefined : (JSON.parse(journalLine(row)) as unknown[]);
}

/** The row a parsed line holds; undefined when it is not one (another version, a damaged line). */
export function rowFromLine(value: unknown): UsageRecord | undefined {
  if (!Array.isArray(value)) return isUsageRow(value) ? value : undefined;
  const fields = value[0] === LINE_VERSION ? JOURNAL_FIELDS.length : value[0] === 1 ? VERSION_1_FIELDS : -1;
  if (value.length !== fields + 1) return undefined;
  const row: Record<string, unknown> = {};
  // An indexed loop: the entries() iterator cost the usage writer thread 0.12 µs a row (half the decode).
  for (let index = 0; index < fields; index++) {
    const field = JOURNAL_FIELDS[index] as (typeof JOURNAL_FIELDS)[number];
    const fieldValue: unknown = value[index + 1];
    if (fieldValue === null && OPTIONAL_FIELDS.has(field)) continue;
    row[field] = fieldValue;
  }
  return isUsageRow(row) ? row : undefined;
}
