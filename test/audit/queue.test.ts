// The audit queue's early writes: under load a batch goes to the store as soon as enough events are
// queued, not only on the job's interval; after a failed write only the job retries.

import { describe, expect, test } from 'bun:test';
import type { Logger } from '../../core/logger.ts';
import type { Services } from '../../core/spec/services.ts';
import { AuditQueue, type PendingEvent } from '../../plugins/audit/queue.ts';

function event(index: number): PendingEvent {
  return {
    accountId: 'acct_1',
    type: 'request',
    occurredAt: new Date(1_750_000_000_000 + index).toISOString(),
    requestId: `req_${index}`,
    actorKeyId: 'key_1',
    actorRole: 'developer',
    actorTeamId: null,
    clientIp: null,
    action: 'request.chat',
    target: JSON.stringify({ endpoint: 'chat', model: 'gpt-4o' }),
    status: 200,
    details: JSON.stringify({ index }),
  };
}

function queueWith(appendRows: (rows: ReadonlyArray<readonly unknown[]>) => Promise<void>): AuditQueue {
  const services = {
    store: { appendRows: (_table: string, _columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>) => appendRows(rows) },
    credentials: { randomId: () => 'x_abcdefghijkl' },
    clock: { now: () => 1_750_000_000_000 },
  } as unknown as Services;
  const logger = { error: () => undefined } as unknown as Logger;
  return new AuditQueue(services, logger);
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('audit queue', () => {
  test('a batch is written without the job once 256 events are queued, not before', async () => {
    const written: unknown[][] = [];
    const queue = queueWith(async (rows) => {
      written.push(...rows.map((row) => [...row]));
    });
    for (let index = 0; index < 255; index++) queue.push(event(index));
    await nextTurn();
    expect(written.length).toBe(0);
    queue.push(event(255));
    await nextTurn();
    await nextTurn();
    expect(written.length).toBe(256);
    expect(queue.size).toBe(0);
    // In queue order, ids growing, the serialised details passed through as they are.
    const ids = written.map((row) => String(row[0]));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(256);
    expect(written[0]?.[12]).toBe('{"index":0}');
    expect(written[0]?.[10]).toBe('{"endpoint":"chat","model":"gpt-4o"}');
  });

  test('after a failed write, pushes do not start writes again: the job retries, with nothing lost', async () => {
    let attempts = 0;
    let failing = true;
    const written: unknown[] = [];
    const queue = queueWith(async (rows) => {
      attempts++;
      if (failing) throw new Error('disk full');
      written.push(...rows);
    });
    for (let index = 0; index < 256; index++) queue.push(event(index));
    await nextTurn();
    await nextTurn();
    expect(attempts).toBe(1);
    expect(queue.size).toBe(256);
    for (let index = 256; index < 600; index++) queue.push(event(index));
    await nextTurn();
    await nextTurn();
    expect(attempts).toBe(1);
    failing = false;
    await queue.flush();
    expect(written.length).toBe(600);
    // Written again, early writes resume.
    for (let index = 0; index < 256; index++) queue.push(event(index));
    await nextTurn();
    await nextTurn();
    expect(written.length).toBe(856);
  });
});
