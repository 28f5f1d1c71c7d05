// One ticking timer for every request deadline. A setTimeout per attempt (and its clearTimeout) cost
// more than the rest of the attempt's bookkeeping; deadlines checked every few milliseconds by one
// shared interval cost a Set insertion and removal instead.

const TICK_MS = 5;

interface Deadline {
  at: number;
  fire: () => void;
}

const pending = new Set<Deadline>();
let ticker: ReturnType<typeof setInterval> | undefined;

function tick(): void {
  const now = performance.now();
  for (const deadline of pending) {
    if (deadline.at > now) continue;
    pending.delete(deadline);
    deadline.fire();
  }
  if (pending.size === 0 && ticker !== undefined) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

export interface DeadlineHandle {
  cancel(): void;
}

/** Calls `fire` once, about `milliseconds` from now (within one tick), unless cancelled first. */
export function scheduleDeadline(milliseconds: number, fire: () => void): DeadlineHandle {
  const deadline: Deadline = { at: performance.now() + milliseconds, fire };
  pending.add(deadline);
  if (ticker === undefined) {
    ticker = setInterval(tick, TICK_MS);
    // A pending deadline must not keep a stopping process alive.
    ticker.unref?.();
  }
  return { cancel: () => void pending.delete(deadline) };
}
