// The requests whose upstream call is under way, as the usage journal records them (usage-journal.ts,
// "In flight"; the marks' format is in-flight-marks.ts). The usage queue owns one per journal:
//
// - `open` when an attempt calls its upstream: the request is only registered in memory (a map entry);
// - every MARK_INTERVAL_MS a tick writes an open mark for each registered request not marked yet, and a
//   progress mark for each stream that delivered more since its last one, with the next turn's rows
//   (UsageQueue.commitTurn), so a crash books what they had under way and what streams delivered;
// - `close` when the request is booked: a close mark follows its usage row in the same write, only
//   for a request whose open mark was written;
// - `carry` when the queue seals a segment: the marks of every request still open, written again at
//   the start of the next segment, so the sealed one can be deleted once its rows are committed.
//
// Why a tick and not a mark per call: most calls end within a second, and marking each of them (an
// open mark at its call, a close mark with its row) cost the request thread ~9 µs a request at c=64
// through the real server (bench/usage-writes.ts, COMPARE_WITH the build before the marks: 13,494
// against 11,800 req/s), a tenth of its throughput. Marked on a tick, a call of under a second costs a
// map entry; what a SIGKILL can lose is the calls started since the last tick (at most a second's),
// against every call in flight before the marks existed (QA15 cluster #3: two streams had delivered 17
// chunks).

import type { RequestContext } from '../spec/lifecycle.ts';
import { CLIENT_PROVIDER_KEY_ID } from '../spec/key-source.ts';
import type { RouteCandidate } from '../spec/strategy.ts';
import { openMark, progressMark, type OpenRequest } from './in-flight-marks.ts';
import type { StreamObserver } from './stream-observer.ts';
import { outputBound } from './usage-limits.ts';
import { requestIdentity } from './usage-row.ts';

/**
 * How often calls under way are marked and streams' progress recorded. A crash loses calls started
 * since the last tick and books what a stream delivered up to its last mark. One mark of about 40 bytes
 * per stream and tick, written with the turn's rows: 1,000 long streams cost 40 KB a second and no
 * system call of their own under load; a mark per chunk would cost a clock read and a branch on every
 * chunk of every stream.
 */
export const MARK_INTERVAL_MS = 1_000;

interface Entry {
  readonly context: RequestContext;
  /** The attempt under way. */
  candidate: RouteCandidate;
  /** The prompt's figure (Accountant.markedPrompt), computed when the mark is first written (most calls are never marked). */
  readonly inputTokens: (context: RequestContext, candidate: RouteCandidate) => number;
  /** Built when the request is first marked. */
  open: OpenRequest | undefined;
  /** Its open mark went out with a turn's write (and is carried into each new segment). */
  written: boolean;
  /** An open mark for it waits for the turn's write. */
  queued: boolean;
  closed: boolean;
  observer: StreamObserver | undefined;
  /** The last progress mark written, carried with the open mark. */
  progress: string | undefined;
  progressTokens: number;
  promptStated: boolean;
}

/** As the usage row keeps it (usage-row.ts). */
function requestedModel(context: RequestContext): string {
  const model = context.request.model;
  if (typeof model !== 'string') return '';
  return model.length > 200 ? model.slice(0, 200) : model;
}

export class InFlightRequests {
  private readonly live = new Map<RequestContext, Entry>();
  private queued: Entry[] = [];
  /** Progress marks to write with the next turn's rows. */
  private pendingText = '';
  /** A write failed: the next one marks every request in flight again (bounded by them, however long the disk fails). */
  private resending = false;
  private nextId = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** `scheduleWrite`: have the marks written at the end of this event-loop turn (UsageQueue). */
  constructor(
    private readonly scheduleWrite: () => void,
    private readonly markIntervalMs = MARK_INTERVAL_MS,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /**
   * An attempt calls `candidate`'s upstream for the request: registered, marked at the next tick. A
   * later attempt (a fallback) of a request already marked writes its mark again, naming its own
   * provider; the first one's creation time and prompt figure stay.
   */
  open(context: RequestContext, candidate: RouteCandidate, inputTokens: (context: RequestContext, candidate: RouteCandidate) => number): void {
    const entry = this.live.get(context);
    if (entry === undefined) {
      this.live.set(context, {
        context,
        candidate,
        inputTokens,
        open: undefined,
        written: false,
        queued: false,
        closed: false,
        observer: undefined,
        progress: undefined,
        progressTokens: 0,
        promptStated: false,
      });
      this.timer ??= this.startTicks();
      return;
    }
    entry.candidate = candidate;
    const open = entry.open;
    if (open === undefined) return;
    open.provider = candidate.provider;
    open.model = candidate.model;
    open.providerKeyId = candidate.key.id === CLIENT_PROVIDER_KEY_ID ? null : candidate.key.id;
    open.byok = candidate.key.owner === 'account';
    open.attempts = context.attempts.length + 1;
    this.queue(entry);
  }

  private queue(entry: Entry): void {
    if (entry.queued) return;
    entry.queued = true;
    this.queued.push(entry);
    this.scheduleWrite();
  }

  /** The request's mark as it is first written: its call's start, its prompt's bound, its attempt. */
  private openOf(entry: Entry): OpenRequest {
    const { context, candidate } = entry;
    const audit = context.usageAudit;
    return {
      ...requestIdentity(context),
      id: ++this.nextId,
      provider: candidate.provider,
      model: candidate.model,
      requestedModel: requestedModel(context),
      providerKeyId: candidate.key.id === CLIENT_PROVIDER_KEY_ID ? null : candidate.key.id,
      byok: candidate.key.owner === 'account',
      streamed: context.request.stream === true,
      // The request's start on the wall clock: the estimated row's creation time, the same at every replay.
      createdAt: Math.round(Date.now() - (performance.now() - context.startedAt)),
      inputTokens: entry.inputTokens(context, candidate),
      attempts: context.attempts.length + 1,
      audit: audit === undefined ? undefined : { clientIp: context.clientIp ?? null, actorRole: context.principal.role, requestSha256: audit.requestSha256 },
      leases: context.leases,
    };
  }

  /** The request's answer is a stream: its progress is recorded while it runs. */
  observe(context: RequestContext, observer: StreamObserver): void {
    const entry = this.live.get(context);
    if (entry === undefined || entry.observer !== undefined) return;
    entry.observer = observer;
  }

  /**
   * The request was booked. Answers the id whose close mark must follow its usage row, or 0 when its
   * open mark was never written (booked within the turn it opened in): then nothing is written at all.
   */
  close(context: RequestContext): number {
    const entry = this.live.get(context);
    if (entry === undefined) return 0;
    this.live.delete(context);
    entry.closed = true;
    return entry.written && entry.open !== undefined ? entry.open.id : 0;
  }

  /** The marks to write before this turn's rows: the opens queued in it, then the progress recorded. */
  takeMarks(): string {
    let text = '';
    if (this.queued.length > 0) {
      const queued = this.queued;
      this.queued = [];
      for (const entry of queued) {
        entry.queued = false;
        if (entry.closed || entry.open === undefined) continue;
        entry.written = true;
        if (!this.resending) text += openMark(entry.open);
      }
    }
    if (this.resending) {
      // Every request in flight, with its last progress: what the failed writes held, and no more.
      this.resending = false;
      this.pendingText = '';
      return this.carry();
    }
    if (this.pendingText.length > 0) {
      text += this.pendingText;
      this.pendingText = '';
    }
    return text;
  }

  /**
   * A write of marks failed (the disk is full): the next one writes the marks of every request in
   * flight again. Close marks are not: a row held only in memory is lost with the process, and its
   * request is then better booked at its estimate (UsageQueue.commitTurn).
   */
  resend(): void {
    this.resending = true;
    this.scheduleWrite();
  }

  /** The marks that open every request still in flight again, for the start of a new segment ('' when none). */
  carry(): string {
    let text = '';
    for (const entry of this.live.values()) {
      // One not written yet goes with the next turn's marks, into the new segment anyway.
      if (!entry.written || entry.open === undefined) continue;
      text += openMark(entry.open);
      if (entry.progress !== undefined) text += entry.progress;
    }
    return text;
  }

  private startTicks(): ReturnType<typeof setInterval> {
    const timer = setInterval(this.tick, this.markIntervalMs);
    timer.unref?.();
    return timer;
  }

  /** Marks the calls under way not marked yet, and records the streams' progress. */
  private readonly tick = (): void => {
    let text = '';
    for (const entry of this.live.values()) {
      if (entry.open === undefined) {
        entry.open = this.openOf(entry);
        this.queue(entry);
        continue;
      }
      const observer = entry.observer;
      if (observer === undefined || !entry.written) continue;
      // Never above what the request allowed, as the account stage caps a cut stream's estimate.
      const tokens = Math.min(Math.ceil(observer.streamedTokens), outputBound(entry.context.request, undefined, 0) ?? Number.MAX_SAFE_INTEGER);
      const prompt = observer.promptUsage;
      const stated = prompt !== undefined && prompt.unreported?.inputTokens === undefined;
      if (tokens === entry.progressTokens && stated === entry.promptStated) continue;
      entry.progressTokens = tokens;
      entry.promptStated = stated;
      entry.progress = progressMark(entry.open.id, {
        outputTokens: tokens,
        elapsedMs: performance.now() - entry.context.startedAt,
        prompt: stated ? prompt : undefined,
      });
      text += entry.progress;
    }
    if (text.length === 0) return;
    this.pendingText += text;
    this.scheduleWrite();
  };

  /** No more marks: the queue is closing. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
