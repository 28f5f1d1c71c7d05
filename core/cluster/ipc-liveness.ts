// Which workers answer, as the primary sees them (gunicorn's worker timeout). Any message from a
// worker was sent from its event loop, so it proves the loop turned; once it listens, the primary
// pings it every heartbeat and it answers at once (ipc-client.ts). A worker whose ping, bus
// confirmation or answer to a question did not come in time is *unresponsive*: nobody waits for it
// (a publish, a scrape of GET /metrics) until it is heard from again. One silent past the timeout
// (SIGSTOP, an endless loop, a deadlock) is reported once, and the primary kills and replaces it:
// the kernel keeps handing it connections otherwise, which wait as long as it does.

/** How often a listening worker is pinged, unless the timeout asks for a finer beat. */
export const HEARTBEAT_MS = 1_000;

export interface LivenessOptions {
  /** How often each listening worker is pinged; one ping unanswered by the next beat is a miss. */
  heartbeatMs: number;
  /** A listening worker silent this long is reported to `onSilent`, once; 0: never. */
  timeoutMs: number;
  onSilent(member: string, silentMs: number): void;
}

/** What changed for a member: it stopped answering, it answers again, or it left. */
export type LivenessChange = 'unresponsive' | 'responsive' | 'gone';

interface MemberState {
  heardAt: number;
  /** When the ping not yet followed by any message went out. */
  pingedAt: number | undefined;
  /** It listens: pinged, and timed against the timeout (a worker starting may block its loop for long). */
  watched: boolean;
  reported: boolean;
}

/** The heartbeat of a timeout: a few beats fit in it, and never more than one a second. */
export function heartbeatFor(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.max(50, Math.min(HEARTBEAT_MS, Math.floor(timeoutMs / 4))) : HEARTBEAT_MS;
}

export class Liveness {
  private readonly states = new Map<string, MemberState>();
  private readonly silent = new Set<string>();
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private nextPing = 1;

  constructor(
    private readonly clock: { now(): number },
    private readonly ping: (member: string, ping: number) => void,
    private readonly changed: (member: string, change: LivenessChange) => void,
    private readonly options: LivenessOptions | undefined,
  ) {
    if (options === undefined) return;
    this.timer = setInterval(() => this.beat(), options.heartbeatMs);
    this.timer.unref?.();
  }

  join(member: string): void {
    this.states.set(member, { heardAt: this.clock.now(), pingedAt: undefined, watched: false, reported: false });
  }

  /** The member listens and serves: from now on it is pinged and may be found silent. */
  watch(member: string): void {
    const state = this.states.get(member);
    if (state !== undefined) state.watched = true;
  }

  /** A message from `member`: its event loop turned. */
  heard(member: string): void {
    const state = this.states.get(member);
    if (state === undefined) return;
    state.heardAt = this.clock.now();
    state.pingedAt = undefined;
    state.reported = false;
    if (this.silent.delete(member)) this.changed(member, 'responsive');
  }

  /** `member` let a ping, a bus confirmation or a question go unanswered in time. */
  missed(member: string): void {
    if (!this.states.has(member) || this.silent.has(member)) return;
    this.silent.add(member);
    this.changed(member, 'unresponsive');
  }

  leave(member: string): void {
    this.states.delete(member);
    if (this.silent.delete(member)) this.changed(member, 'gone');
  }

  responsive(member: string): boolean {
    return !this.silent.has(member);
  }

  /** The members that stopped answering after they listened (the kernel hands them connections). */
  unresponsiveListening(): string[] {
    return [...this.silent].filter((member) => this.states.get(member)?.watched === true);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private beat(): void {
    const options = this.options;
    if (options === undefined) return;
    const now = this.clock.now();
    for (const [member, state] of this.states) {
      if (!state.watched) continue;
      const silentMs = now - state.heardAt;
      if (options.timeoutMs > 0 && silentMs > options.timeoutMs && !state.reported) {
        state.reported = true;
        options.onSilent(member, silentMs);
      }
      if (state.pingedAt !== undefined) this.missed(member);
      // One ping outstanding is enough: a loop that turns again answers it, and any message revives it.
      else {
        state.pingedAt = now;
        this.ping(member, this.nextPing++);
      }
    }
  }
}
