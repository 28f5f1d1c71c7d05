// The requests whose upstream call is under way, as the usage journal records them (usage-journal.ts,
// "In flight"; the marks' format is in-flight-marks.ts). The usage queue owns one per journal:
//
// - `open` when an attempt calls its upstream: the request's open mark waits for the end of the
//   event-loop turn and joins that turn's group write (UsageQueue.commitTurn), so the request waits
//   for nothing and, under load, no system call is added; a request booked before then writes no mark;
// - `observe` when a stream starts: every PROGRESS_INTERVAL_MS the streams that delivered more since
//   their last mark get a progress mark, so a crash books what they delivered, not 0;
// - `close` when the request is booked: its close mark follows its usage row in the same write;
// - `carry` when the queue seals a segment: the marks of every request still open, written again at
//   the start of the next segment, so the sealed one can be deleted once its rows are committed.

import type { RequestContext } from '../spec/lifecycle.ts';
import { CLIENT_PROVIDER_KEY_ID } from '../spec/key-source.ts';
import type { RouteCandidate } from '../spec/strategy.ts';
import { openMark, progressMark, type OpenRequest } from './in-flight-marks.ts';
import type { StreamObserver } from './stream-observer.ts';
import { outputBound } from './usage-limits.ts';
import { bookedProjectTag } from './usage-row.ts';

/**
 * How often a stream's progress is recorded. A crash books what a stream delivered up to its last
 * mark: this much output at most goes unbooked. One mark of about 40 bytes per stream and interval,
 * written with the turn's rows: 1,000 long streams cost 20 KB a second and no system call of their own
 * under load; a mark per chunk would cost a clock read and a branch on every chunk of every stream.
 */
export const PROGRESS_INTERVAL_MS = 2_000;

interface Entry {
  readonly context: RequestContext;
  readonly open: OpenRequest;
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
  private streams = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** `scheduleWrite`: have the marks written at the end of this event-loop turn (UsageQueue). */
  constructor(
    private readonly scheduleWrite: () => void,
    private readonly progressIntervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /**
   * An attempt calls `candidate`'s upstream for the request. A later attempt (a fallback) writes the
   * mark again, naming its own provider; the first one's creation time and prompt figure stay.
   */
  open(context: RequestContext, candidate: RouteCandidate, inputTokens: number): void {
    let entry = this.live.get(context);
    if (entry === undefined) {
      const audit = context.usageAudit;
      entry = {
        context,
        open: {
          id: ++this.nextId,
          requestId: context.requestId,
          accountId: context.principal.accountId,
          gatewayKeyId: context.principal.keyId,
          teamId: context.teamId ?? null,
          projectTag: bookedProjectTag(context.projectTag, context.headers),
          endpoint: context.endpoint,
          provider: candidate.provider,
          model: candidate.model,
          requestedModel: requestedModel(context),
          providerKeyId: candidate.key.id === CLIENT_PROVIDER_KEY_ID ? null : candidate.key.id,
          byok: candidate.key.owner === 'account',
          streamed: context.request.stream === true,
          // Set when the mark is first written.
          createdAt: 0,
          inputTokens,
          attempts: context.attempts.length + 1,
          audit:
            audit === undefined ? undefined : { clientIp: context.clientIp ?? null, actorRole: context.principal.role, requestSha256: audit.requestSha256 },
        },
        written: false,
        queued: false,
        closed: false,
        observer: undefined,
        progress: undefined,
        progressTokens: 0,
        promptStated: false,
      };
      this.live.set(context, entry);
    } else {
      const open = entry.open;
      open.provider = candidate.provider;
      open.model = candidate.model;
      open.providerKeyId = candidate.key.id === CLIENT_PROVIDER_KEY_ID ? null : candidate.key.id;
      open.byok = candidate.key.owner === 'account';
      open.attempts = context.attempts.length + 1;
    }
    if (!entry.queued) {
      entry.queued = true;
      this.queued.push(entry);
      this.scheduleWrite();
    }
  }

  /** The request's answer is a stream: its progress is recorded while it runs. */
  observe(context: RequestContext, observer: StreamObserver): void {
    const entry = this.live.get(context);
    if (entry === undefined || entry.observer !== undefined) return;
    entry.observer = observer;
    this.streams += 1;
    if (this.timer === undefined) {
      this.timer = setInterval(this.recordProgress, this.progressIntervalMs);
      this.timer.unref?.();
    }
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
    if (entry.observer !== undefined && --this.streams === 0) this.stopProgress();
    return entry.written ? entry.open.id : 0;
  }

  /** The marks to write before this turn's rows: the opens queued in it, then the progress recorded. */
  takeMarks(): string {
    let text = '';
    if (this.queued.length > 0) {
      const queued = this.queued;
      this.queued = [];
      for (const entry of queued) {
        entry.queued = false;
        if (entry.closed) continue;
        if (entry.open.createdAt === 0) entry.open.createdAt = Date.now();
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
      if (!entry.written) continue;
      text += openMark(entry.open);
      if (entry.progress !== undefined) text += entry.progress;
    }
    return text;
  }

  private readonly recordProgress = (): void => {
    let text = '';
    for (const entry of this.live.values()) {
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

  private stopProgress(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** No more marks: the queue is closing. */
  stop(): void {
    this.stopProgress();
  }
}
