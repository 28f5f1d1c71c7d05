// The primary's side of a question one worker puts to all the others (ipc-protocol.ts `gather`): each
// other live worker is asked, and the asker gets what came back within the timeout. A worker that is
// stuck or slow is named as unanswered rather than waited for: a scrape must never hang on one. One
// that did not answer in time is unresponsive (ipc-liveness.ts): named at once, until it answers again.

import type { WorkerBound } from './ipc-protocol.ts';

/** Long enough for a busy event loop to answer, short against Prometheus' default 10 s scrape timeout. */
export const GATHER_TIMEOUT_MS = 2_000;

export interface GatherMember {
  /** The worker's number (1 to N), or 0 when the member has none. */
  worker: number;
  send(message: WorkerBound): void;
}

interface Gathering {
  asker: string;
  id: number;
  /** The members not heard from yet, with their worker numbers. */
  waiting: Map<string, number>;
  /** The workers not waited for: unresponsive when asked, or since. */
  skipped: number[];
  answers: Array<[number, string]>;
  timer: ReturnType<typeof setTimeout>;
}

export class Gatherings {
  private nextAsk = 1;
  private readonly open = new Map<number, Gathering>();

  constructor(
    private readonly members: ReadonlyMap<string, GatherMember>,
    private readonly timeoutMs: number = GATHER_TIMEOUT_MS,
    private readonly responsive: (member: string) => boolean = () => true,
    /** The members that let a question's timeout pass without answering. */
    private readonly onTimeout: (members: string[]) => void = () => undefined,
  ) {}

  /**
   * `asker` asks every other member `topic`, with `question` when it has one; an unresponsive one is
   * named unanswered without being waited for.
   */
  start(asker: string, id: number, topic: string, question?: string): void {
    const ask = this.nextAsk++;
    const waiting = new Map<string, number>();
    const skipped: number[] = [];
    for (const [member, { worker }] of this.members) {
      if (member === asker) continue;
      if (this.responsive(member)) waiting.set(member, worker);
      else skipped.push(worker);
    }
    const gathering: Gathering = { asker, id, waiting, skipped, answers: [], timer: setTimeout(() => this.timeOut(ask), this.timeoutMs) };
    this.open.set(ask, gathering);
    for (const member of waiting.keys()) this.members.get(member)?.send({ ask: question === undefined ? [ask, topic] : [ask, topic, question] });
    if (waiting.size === 0) this.finish(ask);
  }

  answer(member: string, ask: number, text: string | null): void {
    const gathering = this.open.get(ask);
    if (gathering === undefined) return;
    const worker = gathering.waiting.get(member);
    if (worker === undefined) return;
    gathering.waiting.delete(member);
    if (text !== null) gathering.answers.push([worker, text]);
    if (gathering.waiting.size === 0) this.finish(ask);
  }

  /** A member left: nobody waits for its answer, and its own questions are dropped. */
  leave(member: string): void {
    for (const [ask, gathering] of this.open) {
      if (gathering.asker === member) {
        clearTimeout(gathering.timer);
        this.open.delete(ask);
      } else if (gathering.waiting.delete(member) && gathering.waiting.size === 0) {
        this.finish(ask);
      }
    }
  }

  /** `member` stopped answering: the questions waiting for it go on without it, naming it unanswered. */
  stopWaiting(member: string): void {
    for (const [ask, gathering] of this.open) {
      const worker = gathering.waiting.get(member);
      if (worker === undefined) continue;
      gathering.waiting.delete(member);
      gathering.skipped.push(worker);
      if (gathering.waiting.size === 0) this.finish(ask);
    }
  }

  close(): void {
    for (const gathering of this.open.values()) clearTimeout(gathering.timer);
    this.open.clear();
  }

  private timeOut(ask: number): void {
    const late = [...(this.open.get(ask)?.waiting.keys() ?? [])];
    this.finish(ask);
    if (late.length > 0) this.onTimeout(late);
  }

  private finish(ask: number): void {
    const gathering = this.open.get(ask);
    if (gathering === undefined) return;
    clearTimeout(gathering.timer);
    this.open.delete(ask);
    const unanswered = [...gathering.skipped, ...gathering.waiting.values()].sort((first, second) => first - second);
    this.members.get(gathering.asker)?.send({ gathered: [gathering.id, gathering.answers, unanswered] });
  }
}
