// Whether the process that wrote a usage journal file is still running (usage-journal.ts).
//
// `kill(pid, 0)` is not enough. It succeeds for a zombie, which is a process that was SIGKILLed but
// not yet reaped (on a busy host that lasts seconds, and under a parent that never reaps, forever). It
// also succeeds for an unrelated process that got the same pid later. A restart within moments of a
// `kill -9` then took the dead process's journal for a live one and skipped it, so answered requests
// had no row until some later restart. On Linux, /proc/<pid>/stat says more. State Z (zombie) or X
// (dead) is not alive. A start time (field 22, clock ticks after boot) that differs from the one the
// writer recorded in its file names means another process has that pid now.

import { readFileSync } from 'node:fs';

/** What /proc/<pid>/stat says of a process. */
export interface ProcessStat {
  /** R, S, D, T, Z, X…; only Z and X are a process that is gone. */
  state: string;
  /** Clock ticks after boot: with the pid, names one process for the life of the machine. */
  startTime: string;
}

/** Decides whether a journal's writer still runs: injectable, so tests can fake a live pid. */
export type OwnerCheck = (pid: number, startTime: string | undefined) => boolean;

const PROCFS = readProcessStat('self') !== undefined;

/** Undefined when there is no such process (or no /proc). Reads one small file; no process is signalled. */
export function readProcessStat(pid: number | 'self'): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !/^\d+$/.test(startTime)) return undefined;
  return { state, startTime };
}

/** This process's start time, recorded in its journal file names; undefined without /proc (macOS). */
export function ownStartTime(): string | undefined {
  return readProcessStat('self')?.startTime;
}

function answersSignalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process with that pid exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process `pid` that recorded `startTime` (undefined in files written before start times
 * were recorded) still runs. Without /proc only `kill(pid, 0)` is left, with its blind spots.
 */
export const ownerIsAlive: OwnerCheck = (pid, startTime) => {
  if (!PROCFS) return answersSignalZero(pid);
  const stat = readProcessStat(pid);
  if (stat === undefined) return false;
  if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return false;
  return startTime === undefined || stat.startTime === startTime;
};
