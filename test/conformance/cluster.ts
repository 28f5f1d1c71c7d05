// The cluster conformance suite: what every ClusterBus implementation (core/spec/cluster.ts) must do,
// whatever carries the messages. Call it from your own test file with a way to make three members of
// one fresh cluster:
//
//   describeClusterConformance('redis', async () => [await open('a'), await open('b'), await open('c')]);
//
// Messages: they reach every other member, never the sender, and only listeners of their topic.
// "Never" is checked without sleeping: a later message, sent after the first was heard elsewhere,
// arrives behind it, so once the marker is heard the first would have been too. Leases run on real
// time (a bus may keep them on its server's clock), with short TTLs.

import { afterEach, describe, expect, test } from 'bun:test';
import type { ClusterBus } from '../../core/spec/cluster.ts';

export type CreateCluster = () => Promise<ClusterBus[]> | ClusterBus[];

const WAIT_MS = 5_000;

/** What one member heard on one topic, and a way to wait until it heard something. */
class Recorder {
  readonly heard: string[] = [];
  private waiters: Array<() => void> = [];

  readonly listener = (message: string): void => {
    this.heard.push(message);
    for (const wake of this.waiters.splice(0)) wake();
  };

  async until(check: (heard: string[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!check(this.heard)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`not heard within ${WAIT_MS} ms: ${what} (heard ${JSON.stringify(this.heard)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  has(message: string): boolean {
    return this.heard.includes(message);
  }
}

/**
 * A subscription may take a round trip to be in place: `publisher` sends numbered greetings until
 * every recorder heard one. What the test sends afterwards is heard by every live subscriber.
 */
async function whenListening(publisher: ClusterBus, topic: string, recorders: Recorder[]): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (let attempt = 0; !recorders.every((recorder) => recorder.heard.some((message) => message.startsWith('hello '))); attempt++) {
    if (Date.now() > deadline) throw new Error(`the subscriptions to '${topic}' were not in place within ${WAIT_MS} ms`);
    await publisher.publish(topic, `hello ${attempt}`);
    await Bun.sleep(20);
  }
}

const topicName = () => `conformance-${crypto.randomUUID().slice(0, 8)}`;

export function describeClusterConformance(name: string, create: CreateCluster): void {
  describe(`cluster conformance: ${name}`, () => {
    const made: ClusterBus[] = [];
    afterEach(async () => {
      for (const member of made.splice(0)) await member.close?.();
    });
    const members = async (): Promise<[ClusterBus, ClusterBus, ClusterBus]> => {
      const cluster = await create();
      made.push(...cluster);
      const [first, second, third] = cluster;
      if (first === undefined || second === undefined || third === undefined) throw new Error('the factory must return three members of one cluster');
      return [first, second, third];
    };

    describeMessages(members);
    describeLeases(members);
  });
}

type Members = () => Promise<[ClusterBus, ClusterBus, ClusterBus]>;

function describeMessages(members: Members): void {
  test('every member has its own instance id', async () => {
    const cluster = await members();
    expect(new Set(cluster.map((member) => member.instanceId)).size).toBe(3);
    for (const member of cluster) expect(member.instanceId.length).toBeGreaterThan(0);
  });

  test('a message reaches every other member, intact, and never comes back to its sender', async () => {
    const [a, b, c] = await members();
    const topic = topicName();
    const [atA, atB, atC] = [new Recorder(), new Recorder(), new Recorder()];
    a.subscribe(topic, atA.listener);
    b.subscribe(topic, atB.listener);
    c.subscribe(topic, atC.listener);
    await whenListening(b, topic, [atA, atC]);
    await whenListening(a, topic, [atB]);
    // Arbitrary text travels unchanged: JSON, newlines, quotes, non-ASCII.
    const message = '{"version":42}\n"quoted" — ünïcode ✓ \u0000 end';
    await a.publish(topic, message);
    await atB.until((heard) => heard.includes(message), 'the message at b');
    await atC.until((heard) => heard.includes(message), 'the message at c');
    // b sends a marker only after it heard a's message: had a's own message come back, it would be first.
    await b.publish(topic, 'marker');
    await atA.until((heard) => heard.includes('marker'), 'the marker at a');
    expect(atA.has(message)).toBe(false);
    expect(atB.has('marker')).toBe(false);
  });

  test('a listener hears only its topic, and several listeners on one topic each hear it', async () => {
    const [a, b] = await members();
    const [one, two] = [topicName(), topicName()];
    const [first, second, other] = [new Recorder(), new Recorder(), new Recorder()];
    b.subscribe(one, first.listener);
    b.subscribe(one, second.listener);
    b.subscribe(two, other.listener);
    await whenListening(a, one, [first, second]);
    await whenListening(a, two, [other]);
    await a.publish(one, 'for one');
    await a.publish(two, 'for two');
    await first.until((heard) => heard.includes('for one'), 'the first listener');
    await second.until((heard) => heard.includes('for one'), 'the second listener');
    await other.until((heard) => heard.includes('for two'), 'the other topic');
    expect(other.has('for one')).toBe(false);
    expect(first.has('for two')).toBe(false);
    expect(second.heard.filter((message) => message === 'for one')).toHaveLength(1);
  });

  test('after unsubscribing, a listener hears nothing more; the others on the topic still do', async () => {
    const [a, b] = await members();
    const topic = topicName();
    const [leaving, staying] = [new Recorder(), new Recorder()];
    const unsubscribe = b.subscribe(topic, leaving.listener);
    b.subscribe(topic, staying.listener);
    await whenListening(a, topic, [leaving, staying]);
    await a.publish(topic, 'before');
    await leaving.until((heard) => heard.includes('before'), 'the message before unsubscribing');
    unsubscribe();
    await a.publish(topic, 'after');
    await staying.until((heard) => heard.includes('after'), 'the message after unsubscribing');
    expect(leaving.has('after')).toBe(false);
    // Unsubscribing twice is harmless.
    unsubscribe();
  });

  test('when a topic has no listener left, messages on it go nowhere and a new listener hears the next ones', async () => {
    const [a, b] = await members();
    const topic = topicName();
    const gone = new Recorder();
    const unsubscribe = b.subscribe(topic, gone.listener);
    await whenListening(a, topic, [gone]);
    unsubscribe();
    await a.publish(topic, 'unheard');
    const back = new Recorder();
    b.subscribe(topic, back.listener);
    await whenListening(a, topic, [back]);
    await a.publish(topic, 'heard');
    await back.until((heard) => heard.includes('heard'), 'the message to the new listener');
    expect(gone.has('unheard')).toBe(false);
    expect(gone.has('heard')).toBe(false);
  });
}

function describeLeases(members: Members): void {
  test('a lease is exclusive: its holder renews it, the others are refused while it lives', async () => {
    const [a, b, c] = await members();
    const lease = `lease-${crypto.randomUUID()}`;
    expect(await a.acquireLease(lease, 10_000)).toBe(true);
    expect(await b.acquireLease(lease, 10_000)).toBe(false);
    expect(await c.acquireLease(lease, 10_000)).toBe(false);
    expect(await a.acquireLease(lease, 10_000)).toBe(true);
    expect(await b.acquireLease(lease, 10_000)).toBe(false);
  });

  test('of many members asking at once, exactly one gets the lease', async () => {
    const cluster = await members();
    const lease = `lease-${crypto.randomUUID()}`;
    const answers = await Promise.all(Array.from({ length: 30 }, (_, index) => (cluster[index % 3] as ClusterBus).acquireLease(lease, 10_000)));
    const winners = new Set(answers.flatMap((won, index) => (won ? [index % 3] : [])));
    expect(winners.size).toBe(1);
  });

  test('leases of different names are independent', async () => {
    const [a, b] = await members();
    const [one, two] = [`lease-${crypto.randomUUID()}`, `lease-${crypto.randomUUID()}`];
    expect(await a.acquireLease(one, 10_000)).toBe(true);
    expect(await b.acquireLease(two, 10_000)).toBe(true);
    expect(await a.acquireLease(two, 10_000)).toBe(false);
    expect(await b.acquireLease(one, 10_000)).toBe(false);
  });

  test('a lease not renewed passes to another member after its TTL', async () => {
    const [a, b, c] = await members();
    const lease = `lease-${crypto.randomUUID()}`;
    expect(await a.acquireLease(lease, 300)).toBe(true);
    expect(await b.acquireLease(lease, 10_000)).toBe(false);
    await Bun.sleep(600);
    expect(await b.acquireLease(lease, 10_000)).toBe(true);
    // Now b holds it: the former holder is refused like anyone else.
    expect(await a.acquireLease(lease, 10_000)).toBe(false);
    expect(await c.acquireLease(lease, 10_000)).toBe(false);
  });

  test('renewal by the holder carries the lease past its first TTL', async () => {
    const [a, b] = await members();
    const lease = `lease-${crypto.randomUUID()}`;
    expect(await a.acquireLease(lease, 3_000)).toBe(true);
    await Bun.sleep(1_500);
    expect(await a.acquireLease(lease, 3_000)).toBe(true);
    // Past the first TTL (3 s after taking it), inside the renewed one (4.5 s).
    await Bun.sleep(2_000);
    expect(await b.acquireLease(lease, 3_000)).toBe(false);
  }, 10_000);
}
