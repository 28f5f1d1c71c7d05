// Dashboard sessions, in memory: a random id in an HttpOnly cookie, a random anti-CSRF token the page
// sends back as a header, and the hash of the gateway key that opened it (never the key). Sessions
// expire, and end on sign-out; revoking the gateway key ends them too, since the core looks the hash up
// on every request. A restart signs everyone out, which is what a self-hosted admin UI may do.

import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'keyway_session';
export const CSRF_HEADER = 'x-keyway-csrf';
/** Enough for a team of admins; the oldest session is dropped first beyond it. */
const MAX_SESSIONS = 10_000;

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
  close(id: string): boolean;
  readonly size: number;
}

export function createSessionStore(lifetimeMs: number, now: () => number): SessionStore {
  const sessions = new Map<string, DashboardSession>();
  const live = (id: string | undefined): DashboardSession | undefined => {
    if (id === undefined) return undefined;
    const session = sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= now()) {
      sessions.delete(id);
      return undefined;
    }
    return session;
  };
  const prune = () => {
    const stamp = now();
    for (const [id, session] of sessions) if (session.expiresAt <= stamp) sessions.delete(id);
    while (sessions.size >= MAX_SESSIONS) {
      const oldest = sessions.keys().next().value;
      if (oldest === undefined) break;
      sessions.delete(oldest);
    }
  };
  return {
    open(keyHash) {
      prune();
      const createdAt = now();
      const session = { id: randomToken(), csrfToken: randomToken(), keyHash, createdAt, expiresAt: createdAt + lifetimeMs };
      sessions.set(session.id, session);
      return session;
    },
    fromCookie: (cookieHeader) => live(cookieValue(cookieHeader, SESSION_COOKIE)),
    resolve(headers) {
      const session = live(cookieValue(headers.get('cookie'), SESSION_COOKIE));
      const token = headers.get(CSRF_HEADER);
      if (session === undefined || token === null || !sameText(token, session.csrfToken)) return undefined;
      return session.keyHash;
    },
    close: (id) => sessions.delete(id),
    get size() {
      return sessions.size;
    },
  };
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
