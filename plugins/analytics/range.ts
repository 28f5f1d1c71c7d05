// Splits a period into pieces that each come from the coarsest exact source: whole days from the
// daily roll-ups, whole hours from the hourly ones, and the minutes at a period's edges that are not
// a whole hour (`last_30_days`, or a `start`/`end` inside an hour) from the usage rows themselves,
// through the (account_id, created_at) index. An edge hour is read whichever way touches fewer rows:
// the rows inside the period, or the whole hour's bucket minus the rows outside it (a piece with
// sign -1). `last_30_days` ends now, so its last hour is its bucket minus nothing. Every instant of
// [from, to) is counted exactly once, so a sum over the pieces is exact to the millisecond.

import type { Grain } from './summary-tables.ts';

export interface RangePiece {
  source: Grain | 'rows';
  /** Inclusive start and exclusive end. */
  from: Date;
  to: Date;
  /** -1: rows to take away from the bucket of their hour (the part of an edge hour outside the period). */
  sign: 1 | -1;
}

/** An edge hour the period covers only in part: its rows inside the period, and those outside. */
export interface PartialEdge {
  inside: { from: Date; to: Date };
  outside: { from: Date; to: Date };
}

/** For each partial edge hour, whether to read it as bucket minus the rows outside the period. */
export interface EdgeChoice {
  start: boolean;
  end: boolean;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const floorTo = (time: number, unit: number): number => Math.floor(time / unit) * unit;
const ceilTo = (time: number, unit: number): number => Math.ceil(time / unit) * unit;

/** The period's partial edge hours, when it spans at least one hour boundary (else it is read as rows). */
export function partialEdges(from: Date, to: Date): { start?: PartialEdge; end?: PartialEdge } {
  const start = from.getTime();
  const end = to.getTime();
  if (ceilTo(start, HOUR_MS) >= floorTo(end, HOUR_MS)) return {};
  const edges: { start?: PartialEdge; end?: PartialEdge } = {};
  if (start % HOUR_MS !== 0) {
    edges.start = { inside: span(start, ceilTo(start, HOUR_MS)), outside: span(floorTo(start, HOUR_MS), start) };
  }
  if (end % HOUR_MS !== 0) edges.end = { inside: span(floorTo(end, HOUR_MS), end), outside: span(end, ceilTo(end, HOUR_MS)) };
  return edges;
}

/** The pieces of [from, to). */
export function planRange(from: Date, to: Date, complement: EdgeChoice = { start: false, end: false }): RangePiece[] {
  const start = from.getTime();
  const end = to.getTime();
  if (!(end > start)) return [];
  const firstHour = ceilTo(start, HOUR_MS);
  const lastHour = floorTo(end, HOUR_MS);
  if (firstHour >= lastHour) return [piece('rows', start, end)];
  const pieces: RangePiece[] = [];
  let alignedStart = firstHour;
  let alignedEnd = lastHour;
  if (start < firstHour) {
    if (complement.start) {
      alignedStart = floorTo(start, HOUR_MS);
      pieces.push(piece('rows', alignedStart, start, -1));
    } else {
      pieces.push(piece('rows', start, firstHour));
    }
  }
  if (lastHour < end) {
    if (complement.end) {
      alignedEnd = ceilTo(end, HOUR_MS);
      pieces.push(piece('rows', end, alignedEnd, -1));
    } else {
      pieces.push(piece('rows', lastHour, end));
    }
  }
  pieces.push(...wholeHours(alignedStart, alignedEnd));
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

function span(from: number, to: number): { from: Date; to: Date } {
  return { from: new Date(from), to: new Date(to) };
}

function piece(source: RangePiece['source'], from: number, to: number, sign: 1 | -1 = 1): RangePiece {
  return { source, from: new Date(from), to: new Date(to), sign };
}
