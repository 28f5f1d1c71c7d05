// Idle keep-alive connections per origin, bounded, most recently used first (so the ones left
// unused age out). Connections idle past the idle timeout are closed: upstream servers close theirs
// after a few seconds (Node 5 s, Bun 10 s), and a request should not meet one the peer is closing.

import type { ConnectionOwner, Http1Connection } from './connection.ts';

export interface PoolSettings {
  /** Idle connections kept per origin; more are closed when released. */
  maxIdlePerOrigin: number;
  idleTimeoutMs: number;
}

export class ConnectionPool implements ConnectionOwner {
  private readonly idle = new Map<string, Http1Connection[]>();
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly settings: PoolSettings) {}

  /** A live idle connection to `origin`, if one is kept. */
  acquire(origin: string): Http1Connection | undefined {
    const list = this.idle.get(origin);
    if (list === undefined) return undefined;
    const freshSince = performance.now() - this.settings.idleTimeoutMs;
    for (let connection = list.pop(); connection !== undefined; connection = list.pop()) {
      if (!connection.closed && connection.idleSince > freshSince) return connection;
      connection.destroy();
    }
    return undefined;
  }

  release(connection: Http1Connection): void {
    const origin = connection.target.origin;
    let list = this.idle.get(origin);
    if (list === undefined) {
      list = [];
      this.idle.set(origin, list);
    }
    if (list.length >= this.settings.maxIdlePerOrigin) {
      connection.destroy();
      return;
    }
    list.push(connection);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(100, this.settings.idleTimeoutMs / 2));
    this.sweeper.unref();
  }

  forget(connection: Http1Connection): void {
    const list = this.idle.get(connection.target.origin);
    const index = list?.indexOf(connection) ?? -1;
    if (index >= 0) list?.splice(index, 1);
  }

  /** Idle connections in the pool (tests and diagnostics). */
  idleCount(origin?: string): number {
    if (origin !== undefined) return this.idle.get(origin)?.length ?? 0;
    let count = 0;
    for (const list of this.idle.values()) count += list.length;
    return count;
  }

  private sweep(): void {
    const freshSince = performance.now() - this.settings.idleTimeoutMs;
    for (const [origin, list] of this.idle) {
      // Oldest first: the list is ordered by release time.
      while (list.length > 0 && (list[0] as Http1Connection).idleSince <= freshSince) (list.shift() as Http1Connection).destroy();
      if (list.length === 0) this.idle.delete(origin);
    }
    if (this.idle.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  close(): void {
    for (const list of this.idle.values()) for (const connection of list.splice(0)) connection.destroy();
    this.idle.clear();
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
