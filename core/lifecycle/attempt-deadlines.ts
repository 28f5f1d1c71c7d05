// The deadlines of one upstream attempt, in the order they apply: the first byte, then the rest of
// the answer within what the request's total deadline (`total_timeout_ms`) leaves. attempts.ts
// decides what a failure means for the fallbacks; this file decides when an attempt has taken too
// long, and says which deadline ended it.
//
// What meets the first-byte deadline depends on the answer. A non-streamed answer's head comes with
// its body (providers answer once the generation is done), so the head meets it, and a body that
// stalls after it is bounded by the total deadline: it used to be cut at the first-byte deadline
// with "sent no first byte", which was untrue (QA14, finding 6). A stream's head carries nothing
// (providers send it before generating), so only its first event meets the deadline, and until then
// the request can still fall back.

import { KeywayError } from '../errors.ts';
import { scheduleDeadline, type DeadlineHandle } from './deadlines.ts';

export interface AttemptDeadlineSettings {
  provider: string;
  /** The first-byte deadline, already cut to what the request has left. */
  firstByteMs: number;
  /** What the request's total deadline leaves this attempt, from its start. */
  remainingMs: number;
  /** Whether the answer is a stream: then its head does not meet the first-byte deadline. */
  streamed: boolean;
}

export class AttemptDeadlines {
  private timer: DeadlineHandle;
  private readonly startedAt = performance.now();
  /** The status of a non-streamed answer's head, once it arrived. */
  private headStatus: number | undefined;

  constructor(
    private readonly settings: AttemptDeadlineSettings,
    private readonly abort: AbortController,
  ) {
    this.timer = scheduleDeadline(settings.firstByteMs, () => this.expire(noFirstByte(settings)));
  }

  /**
   * The upstream's 2xx head arrived (the provider kit's postUpstream calls it through
   * CallContext.onResponseHead). A non-streamed answer has met its first-byte deadline: the rest of
   * its body has what the total deadline leaves.
   */
  readonly responseHead = (status: number): void => {
    if (this.settings.streamed || this.headStatus !== undefined) return;
    this.headStatus = status;
    this.timer.cancel();
    const leftMs = this.leftMs();
    const elapsedMs = performance.now() - this.startedAt;
    this.timer = scheduleDeadline(leftMs, () => this.expire(stalledBody(this.settings.provider, status, elapsedMs, leftMs)));
  };

  /**
   * The answer is in hand (a stream's first part, a whole body): the total deadline bounds what is
   * left of it. `onExpire` runs after the call is aborted (the slots go back even if nobody reads on).
   */
  answerInHand(onExpire: () => void): void {
    this.timer.cancel();
    const leftMs = this.leftMs();
    this.timer = scheduleDeadline(leftMs, () => {
      this.expire(unfinished(this.settings.provider, leftMs));
      onExpire();
    });
  }

  cancel(): void {
    this.timer.cancel();
  }

  /**
   * A failure after a non-streamed answer's head, carrying that head's status unless it names one:
   * the attempt record (and `error.attempts`) then say the provider answered before it failed, and
   * the usage row of a request whose last attempt it was names that provider (core/accounting/usage-row.ts).
   */
  afterHead(failure: KeywayError): KeywayError {
    if (this.headStatus === undefined || failure.reason === undefined || failure.extra?.upstream_status !== undefined) return failure;
    return new KeywayError(
      failure.code,
      {},
      {
        message: failure.message,
        param: failure.param,
        reason: failure.reason,
        retryAfterSeconds: failure.retryAfterSeconds,
        extra: { ...failure.extra, upstream_status: this.headStatus },
        headers: failure.headers,
      },
    );
  }

  private leftMs(): number {
    return Math.max(1, this.settings.remainingMs - (performance.now() - this.startedAt));
  }

  private expire(error: KeywayError): void {
    this.abort.abort(error);
  }
}

function noFirstByte(settings: AttemptDeadlineSettings): KeywayError {
  return new KeywayError(
    'upstream_timeout',
    { detail: `${settings.provider} sent no first byte within ${Math.round(settings.firstByteMs)} ms` },
    { reason: 'timeout', extra: { provider: settings.provider } },
  );
}

function stalledBody(provider: string, status: number, elapsedMs: number, leftMs: number): KeywayError {
  return new KeywayError(
    'upstream_timeout',
    {
      detail:
        `${provider} started answering (HTTP ${status} after ${Math.round(elapsedMs)} ms) and then stalled: ` +
        `its answer did not finish within the ${Math.round(leftMs)} ms the request's total deadline (total_timeout_ms) left`,
    },
    { reason: 'timeout', extra: { provider, upstream_status: status } },
  );
}

function unfinished(provider: string, leftMs: number): KeywayError {
  return new KeywayError(
    'upstream_timeout',
    { detail: `${provider} did not finish its answer within the ${Math.round(leftMs)} ms the request's total deadline (total_timeout_ms) left` },
    { reason: 'timeout' },
  );
}
