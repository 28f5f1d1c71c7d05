// What the workers of one Keyway instance and their primary process say to each other over Bun's IPC
// channel (JSON): counter operations and cluster leases as batched calls answered by the primary,
// bus messages relayed by it to every other worker (each confirms it ran its listeners, and the
// publisher hears when all have), the worker's "listening" report, a question one worker puts to
// all the others (a scrape of GET /metrics, GET /v1/providers/health), gathered by the primary, and the primary's heartbeat:
// a `ping` each worker answers from its event loop, so a stopped or blocked worker falls silent.

/**
 * The longest a bus publish waits to hear that every other worker has run its listeners: the primary
 * answers by then, naming the workers still silent unresponsive (ipc-liveness.ts), so a stuck worker
 * holds one publish, not every one.
 */
export const DELIVERY_WAIT_MS = 1_000;

/** The Counters operations (core/spec/counters.ts), plus `lease`: ClusterBus.acquireLease. */
export type HostOperation =
  | 'reserve'
  | 'adjust'
  | 'get'
  | 'seed'
  | 'hit'
  | 'coolDown'
  | 'coolingUntil'
  | 'reserveLease'
  | 'settleLease'
  | 'renewLeases'
  | 'lease';

/** [call id, operation, arguments]: the id is the worker's, unique among its calls in flight. */
export type HostCall = [number, HostOperation, unknown[]];

/** [call id, 1 and the value, or 0 and an error message]. */
export type HostReply = [number, 1, unknown] | [number, 0, string];

export type PrimaryBound =
  | { calls: HostCall[] }
  /** `receipt`: the publisher's number for it, answered `published` once every other worker has heard it. */
  | { publish: [topic: string, message: string]; receipt?: number }
  /** This worker ran its listeners for the relayed message numbered `delivered`. */
  | { delivered: number }
  /** The worker listens on `port` and serves. */
  | { listening: number }
  /** Ask every other worker `topic` (and `question`, its detail); the primary answers with `gathered` under the same id. */
  | { gather: [id: number, topic: string, question?: string] }
  /** This worker's answer to the primary's `ask` (null: nothing to say on that topic). */
  | { answer: [ask: number, text: string | null] }
  /** The answer to the primary's `ping` of the same number: this worker's event loop turns. */
  | { pong: number };

export type WorkerBound =
  | { replies: HostReply[] }
  /** `delivery`: the primary's number for it, confirmed with `delivered` once the listeners ran. */
  | { message: [topic: string, message: string]; delivery?: number }
  | { published: number }
  /** Another worker's question, relayed by the primary under its own id. */
  | { ask: [ask: number, topic: string, question?: string] }
  /** What the other workers answered in time, by worker number, and the numbers of those that did not. */
  | { gathered: [id: number, answers: Array<[worker: number, text: string]>, unanswered: number[]] }
  /** The heartbeat: answer `pong` with the same number at once. */
  | { ping: number }
  /** The numbers of the other workers that stopped answering (none: all answer), sent when that changes. */
  | { unresponsive: number[] };

/** A two-way message channel: a worker's IPC link to its primary, or an in-process pair in tests. */
export interface IpcChannel<Outgoing, Incoming> {
  send(message: Outgoing): void;
  onMessage(listener: (message: Incoming) => void): void;
  /** The other side is gone: no reply will come. */
  onClose(listener: () => void): void;
}
