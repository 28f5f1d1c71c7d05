import type { ClusterBus, ClusterListener } from '../spec/cluster.ts';
import { randomId } from '../credentials/secrets.ts';

/**
 * Members of one process that share messages and leases: what several gateways started in one test
 * process use to behave like several instances, and what a lone gateway uses with a hub of its own.
 */
export class LocalClusterHub {
  private readonly listeners = new Map<string, Set<{ member: string; listener: ClusterListener }>>();
  private readonly leases = new Map<string, { holder: string; until: number }>();

  constructor(private readonly clock: { now(): number } = Date) {}

  join(instanceId: string = randomId('inst')): ClusterBus {
    return {
      name: 'local',
      instanceId,
      publish: (topic, message) => this.deliver(instanceId, topic, message),
      subscribe: (topic, listener) => this.listen(instanceId, topic, listener),
      acquireLease: (name, ttlMs) => this.lease(instanceId, name, ttlMs),
    };
  }

  /** Resolves once every listener ran, as the workers' bus does (core/cluster/ipc-host.ts). */
  private deliver(sender: string, topic: string, message: string): Promise<void> {
    for (const entry of this.listeners.get(topic) ?? []) {
      if (entry.member === sender) continue;
      // Delivered after the publisher's turn, as a network bus would, so no listener runs inside a write.
      queueMicrotask(() => entry.listener(message));
    }
    // Queued after the listeners, so it runs after them.
    return new Promise((resolve) => queueMicrotask(resolve));
  }

  private listen(member: string, topic: string, listener: ClusterListener): () => void {
    let set = this.listeners.get(topic);
    if (set === undefined) this.listeners.set(topic, (set = new Set()));
    const entry = { member, listener };
    set.add(entry);
    return () => set.delete(entry);
  }

  private lease(member: string, name: string, ttlMs: number): boolean {
    return claimLease(this.leases, member, name, ttlMs, this.clock.now());
  }
}

/** Takes or renews `name` for `member` until now + ttl, unless another member holds it still: the one lease rule of every bus. */
export function claimLease(leases: Map<string, { holder: string; until: number }>, member: string, name: string, ttlMs: number, now: number): boolean {
  const held = leases.get(name);
  if (held !== undefined && held.holder !== member && held.until > now) return false;
  leases.set(name, { holder: member, until: now + ttlMs });
  return true;
}

/** A process alone: nobody to tell, every lease its own. */
export function soloCluster(clock?: { now(): number }): ClusterBus {
  return new LocalClusterHub(clock).join();
}
