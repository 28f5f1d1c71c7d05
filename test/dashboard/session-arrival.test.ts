// A browser signs in on one worker and may send its next request to another before the cluster bus
// has told that one about the session. The other worker waits for the news (briefly) instead of
// answering 401: two session stores joined by a bus that delivers late, and the core's management
// authentication that waits on them.

import { describe, expect, test } from 'bun:test';
import { recogniseManagementAwaiting } from '../../core/credentials/authenticate.ts';
import type { ConfigSnapshots } from '../../core/credentials/snapshot.ts';
import { KeywayError } from '../../core/errors.ts';
import type { Principal } from '../../core/spec/plugin.ts';
import { createSessionStore, CSRF_HEADER, SESSION_ARRIVAL_WAIT_MS, SESSION_COOKIE, type SessionBus } from '../../plugins/dashboard/sessions.ts';

/** A bus between stores that delivers every message to the others after `delayMs`. */
function lateBus(delayMs: number) {
  const listeners: Array<{ member: number; listener: (message: string) => void }> = [];
  const member = (id: number): SessionBus => ({
    publish(_topic, message) {
      setTimeout(() => {
        for (const entry of listeners) if (entry.member !== id) entry.listener(message);
      }, delayMs);
    },
    subscribe(_topic, listener) {
      const entry = { member: id, listener };
      listeners.push(entry);
      return () => listeners.splice(listeners.indexOf(entry), 1);
    },
  });
  return { member };
}

const HOUR = 3_600_000;
const headersFor = (id: string, csrf: string) => new Headers({ cookie: `${SESSION_COOKIE}=${id}`, [CSRF_HEADER]: csrf });

describe('a session opened on another member', () => {
  test('is refused until the news arrives, and the wait ends as soon as it does', async () => {
    const bus = lateBus(60);
    const first = createSessionStore(HOUR, Date.now);
    const second = createSessionStore(HOUR, Date.now);
    first.share(bus.member(1));
    second.share(bus.member(2));
    const session = first.open('key-hash-1');
    const headers = headersFor(session.id, session.csrfToken);
    expect(second.resolve(headers)).toBeUndefined();
    const started = performance.now();
    expect(await second.arrival(headers)).toBe(true);
    expect(performance.now() - started).toBeLessThan(SESSION_ARRIVAL_WAIT_MS);
    expect(second.resolve(headers)).toBe('key-hash-1');
    // Known now: nothing more to wait for.
    expect(second.arrival(headers)).toBeUndefined();
  });

  test('a session nobody opened is refused after the wait', async () => {
    const second = createSessionStore(HOUR, Date.now);
    second.share(lateBus(10).member(2));
    const headers = headersFor('A'.repeat(43), 'token');
    const started = performance.now();
    expect(await second.arrival(headers)).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(SESSION_ARRIVAL_WAIT_MS - 5);
    expect(second.resolve(headers)).toBeUndefined();
  });

  test('nothing to wait for: no cluster or a process alone, no cookie, a cookie that is not a session id', () => {
    const alone = createSessionStore(HOUR, Date.now);
    expect(alone.arrival(headersFor('A'.repeat(43), 'token'))).toBeUndefined();
    const single = createSessionStore(HOUR, Date.now);
    single.share({ ...lateBus(10).member(3), name: 'local' });
    expect(single.arrival(headersFor('A'.repeat(43), 'token'))).toBeUndefined();
    const joined = createSessionStore(HOUR, Date.now);
    joined.share(lateBus(10).member(2));
    expect(joined.arrival(new Headers())).toBeUndefined();
    expect(joined.arrival(headersFor('not-a-session-id', 'token'))).toBeUndefined();
  });
});

describe('management authentication', () => {
  const principal = { keyId: 'key_1', accountId: 'acc_1', role: 'admin' } as Principal;
  const store = { current: { principalsByHash: new Map([['key-hash-1', principal]]) } } as unknown as ConfigSnapshots;

  test('waits for an arrival, then authenticates with the session that arrived', async () => {
    let known = false;
    const sessions = [{ value: () => (known ? 'key-hash-1' : undefined) }];
    const arrivals = [
      {
        value: () =>
          new Promise<boolean>((resolve) =>
            setTimeout(() => {
              known = true;
              resolve(true);
            }, 20),
          ),
      },
    ];
    expect(await recogniseManagementAwaiting(store, new Headers({ cookie: 'x=1' }), sessions, arrivals)).toBe(principal);
  });

  test('refuses as before when nothing arrives, and never waits for a bearer key', async () => {
    let waited = 0;
    const sessions = [{ value: () => undefined }];
    const arrivals = [
      {
        value: () => {
          waited++;
          return Promise.resolve(false);
        },
      },
    ];
    await expect(recogniseManagementAwaiting(store, new Headers({ cookie: 'x=1' }), sessions, arrivals)).rejects.toBeInstanceOf(KeywayError);
    expect(waited).toBe(1);
    await expect(recogniseManagementAwaiting(store, new Headers({ authorization: 'Bearer kw-wrong' }), sessions, arrivals)).rejects.toBeInstanceOf(KeywayError);
    expect(waited).toBe(1);
  });
});
