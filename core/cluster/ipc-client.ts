// A worker's side of the worker protocol (ipc-protocol.ts): Counters and a ClusterBus whose state lives
// in the primary process (ipc-host.ts), so budgets, rate limits and cooldowns are exact across the
// workers of one instance and a management write reaches them all; and WorkerSiblings, questions put
// to every other worker (a scrape of GET /metrics). Calls made in one turn of the
// event loop travel as one message and come back as one: one round trip per reservation at most, and
// under load one message carries the calls of many requests (at c=64, about 18 calls a message where
// a message per call cost each side about 11 µs of CPU: bench/RESULTS.md).

import type { ClusterBus, ClusterListener, SiblingAnswers, WorkerSiblings } from '../spec/cluster.ts';
import type { Counters, Lease, Reservation, ReserveOptions, SeedEntry } from '../spec/counters.ts';
import { DELIVERY_WAIT_MS, type HostOperation, type IpcChannel, type PrimaryBound, type WorkerBound } from './ipc-protocol.ts';

type Pending<Value = unknown> = { resolve: (value: Value) => void; reject: (error: Error) => void };

const PRIMARY_GONE = 'the primary process is gone: counters are unavailable';

/**
 * The primary answers a publish within DELIVERY_WAIT_MS, waiting for no worker longer; this bound is
 * for a primary that does not (it is busy or gone), so no publish waits much longer than that.
 */
const PUBLISH_WAIT_MS = DELIVERY_WAIT_MS + 250;

/**
 * The calls of one worker to its primary: batched until the event loop's current turn ends (the
 * requests it is handling have all made theirs), answered in one message per batch.
 */
export class HostClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private batch: Array<[number, HostOperation, unknown[]]> = [];
  private readonly listeners = new Map<string, Set<ClusterListener>>();
  private readonly gathering = new Map<number, Pending<SiblingAnswers>>();
  private readonly responders = new Map<string, (question: string) => string | Promise<string>>();
  /** Publishes waiting to hear that every other worker ran its listeners, by receipt. */
  private readonly receipts = new Map<number, () => void>();
  /** The other workers the primary last said do not answer. */
  private silentSiblings: readonly number[] = [];
  private closed = false;

  constructor(private readonly channel: IpcChannel<PrimaryBound, WorkerBound>) {
    channel.onMessage((message) => this.receive(message));
    channel.onClose(() => this.close());
  }

  call(operation: HostOperation, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(PRIMARY_GONE));
    const id = this.nextId++;
    if (this.batch.length === 0) setImmediate(() => this.flush());
    this.batch.push([id, operation, args]);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Resolves once every other responsive worker has run its listeners for the message (within about DELIVERY_WAIT_MS). */
  publish(topic: string, message: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const receipt = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settleReceipt(receipt), PUBLISH_WAIT_MS);
      timer.unref?.();
      this.receipts.set(receipt, () => {
        clearTimeout(timer);
        resolve();
      });
      this.channel.send({ publish: [topic, message], receipt });
    });
  }

  subscribe(topic: string, listener: ClusterListener): () => void {
    let set = this.listeners.get(topic);
    if (set === undefined) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Asks every other worker `topic` (and `question`) through the primary, which answers within its timeout. */
  gather(topic: string, question?: string): Promise<SiblingAnswers> {
    if (this.closed) return Promise.reject(new Error(PRIMARY_GONE));
    const id = this.nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<SiblingAnswers>();
    this.gathering.set(id, { resolve, reject });
    this.channel.send({ gather: question === undefined ? [id, topic] : [id, topic, question] });
    return promise;
  }

  respond(topic: string, responder: (question: string) => string | Promise<string>): void {
    this.responders.set(topic, responder);
  }

  /** The numbers of the other workers that stopped answering the primary, as it last said. */
  unresponsiveSiblings(): readonly number[] {
    return this.silentSiblings;
  }

  /** Every call still waiting fails: no answer will come. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const error = new Error(PRIMARY_GONE);
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
    for (const { reject } of this.gathering.values()) reject(error);
    this.gathering.clear();
    for (const receipt of [...this.receipts.keys()]) this.settleReceipt(receipt);
  }

  private settleReceipt(receipt: number): void {
    const settle = this.receipts.get(receipt);
    this.receipts.delete(receipt);
    settle?.();
  }

  private flush(): void {
    const calls = this.batch;
    this.batch = [];
    if (calls.length > 0 && !this.closed) this.channel.send({ calls });
  }

  private receive(message: WorkerBound): void {
    // Answered here, in this process's event loop: a loop that is stopped or blocked stays silent.
    if ('ping' in message) {
      if (!this.closed) this.channel.send({ pong: message.ping });
      return;
    }
    if ('unresponsive' in message) {
      this.silentSiblings = message.unresponsive;
      return;
    }
    if ('replies' in message) {
      for (const [id, ok, value] of message.replies) {
        const waiting = this.pending.get(id);
        if (waiting === undefined) continue;
        this.pending.delete(id);
        if (ok === 1) waiting.resolve(value);
        else waiting.reject(new Error(String(value)));
      }
      return;
    }
    if ('ask' in message) return void this.answer(...message.ask);
    if ('gathered' in message) {
      const [id, answers, unanswered] = message.gathered;
      this.gathering.get(id)?.resolve({ answers: answers.map(([worker, text]) => ({ worker, text })), unanswered });
      this.gathering.delete(id);
      return;
    }
    if ('published' in message) {
      this.settleReceipt(message.published);
      return;
    }
    const [topic, text] = message.message;
    for (const listener of this.listeners.get(topic) ?? []) {
      try {
        listener(text);
      } catch {
        // One listener's failure is its own; the others still hear the message.
      }
    }
    if (message.delivery !== undefined && !this.closed) this.channel.send({ delivered: message.delivery });
  }

  /** A question from another worker: the responder's text, or null when there is none or it failed. */
  private async answer(ask: number, topic: string, question = ''): Promise<void> {
    const responder = this.responders.get(topic);
    let text: string | null = null;
    try {
      if (responder !== undefined) text = await responder(question);
    } catch {
      // A responder that fails (the gateway still starting) answers nothing; the asker goes on without it.
    }
    if (!this.closed) this.channel.send({ answer: [ask, text] });
  }
}

/** Counters held by the primary process. */
export class IpcCounters implements Counters {
  readonly name = 'workers';

  constructor(private readonly host: HostClient) {}

  reserve(key: string, amount: number, limit: number, expiresAt: number, options?: ReserveOptions): Promise<Reservation> {
    const args: unknown[] = [key, amount, limit, expiresAt];
    if (options !== undefined) args.push(options);
    return this.host.call('reserve', args) as Promise<Reservation>;
  }

  adjust(key: string, delta: number, expiresAt: number): Promise<number> {
    return this.host.call('adjust', [key, delta, expiresAt]) as Promise<number>;
  }

  get(key: string): Promise<number> {
    return this.host.call('get', [key]) as Promise<number>;
  }

  seed(entries: readonly SeedEntry[], expiresAt: number): Promise<number> {
    return this.host.call('seed', [entries, expiresAt]) as Promise<number>;
  }

  hit(key: string, amount: number, windowMs: number): Promise<number> {
    return this.host.call('hit', [key, amount, windowMs]) as Promise<number>;
  }

  async coolDown(key: string, until: number): Promise<void> {
    await this.host.call('coolDown', [key, until]);
  }

  async coolingUntil(key: string): Promise<number | undefined> {
    const until = await this.host.call('coolingUntil', [key]);
    return typeof until === 'number' ? until : undefined;
  }

  /** Leases let the primary release a crashed worker's reservations at once (ipc-host.ts). */
  reserveLease(key: string, amount: number, limit: number, expiresAt: number, lease: Lease, options?: ReserveOptions): Promise<Reservation> {
    const args: unknown[] = [key, amount, limit, expiresAt, lease];
    if (options !== undefined) args.push(options);
    return this.host.call('reserveLease', args) as Promise<Reservation>;
  }

  settleLease(key: string, leaseId: string, spent: number, expiresAt: number): Promise<number> {
    return this.host.call('settleLease', [key, leaseId, spent, expiresAt]) as Promise<number>;
  }

  async renewLeases(leases: Array<{ key: string; id: string }>, until: number): Promise<void> {
    await this.host.call('renewLeases', [leases, until]);
  }
}

/** The cluster as the workers of one instance: messages relayed and leases held by the primary. */
export function ipcClusterBus(host: HostClient, instanceId: string): ClusterBus {
  return {
    name: 'workers',
    instanceId,
    publish: (topic, message) => host.publish(topic, message),
    subscribe: (topic, listener) => host.subscribe(topic, listener),
    acquireLease: async (name, ttlMs) => (await host.call('lease', [name, ttlMs])) === true,
  };
}

/** The other workers of this instance, asked through the primary. */
export function workerSiblings(host: HostClient, worker: number): WorkerSiblings {
  return {
    worker,
    respond: (topic, responder) => host.respond(topic, responder),
    ask: (topic, question) => host.gather(topic, question),
    unresponsive: () => host.unresponsiveSiblings(),
  };
}

/** This process's IPC link to the primary that spawned it (Bun.spawn with `ipc`). */
export function parentChannel(): IpcChannel<PrimaryBound, WorkerBound> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this process was not started by a Keyway primary (no IPC channel)');
  return {
    send: (message) => {
      send(message);
    },
    onMessage: (listener) => {
      process.on('message', (message) => listener(message as WorkerBound));
    },
    onClose: (listener) => {
      process.on('disconnect', listener);
    },
  };
}
