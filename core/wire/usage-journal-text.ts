// Usage rows as journal text: the lines the crash journal writes (core/accounting/journal-line.ts),
// read back as rows. The usage queue hands a batch's journal text to a store that writes on another
// thread (Store.insertJournaledUsage), so each row is serialised once on the gateway's thread, not
// twice. Part of the public core because a store plugin decodes it: the line's fields and their order
// stay defined in one place, journal-line.ts, which this reads through.

import type { UsageRecord } from '../spec/store.ts';
import { fieldsFromLine, isJournalMark, journalLine, rowFromLine } from '../accounting/journal-line.ts';

/** The fields of a line from `fieldsFromJournalText`, in order after its version (field i at position i + 1). */
export { JOURNAL_FIELDS, journalFields, isJournalMark } from '../accounting/journal-line.ts';

/** The rows' journal text: one line each, every line ended by a newline. */
export function journalText(rows: readonly UsageRecord[]): string {
  let text = '';
  for (const row of rows) text += `${journalLine(row)}\n`;
  return text;
}

/**
 * The rows of a journal text, in order. The journal's in-flight marks between them (lines that are
 * arrays led by a string, `isJournalMark`: which requests had an upstream call under way) are skipped.
 * Throws when another line is not a usage row: text handed over for a write is whole lines the journal
 * wrote, so a bad one is a fault to surface, never a row to drop.
 */
export function rowsFromJournalText(text: string): UsageRecord[] {
  return decodeLines(text, rowFromLine);
}

/**
 * The lines of a journal text as current-version field lists (journal-line.ts, fieldsFromLine), in order:
 * for a reader that maps fields to its own columns without a row object per line. Throws as
 * rowsFromJournalText does.
 */
export function fieldsFromJournalText(text: string): Array<readonly unknown[]> {
  return decodeLines(text, fieldsFromLine);
}

function decodeLines<T>(text: string, decode: (value: unknown) => T | undefined): T[] {
  if (text.length === 0) return [];
  if (!text.endsWith('\n')) throw new Error('usage journal text must end with a newline');
  let values: unknown[];
  try {
    // One parse for the whole batch: each line is one complete JSON value, and JSON text never holds a raw newline.
    values = JSON.parse(`[${text.slice(0, -1).replaceAll('\n', ',')}]`) as unknown[];
  } catch {
    throw new Error(`usage journal text holds a line that is not JSON (line ${firstUnparsableLine(text)})`);
  }
  const decoded: T[] = [];
  for (let index = 0; index < values.length; index++) {
    if (isJournalMark(values[index])) continue;
    const line = decode(values[index]);
    if (line === undefined) throw new Error(`usage journal text line ${index + 1} is not a usage row`);
    decoded.push(line);
  }
  return decoded;
}

function firstUnparsableLine(text: string): number {
  const lines = text.slice(0, -1).split('\n');
  for (const [index, line] of lines.entries()) {
    try {
      JSON.parse(line);
    } catch {
      return index + 1;
    }
  }
  return lines.length;
}
