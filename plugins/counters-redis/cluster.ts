// The cluster bus over Redis (core/spec/cluster.ts): messages by pub/sub, leases as keys. Publishing
// and leases go through one command connection; listening needs a connection of its own, since a
// Redis connection that subscribes can do nothing else. Channels and keys start with the prefix, so
// clusters (and test runs) sharing a server never hear each other.
//
// Redis pub/sub delivers at most once and only to whoever listens at that moment: while the
// subscriber is cut off, messages are lost. So when it is back (re-subscribed), `onResume` listeners
// run once and catch up in full (the configuration snapshot reloads).

import { RedisClient } from 'bun';
import type { ClusterBus, ClusterListener } from '../../core/spec/cluster.ts';
import { Connection, describeRedisUrl, RedisUnavailableError } from './counters.ts';
import { RELEASE_CLUSTER_LEASE, RENEW_CLUSTER_LEASE } from './scripts.ts';

export interface RedisClusterOptions {
  url: string;
  prefix: string;
  instanceId: string;
  /** A command (or the subscriber's ping) not answered within this many milliseconds: Redis is unreachable. */
  timeoutMs: number;
  /** How long after losing the subscriber it tries again, and how long failed commands fail at once. */
  retryMs?: number;
  /** How often the subscriber's connection is checked with a PING (a silent network cut closes no socket). */
  pingEveryMs?: number;
  log?: {
    warn(detail: Record<string, unknown>, message: string): void;
    error(detail: Record<string, unknown>, message: string): void;
  };
}

/** What travels on a channel: the sender, so it can skip its own, and the message. */
interface Envelope {
  from: string;
  message: string;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class RedisClusterBus implements ClusterBus {
  readonly name = 'redis';
  readonly instanceId: string;
  private readonly commands: Connection;
  private readonly topics = new Map<string, Set<ClusterListener>>();
  private readonly resumeListeners = new Set<() => void>();
  /** Leases this member took, given back at close so a successor need not wait for their end. */
  private readonly held = new Set<string>();
  private subscriber: { client: RedisClient; channels: Set<string> } | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  /** Messages may have been lost since the last time the subscriber was in place. */
  private missed = false;
  private closed = false;
  private readonly where: string;

  constructor(private readonly options: RedisClusterOptions) {
    this.instanceId = options.instanceId;
    this.where = describeRedisUrl(options.url);
    this.commands = new Connection({ url: options.url, timeoutMs: options.timeoutMs, retryMs: options.retryMs });
  }

  /** Connects both connections; false when Redis is unreachable (the subscriber keeps trying). */
  async start(): Promise<boolean> {
    await this.listen();
    this.pingTimer = setInterval(() => void this.checkSubscriber(), this.options.pingEveryMs ?? 5_000);
    this.pingTimer.unref?.();
    return this.subscriber !== undefined;
  }

  private channel(topic: string): string {
    return `${this.options.prefix}bus:${topic}`;
  }

  private leaseKey(name: string): string {
    return `${this.options.prefix}lease:${name}`;
  }

  async publish(topic: string, message: string): Promise<void> {
    const envelope: Envelope = { from: this.instanceId, message };
    try {
      await this.commands.send('PUBLISH', [this.channel(topic), JSON.stringify(envelope)]);
    } catch (error) {
      // Best effort by contract: the others catch up at their next reload (resume or backstop).
      this.options.log?.warn({ redis: this.where, topic, error: errorText(error) }, 'could not publish to the cluster; the other instances catch up later');
    }
  }

  subscribe(topic: string, listener: ClusterListener): () => void {
    let listeners = this.topics.get(topic);
    if (listeners === undefined) this.topics.set(topic, (listeners = new Set()));
    // A wrapper per call, so the same function subscribed twice is two subscriptions.
    const entry: ClusterListener = (message) => listener(message);
    listeners.add(entry);
    void this.subscribeChannel(topic);
    return () => {
      const current = this.topics.get(topic);
      if (current === undefined || !current.delete(entry) || current.size > 0) return;
      this.topics.delete(topic);
      const subscriber = this.subscriber;
      if (subscriber === undefined || !subscriber.channels.delete(this.channel(topic))) return;
      subscriber.client.unsubscribe(this.channel(topic)).catch(() => undefined);
    };
  }

  onResume(listener: () => void): () => void {
    const entry = () => listener();
    this.resumeListeners.add(entry);
    return () => this.resumeListeners.delete(entry);
  }

  async acquireLease(name: string, ttlMs: number): Promise<boolean> {
    const key = this.leaseKey(name);
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    try {
      const taken = await this.commands.send('SET', [key, this.instanceId, 'NX', 'PX', ttl]);
      const holding = taken === 'OK' || Number(await this.commands.run(RENEW_CLUSTER_LEASE, [key], [this.instanceId, ttl])) === 1;
      if (holding) this.held.add(name);
      else this.held.delete(name);
      return holding;
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      // Nobody can tell who holds it: run nothing rather than run twice.
      this.options.log?.warn({ redis: this.where, lease: name }, 'Redis unreachable: cluster-scoped work waits');
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    await Promise.all([...this.held].map((name) => this.commands.run(RELEASE_CLUSTER_LEASE, [this.leaseKey(name)], [this.instanceId]).catch(() => undefined)));
    this.subscriber?.client.close();
    this.subscriber = undefined;
    this.commands.close();
  }

  /** Opens the subscriber and subscribes every topic listened to; once at a time. */
  private listen(): Promise<void> {
    if (this.closed || this.subscriber !== undefined) return Promise.resolve();
    this.connecting ??= this.openSubscriber().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openSubscriber(): Promise<void> {
    const client = new RedisClient(this.options.url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: this.options.timeoutMs });
    const subscriber = { client, channels: new Set<string>() };
    client.onclose = () => {
      if (this.subscriber === subscriber) this.lose('connection closed');
    };
    try {
      await client.connect();
      if (this.closed) {
        client.close();
        return;
      }
      this.subscriber = subscriber;
      await Promise.all([...this.topics.keys()].map((topic) => this.subscribeChannel(topic)));
    } catch (error) {
      client.close();
      if (this.subscriber === subscriber) this.subscriber = undefined;
      this.lose(errorText(error));
      return;
    }
    if (this.subscriber !== subscriber) return;
    if (this.missed) {
      this.missed = false;
      this.options.log?.warn({ redis: this.where }, 'Redis reachable again: listening to the cluster; catching up on what was missed');
      for (const listener of this.resumeListeners) listener();
    }
  }

  private async subscribeChannel(topic: string): Promise<void> {
    const subscriber = this.subscriber;
    const channel = this.channel(topic);
    if (subscriber === undefined || subscriber.channels.has(channel)) return;
    subscriber.channels.add(channel);
    try {
      await subscriber.client.subscribe(channel, (raw) => this.hear(topic, raw));
    } catch (error) {
      subscriber.channels.delete(channel);
      if (this.subscriber === subscriber) {
        subscriber.client.close();
        this.lose(errorText(error));
      }
    }
  }

  private hear(topic: string, raw: string): void {
    let envelope: Partial<Envelope>;
    try {
      envelope = JSON.parse(raw) as Partial<Envelope>;
    } catch {
      return;
    }
    if (envelope.from === this.instanceId || typeof envelope.message !== 'string') return;
    for (const listener of this.topics.get(topic) ?? []) {
      try {
        listener(envelope.message);
      } catch (error) {
        this.options.log?.error({ topic, error: errorText(error) }, 'a cluster message listener failed');
      }
    }
  }

  /** The subscriber is gone: whatever is published until it is back is lost, so note it and retry. */
  private lose(reason: string): void {
    if (this.subscriber !== undefined) this.subscriber = undefined;
    // close() ends the subscriber itself (a graceful stop): no outage to report, nothing to retry.
    if (this.closed) return;
    if (!this.missed) this.options.log?.error({ redis: this.where, reason }, 'Redis unreachable: not hearing the other instances until it returns');
    this.missed = true;
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.listen();
    }, this.options.retryMs ?? 1_000);
    this.retryTimer.unref?.();
  }

  private async checkSubscriber(): Promise<void> {
    const subscriber = this.subscriber;
    if (subscriber === undefined) {
      void this.listen();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<'silent'>((resolve) => {
      timer = setTimeout(() => resolve('silent'), this.options.timeoutMs);
    });
    const answer = await Promise.race([
      subscriber.client.ping().then(
        () => 'answered' as const,
        () => 'silent' as const,
      ),
      silent,
    ]);
    clearTimeout(timer);
    if (answer === 'silent' && this.subscriber === subscriber) {
      this.subscriber = undefined;
      subscriber.client.close();
      this.lose(`no answer to PING within ${this.options.timeoutMs} ms`);
    }
  }
}
