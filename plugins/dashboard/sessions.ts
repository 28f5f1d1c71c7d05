// Dashboard sessions, in memory: a random id in an HttpOnly cookie, a random anti-CSRF token the page
// sends back as a header, and the hash of the gateway key that opened it (never the key). Sessions
// expire, and end on sign-out; revoking the gateway key ends them too, since the core looks the hash up
// on every request. A restart signs everyone out, which is what a self-hosted admin UI may do. Workers
// of one gateway (KEYWAY_WORKERS) and instances sharing Redis tell each other about sessions over the
// cluster bus, by the hash of the session id only, so a browser's connections may land on any of them.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'keyway_session';
export const CSRF_HEADER = 'x-keyway-csrf';
/** Enough for a team of admins; the oldest session is dropped first beyond it. */
const MAX_SESSIONS = 10_000;
/**
 * How long a request naming a session this member has not heard of waits for the cluster bus: a
 * browser signs in on one worker and may send its next request to another before the news arrives
 * (a millisecond or so between workers, more between instances over Redis under load).
 */
export const SESSION_ARRIVAL_WAIT_MS = 500;
/** Requests waiting at once at most; past it an unknown session is refused at once, as before. */
const MAX_ARRIVAL_WAITERS = 1_000;
/** core/cluster/local.ts: the bus of a process alone, which no news ever reaches. */
const LOCAL_CLUSTER = 'local';
/** A session id as randomToken makes it: 32 random bytes in base64url. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export interface DashboardSession {
  id: string;
  csrfToken: string;
  keyHash: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionStore {
  open(keyHash: string): DashboardSession;
  /** The live session a cookie header names, or undefined. */
  fromCookie(cookieHeader: string | null): DashboardSession | undefined;
  /** The key hash when the cookie names a live session and the header carries its token. */
  resolve(headers: Headers): string | undefined;
  /**
   * For a cookie naming a session this member does not know: settles true when another member's news
   * of it arrives, false after SESSION_ARRIVAL_WAIT_MS; undefined when there is nothing to wait for (no
   * cluster, no well-formed cookie, a session already known).
   */
  arrival(headers: Headers): Promise<boolean> | undefined;
  close(id: string): boolean;
  readonly size: number;
}

/** What the workers of a gateway (KEYWAY_WORKERS) or its instances tell each other about sessions: hashes only. */
interface SharedSession {
  idHash: string;
  keyHash: string;
  createdAt: number;
  expiresAt: number;
}

type SessionMessage = { open: SharedSession } | { close: string } | { sync: true };

export const SESSIONS_TOPIC = 'dashboard:sessions';

export interface SessionBus {
  /** The cluster's kind: `local` is a process alone, with nobody to hear from. */
  readonly name?: string;
  publish(topic: string, message: string): unknown;
  subscribe(topic: string, listener: (message: string) => void): () => void;
}

export function createSessionStore(lifetimeMs: number, now: () => number): SessionStore & { share(bus: SessionBus): void } {
  // Keyed by the hash of the session id: what is shared (and held) is useless to whoever reads it.
  const sessions = new Map<string, SharedSession>();
  let bus: SessionBus | undefined;
  /** Requests waiting for news of a session, by the hash of its id. */
  const waiting = new Map<string, Array<(arrived: boolean) => void>>();
  let waiters = 0;
  const arrived = (idHash: string) => {
    const list = waiting.get(idHash);
    if (list === undefined) return;
    waiting.delete(idHash);
    for (const settle of list) settle(true);
  };
  const tell = (message: SessionMessage) => {
    try {
      bus?.publish(SESSIONS_TOPIC, JSON.stringify(message));
    } catch {
      // Best effort: the other workers learn the session at the next sync.
    }
  };
  const live = (id: string | undefined): DashboardSession | undefined => {
    if (id === undefined) return undefined;
    const idHash = sha256(id);
    const session = sessions.get(idHash);
    if (session === undefined) return undefined;
    if (session.expiresAt <= now()) {
      sessions.delete(idHash);
      return undefined;
    }
    return { id, csrfToken: csrfTokenFor(id), keyHash: session.keyHash, createdAt: session.createdAt, expiresAt: session.expiresAt };
  };
  const prune = () => {
    const stamp = now();
    for (const [idHash, session] of sessions) if (session.expiresAt <= stamp) sessions.delete(idHash);
    while (sessions.size >= MAX_SESSIONS) {
      const oldest = sessions.keys().next().value;
      if (oldest === undefined) break;
      sessions.delete(oldest);
    }
  };
  const hear = (text: string) => {
    let message: SessionMessage;
    try {
      message = JSON.parse(text) as SessionMessage;
    } catch {
      return;
    }
    if ('open' in message && typeof message.open?.idHash === 'string' && message.open.expiresAt > now()) {
      prune();
      sessions.set(message.open.idHash, message.open);
      arrived(message.open.idHash);
    } else if ('close' in message && typeof message.close === 'string') sessions.delete(message.close);
    else if ('sync' in message) for (const session of sessions.values()) if (session.expiresAt > now()) tell({ open: session });
  };
  return {
    open(keyHash) {
      prune();
      const createdAt = now();
      const id = randomToken();
      const shared = { idHash: sha256(id), keyHash, createdAt, expiresAt: createdAt + lifetimeMs };
      sessions.set(shared.idHash, shared);
      tell({ open: shared });
      return { id, csrfToken: csrfTokenFor(id), keyHash, createdAt, expiresAt: shared.expiresAt };
    },
    fromCookie: (cookieHeader) => live(cookieValue(cookieHeader, SESSION_COOKIE)),
    resolve(headers) {
      const session = live(cookieValue(headers.get('cookie'), SESSION_COOKIE));
      const token = headers.get(CSRF_HEADER);
      if (session === undefined || token === null || !sameText(token, session.csrfToken)) return undefined;
      return session.keyHash;
    },
    arrival(headers) {
      if (bus === undefined || bus.name === LOCAL_CLUSTER || waiters >= MAX_ARRIVAL_WAITERS) return undefined;
      const id = cookieValue(headers.get('cookie'), SESSION_COOKIE);
      if (id === undefined || !SESSION_ID.test(id)) return undefined;
      const idHash = sha256(id);
      if (sessions.has(idHash)) return undefined;
      return new Promise<boolean>((resolve) => {
        waiters++;
        let done = false;
        const settle = (news: boolean) => {
          if (done) return;
          done = true;
          waiters--;
          clearTimeout(timer);
          resolve(news);
        };
        const timer = setTimeout(() => {
          const list = waiting.get(idHash);
          const rest = list?.filter((entry) => entry !== settle) ?? [];
          if (rest.length === 0) waiting.delete(idHash);
          else waiting.set(idHash, rest);
          settle(false);
        }, SESSION_ARRIVAL_WAIT_MS);
        const list = waiting.get(idHash);
        if (list === undefined) waiting.set(idHash, [settle]);
        else list.push(settle);
      });
    },
    close: (id) => {
      const idHash = sha256(id);
      const closed = sessions.delete(idHash);
      tell({ close: idHash });
      return closed;
    },
    get size() {
      return sessions.size;
    },
    /** Joins the other workers or instances: hears their sessions and asks for the ones opened before. */
    share(cluster) {
      if (bus !== undefined) return;
      bus = cluster;
      cluster.subscribe(SESSIONS_TOPIC, hear);
      tell({ sync: true });
    },
  };
}

/**
 * The anti-CSRF token follows from the session id, so any worker that knows the session can answer
 * it: a page can read it only from a same-origin answer, and the id itself never leaves the HttpOnly cookie.
 */
function csrfTokenFor(id: string): string {
  return createHash('sha256').update(`keyway-dashboard-csrf\u0000${id}`).digest('base64url');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

function sameText(left: string, right: string): boolean {
  const a = Buffer.from(left);
  const b = Buffer.from(right);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function cookieValue(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}
