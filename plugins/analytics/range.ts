// Splits a period into pieces that each come from the coarsest exact source: whole days from the
// daily roll-ups, whole hours from the hourly ones, and the minutes at a period's edges that are not
// a whole hour (`last_30_days`, or a `start`/`end` inside an hour) from the usage rows themselves,
// through the (account_id, created_at) index. Every instant of [from, to) is in exactly one piece,
// so a sum over the pieces is exact to the millisecond.

import type { Grain } from './summary-tables.ts';

export interface RangePiece {
  source: Grain | 'rows';
  /** Inclusive start and exclusive end, as ISO 8601 instants. */
  from: Date;
  to: Date;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const floorTo = (time: number, unit: number): number => Math.floor(time / unit) * unit;
const ceilTo = (time: number, unit: number): number => Math.ceil(time / unit) * unit;

/** The pieces of [from, to), in time order. */
export function planRange(from: Date, to: Date): RangePiece[] {
  const start = from.getTime();
  const end = to.getTime();
  if (!(end > start)) return [];
  const firstHour = ceilTo(start, HOUR_MS);
  const lastHour = floorTo(end, HOUR_MS);
  if (firstHour >= lastHour) return [piece('rows', start, end)];
  const pieces: RangePiece[] = [];
  if (start < firstHour) pieces.push(piece('rows', start, firstHour));
  pieces.push(...wholeHours(firstHour, lastHour));
  if (lastHour < end) pieces.push(piece('rows', lastHour, end));
  return pieces;
}

function wholeHours(start: number, end: number): RangePiece[] {
  const firstDay = ceilTo(start, DAY_MS);
  const lastDay = floorTo(end, DAY_MS);
  if (firstDay >= lastDay) return [piece('hour', start, end)];
  const pieces: RangePiece[] = [];
  if (start < firstDay) pieces.push(piece('hour', start, firstDay));
  pieces.push(piece('day', firstDay, lastDay));
  if (lastDay < end) pieces.push(piece('hour', lastDay, end));
  return pieces;
}

function piece(source: RangePiece['source'], from: number, to: number): RangePiece {
  return { source, from: new Date(from), to: new Date(to) };
}
