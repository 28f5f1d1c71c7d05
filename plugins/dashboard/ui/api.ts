// The one way the page talks to the gateway: same-origin fetches of the public API, carrying the
// session cookie (the browser adds it) and the anti-CSRF token held in memory only.

let csrfToken = '';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface Session {
  signed_in: true;
  key_id: string;
  role: 'viewer' | 'developer' | 'admin' | 'operator';
  account_id: string;
  team_id: string | null;
  expires_at: string;
  csrf_token: string;
}

async function failure(response: Response): Promise<ApiError> {
  let message = `The gateway answered ${response.status}.`;
  let code: string | undefined;
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(message, response.status, code);
}

let sessionEnded: (() => void) | undefined;

/**
 * Who to tell when the API stops recognising the session: it expired, its key was revoked, the user
 * signed out elsewhere or the gateway restarted. The page then shows the sign-in screen again, not
 * the API's "Invalid or missing API key" on every page of a shell that can no longer do anything.
 */
export function onSessionEnded(listener: (() => void) | undefined): void {
  sessionEnded = listener;
}

export async function request(path: string, method = 'GET', body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { 'x-keyway-csrf': csrfToken };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (!response.ok) {
    const error = await failure(response);
    // A session call is refused 401 only when the session is gone (roles and teams are 403).
    if (response.status === 401) {
      setCsrfToken('');
      sessionEnded?.();
    }
    throw error;
  }
  return response;
}

export async function api<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
  const response = await request(path, method, body);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

export async function loadSession(): Promise<Session | undefined> {
  const response = await fetch('/dashboard/session', { credentials: 'same-origin' });
  if (!response.ok) throw await failure(response);
  const session = (await response.json()) as Session | { signed_in: false };
  if (!session.signed_in) return undefined;
  setCsrfToken(session.csrf_token);
  return session;
}

export async function signIn(key: string): Promise<Session> {
  const response = await fetch('/dashboard/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
    credentials: 'same-origin',
  });
  if (!response.ok) throw await failure(response);
  const session = (await response.json()) as Session;
  setCsrfToken(session.csrf_token);
  return session;
}

export async function signOut(): Promise<void> {
  await fetch('/dashboard/session', { method: 'DELETE', headers: { 'x-keyway-csrf': csrfToken }, credentials: 'same-origin' });
  setCsrfToken('');
}

export const isAdmin = (session: Session): boolean => session.role === 'admin' || session.role === 'operator';
/** An admin of the whole account: a team's admin member manages its team and its approvals only (docs/teams.md). */
export const isAccountAdmin = (session: Session): boolean => isAdmin(session) && session.team_id === null;
