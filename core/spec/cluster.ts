// The cluster contract: how one Keyway process tells the others about a change and how scheduled
// work runs once across them. One process alone uses core/cluster/local.ts (nobody to tell, every
// lease is its own); several instances use a plugin's driver (Redis pub/sub), several workers of one
// instance the parent process. Run test/conformance/cluster.ts against any implementation.

type MaybePromise<T> = T | Promise<T>;

export type ClusterListener = (message: string) => void;

export interface ClusterBus {
  readonly name: string;
  /** This process's id in the cluster; messages carry it so a sender ignores its own. */
  readonly instanceId: string;
  /**
   * Tells every other member of the cluster. Best effort, at most once: a member that misses a
   * message must still converge (config snapshots are also reloaded on a timer as a backstop). The
   * workers' bus resolves once every other responsive worker has run its listeners (within a second),
   * so a change awaited so is in force on all of them; Redis's once Redis has sent it to every listener.
   */
  publish(topic: string, message: string): MaybePromise<void>;
  /** Hears what other members publish on `topic`; never this process's own messages. Returns an unsubscribe. */
  subscribe(topic: string, listener: ClusterListener): () => void;
  /**
   * Asks to be the one member that runs `name` for the next `ttlMs`: true when this process holds
   * the lease (taken now or renewed), false when another live member holds it.
   */
  acquireLease(name: string, ttlMs: number): MaybePromise<boolean>;
  /**
   * Optional, for a bus that can lose its connection: `listener` runs once each time this member is
   * back in the cluster after messages may have been missed (a Redis outage). Whoever keeps state from
   * messages catches up in full then (the configuration snapshot reloads). Returns an unsubscribe.
   */
  onResume?(listener: () => void): () => void;
  close?(): MaybePromise<void>;
}

export interface ClusterDriver {
  name: string;
  accepts(url: string): boolean;
  open(url: string, options: { clock: { now(): number }; instanceId: string }): Promise<ClusterBus>;
}

/** The topics the core itself publishes on; plugins use their own names, prefixed with the plugin's. */
export const CLUSTER_TOPICS = {
  /** A management write changed configuration: reload the snapshot. The message is the writer's snapshot version. */
  config: 'config',
  /** Key cooldowns, keys refused or accepted again, provider circuit changes (core/routing/health/shared.ts): JSON, see HealthEvent. */
  health: 'health',
  /** POST /v1/platform/prices/reload on one member, accepted or refused: every other re-reads its KEYWAY_PRICES_FILE too. */
  pricesFile: 'prices-file',
} as const;

/** What the other workers answered to `WorkerSiblings.ask`, in time; the rest are named as unanswered. */
export interface SiblingAnswers {
  answers: Array<{ worker: number; text: string }>;
  /** The numbers of the live workers that did not answer within the primary's timeout (2 s), or were not asked: unresponsive. */
  unanswered: number[];
}

/**
 * The other worker processes of this instance (KEYWAY_WORKERS), reached through the primary: for what
 * each worker holds alone and one answer must cover (a scrape of GET /metrics sees every worker).
 * Never for the request path: a question waits up to the timeout for a stuck worker.
 */
export interface WorkerSiblings {
  /** This worker's number, 1 to N. */
  readonly worker: number;
  /**
   * Answers the other workers' questions on `topic` (one responder a topic; prefix it with the plugin's
   * name); `question` is the asker's detail ('' when none), such as the account a figure is wanted for.
   */
  respond(topic: string, responder: (question: string) => string | Promise<string>): void;
  /** Asks every other live worker, with an optional detail; rejects only when the primary is gone. */
  ask(topic: string, question?: string): Promise<SiblingAnswers>;
  /**
   * The other workers that stopped answering the primary (a missed heartbeat, bus confirmation or
   * question), until they answer again or are replaced (KEYWAY_WORKER_TIMEOUT_MS). Read, not awaited.
   */
  unresponsive(): readonly number[];
}
