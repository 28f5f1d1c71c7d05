// The audit queue's rows: ids unique and growing in the queue's order (they break ties of
// `occurred_at` when the log is paged), request events serialised when queued passed through as they
// are, other events' details built when the batch is written.

import { describe, expect, test } from 'bun:test';
import type { Logger } from '../../core/logger.ts';
import type { Services } from '../../core/spec/services.ts';
import { AuditQueue, type PendingEvent } from '../../plugins/audit/queue.ts';

function event(index: number, serialised: boolean): PendingEvent {
  return {
    accountId: 'acct_1',
    type: serialised ? 'request' : 'admin',
    occurredAt: new Date(1_750_000_000_000).toISOString(),
    requestId: `req_${index}`,
    actorKeyId: 'key_1',
    actorRole: 'developer',
    actorTeamId: null,
    clientIp: null,
    action: 'request.chat',
    target: serialised ? JSON.stringify({ endpoint: 'chat', index }) : { endpoint: 'chat', index },
    status: 200,
    details: serialised ? JSON.stringify({ index }) : () => ({ index, built: true }),
  };
}

function queueWith(now: () => number, written: unknown[][]): AuditQueue {
  const services = {
    store: {
      appendRows: async (_table: string, _columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>) => {
        written.push(...rows.map((row) => [...row]));
      },
    },
    credentials: { randomId: () => 'x_abcdefghijkl' },
    clock: { now },
  } as unknown as Services;
  return new AuditQueue(services, { error: () => undefined } as unknown as Logger);
}

describe('audit queue', () => {
  test('ids are unique and grow in queue order, across batches and when the clock stands still', async () => {
    const written: unknown[][] = [];
    let now = 1_750_000_000_000;
    const queue = queueWith(() => now, written);
    for (let index = 0; index < 300; index++) queue.push(event(index, index % 2 === 0));
    await queue.flush();
    for (let index = 300; index < 400; index++) queue.push(event(index, index % 2 === 0));
    await queue.flush();
    now += 1;
    for (let index = 400; index < 450; index++) queue.push(event(index, index % 2 === 0));
    await queue.flush();
    const ids = written.map((row) => String(row[0]));
    expect(ids.length).toBe(450);
    expect(new Set(ids).size).toBe(450);
    expect([...ids].sort()).toEqual(ids);
    expect(written.map((row) => row[4])).toEqual(Array.from({ length: 450 }, (_, index) => `req_${index}`));
  });

  test('serialised targets and details are written as they are; lazy details are built and serialised', async () => {
    const written: unknown[][] = [];
    const queue = queueWith(() => 1_750_000_000_000, written);
    queue.push(event(0, true));
    queue.push(event(1, false));
    await queue.flush();
    expect(written[0]?.[10]).toBe('{"endpoint":"chat","index":0}');
    expect(written[0]?.[12]).toBe('{"index":0}');
    expect(written[1]?.[10]).toBe('{"endpoint":"chat","index":1}');
    expect(written[1]?.[12]).toBe('{"index":1,"built":true}');
  });
});
