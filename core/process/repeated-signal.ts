// One stop can reach a process twice: Ctrl+C in a terminal signals the whole foreground group, and
// `npm start` passes its own copy on to the gateway it runs (QA20 ops), within milliseconds of the
// first. Counted as a second signal, that copy ended every request in flight at once instead of
// letting them drain. A repeat this soon after the first is the same stop; one sent on purpose to end
// the drain comes later (a person pressing Ctrl+C again, an orchestrator's second signal).

/** A repeat of a stop signal sooner than this after the first is the same stop delivered twice. */
export const SAME_STOP_WINDOW_MS = 250;

/** `first` starts the drain, `copy` is that same stop heard again, `repeat` asks to end the drain now. */
export type StopSignal = 'first' | 'copy' | 'repeat';

/** Sorts the stop signals a process receives, in the order they arrive. */
export function stopSignals(now: () => number = () => performance.now()): { next(): StopSignal } {
  let firstAt: number | undefined;
  return {
    next() {
      const at = now();
      if (firstAt === undefined) {
        firstAt = at;
        return 'first';
      }
      return at - firstAt < SAME_STOP_WINDOW_MS ? 'copy' : 'repeat';
    },
  };
}
