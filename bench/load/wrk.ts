// wrk drives the fixed-request measurements: a C epoll loop whose own cost and jitter are far below a
// JavaScript client's, with exact microsecond percentiles read from its histogram in a Lua `done` hook.

import { writeFileSync } from 'node:fs';
import { LOAD_CORE, pinnedCommand, trackTransient } from './processes.ts';
import { CHAT_COMPLETIONS_PATH } from './requests.ts';

export interface WrkRun {
  url: string;
  apiKey: string;
  body: string;
  connections: number;
  durationSeconds: number;
  /** Stop after this many responses even if time remains; keeps every loop bounded in count. */
  maxRequests: number;
  /** Count the responses by status, X-Provider-Used and X-Fallback-Attempts (the fallback phase). */
  tally?: boolean;
  /** Extra request headers (a team member's X-Team-ID and X-Project-Tag). */
  headers?: Record<string, string>;
  /** Send at this fixed rate per connection instead of back to back (see PACING_SCRIPT). */
  ratePerSecond?: number;
}

/** Responses by "status provider attempts", "-" where a header was absent. */
export type ResponseTally = Record<string, number>;

export interface WrkResult {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  latencyMs: { mean: number; p50: number; p75: number; p90: number; p99: number; p999: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Only when the run asked for it. */
  tally?: ResponseTally;
  /** Paced runs only: requests sent after their slot had passed (the previous answer came late). */
  lateSends?: number;
}

const RESULT_MARKER = 'WRK_RESULT ';
const TALLY_MARKER = 'WRK_TALLY ';
const LIMIT_MARKER = 'WRK_LIMIT_REACHED';
const LATE_MARKER = 'WRK_LATE ';

function luaString(text: string): string {
  // A long bracket needs no escaping; pick a level the text cannot close by accident.
  let level = '=';
  while (text.includes(`]${level}]`)) level += '=';
  return `[${level}[${text}]${level}]`;
}

// The counts live in the worker thread's Lua state; `done` runs in the main state and reads them back
// through the thread handles `setup` collected (thread:get copies a table across states).
const TALLY_SCRIPT = `tally = {}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function count(status, headers)
  local provider = headers["x-provider-used"] or headers["X-Provider-Used"] or "-"
  local attempts = headers["x-fallback-attempts"] or headers["X-Fallback-Attempts"] or "-"
  local key = status .. " " .. provider .. " " .. attempts
  tally[key] = (tally[key] or 0) + 1
end

local function report_tally()
  for _, thread in ipairs(threads) do
    for key, total in pairs(thread:get("tally") or {}) do
      io.write("${TALLY_MARKER}" .. key .. "=" .. total .. "\\n")
    end
  end
end

`;

/**
 * A fixed request rate without wrk2 (not packaged by Debian): wrk asks `delay()` how many
 * milliseconds to wait before each request, and this answers the time left to the next slot of a
 * fixed grid, read from CLOCK_MONOTONIC through LuaJIT's FFI. The grid, not a fixed pause, keeps the
 * rate exact whatever the latency; a slot already missed is sent at once. wrk times each request from
 * when it is written, so a stall longer than a slot (5 ms at 200/s) counts once, for the request it
 * held, and not for the slots behind it (coordinated omission); at c=1 and sub-millisecond latencies
 * that is rare, and the run counts the slots sent late so the report can say how rare.
 */
function pacingScript(ratePerSecond: number): string {
  return `local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } keyway_timespec;
int clock_gettime(int clock_id, keyway_timespec *tp);
]]
local clock = ffi.new("keyway_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval_ms = ${1000 / ratePerSecond}
local next_slot = nil
late = 0
local paced_threads = {}
function setup(thread)
  table.insert(paced_threads, thread)
end
local function report_late()
  local total = 0
  for _, thread in ipairs(paced_threads) do total = total + (thread:get("late") or 0) end
  io.write("${LATE_MARKER}" .. total .. "\\n")
end
function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  next_slot = next_slot + interval_ms
  local wait = next_slot - now
  if wait < 0 then
    late = late + 1
    next_slot = now
    return 0
  end
  return math.floor(wait)
end

`;
}

function writeScript(path: string, run: WrkRun): void {
  const tally = run.tally === true;
  // Both would define wrk's one setup() hook.
  if (tally && run.ratePerSecond !== undefined) throw new Error('a paced wrk run cannot also tally responses');
  const headers = Object.entries(run.headers ?? {})
    // Spaces inside the brackets: `[[` would open a Lua long string.
    .map(([name, value]) => `wrk.headers[ ${luaString(name)} ] = ${luaString(value)}\n`)
    .join('');
  const script = `-- Generated by bench/load/wrk.ts
wrk.method = "POST"
wrk.path = ${luaString(CHAT_COMPLETIONS_PATH)}
wrk.body = ${luaString(run.body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = ${luaString(`Bearer ${run.apiKey}`)}
${headers}${run.ratePerSecond === undefined ? '' : pacingScript(run.ratePerSecond)}
local limit = ${Math.floor(run.maxRequests)}
local seen = 0
${tally ? TALLY_SCRIPT : ''}function response(status, headers, body)
${tally ? '  count(status, headers)\n' : ''}  seen = seen + 1
  if seen == limit then
    -- wrk's main thread sleeps out the whole -d; the marker asks the parent to interrupt it.
    io.write("${LIMIT_MARKER}\\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
${tally ? '  report_tally()\n' : ''}${run.ratePerSecond === undefined ? '' : '  report_late()\n'}  local e = summary.errors
  io.write(string.format(
    '${RESULT_MARKER}{"requests":%d,"duration_us":%d,"mean":%f,"p50":%f,"p75":%f,"p90":%f,"p99":%f,"p999":%f,"max":%f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;
  writeFileSync(path, script);
}

interface RawResult {
  requests: number;
  duration_us: number;
  mean: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

/**
 * Runs wrk with a hard time limit, and sends it SIGINT (its own "stop and report") as soon as the
 * request limit marker shows up on its output.
 */
async function runUntilLimit(command: string[], timeoutMs: number): Promise<{ exitCode: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const subprocess = Bun.spawn(command, { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' });
  const untrack = trackTransient(subprocess);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    subprocess.kill('SIGKILL');
  }, timeoutMs);
  const stderrText = new Response(subprocess.stderr).text();
  const decoder = new TextDecoder();
  let stdout = '';
  let interrupted = false;
  for await (const piece of subprocess.stdout) {
    stdout += decoder.decode(piece, { stream: true });
    if (!interrupted && stdout.includes(LIMIT_MARKER)) {
      interrupted = true;
      subprocess.kill('SIGINT');
    }
  }
  await subprocess.exited;
  clearTimeout(timer);
  untrack();
  return { exitCode: subprocess.exitCode, stdout, stderr: await stderrText, timedOut };
}

export async function runWrk(run: WrkRun, scriptPath: string): Promise<WrkResult> {
  writeScript(scriptPath, run);
  // One thread: the load generator owns a single core, and more threads would only time-slice it.
  const command = pinnedCommand(LOAD_CORE, [
    'wrk',
    '-t1',
    `-c${run.connections}`,
    `-d${Math.max(1, Math.round(run.durationSeconds))}s`,
    '--timeout',
    '5s',
    '--latency',
    '-s',
    scriptPath,
    run.url,
  ]);
  const outcome = await runUntilLimit(command, (run.durationSeconds + 20) * 1000);
  const line = outcome.stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_MARKER));
  if (outcome.timedOut || line === undefined) {
    throw new Error(
      `wrk failed (exit ${outcome.exitCode}${outcome.timedOut ? ', killed after time limit' : ''}): ${outcome.stderr.trim() || outcome.stdout.trim()}`,
    );
  }
  const raw = JSON.parse(line.slice(RESULT_MARKER.length)) as RawResult;
  const tally = run.tally === true ? parseTally(outcome.stdout) : undefined;
  const lateLine = outcome.stdout.split('\n').find((candidate) => candidate.startsWith(LATE_MARKER));
  const durationSeconds = raw.duration_us / 1e6;
  const milliseconds = (microseconds: number): number => microseconds / 1000;
  return {
    requests: raw.requests,
    durationSeconds,
    requestsPerSecond: durationSeconds > 0 ? raw.requests / durationSeconds : 0,
    latencyMs: {
      mean: milliseconds(raw.mean),
      p50: milliseconds(raw.p50),
      p75: milliseconds(raw.p75),
      p90: milliseconds(raw.p90),
      p99: milliseconds(raw.p99),
      p999: milliseconds(raw.p999),
      max: milliseconds(raw.max),
    },
    errors: { connect: raw.connect, read: raw.read, write: raw.write, status: raw.status, timeout: raw.timeout },
    ...(tally === undefined ? {} : { tally }),
    ...(lateLine === undefined ? {} : { lateSends: Number(lateLine.slice(LATE_MARKER.length)) }),
  };
}

function parseTally(stdout: string): ResponseTally {
  const tally: ResponseTally = {};
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(TALLY_MARKER)) continue;
    const separator = line.lastIndexOf('=');
    const key = line.slice(TALLY_MARKER.length, separator);
    tally[key] = (tally[key] ?? 0) + Number(line.slice(separator + 1));
  }
  return tally;
}

/** Socket errors and non-2xx answers; a result with any is not a clean measurement. */
export function errorCount(result: WrkResult): number {
  const errors = result.errors;
  return errors.connect + errors.read + errors.write + errors.status + errors.timeout;
}
