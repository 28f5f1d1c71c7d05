// What the core notes about a management request so the action can be observed without each route
// doing it by hand (core/http/admin-actions.ts reads it): the caller the route's guard authenticated,
// the JSON answer the route built, and, when a route records one, the state before and after.
// Everything here is held per request object and dropped with it.

import { redactSecrets } from '../../logger.ts';
import type { Principal, PrincipalRole } from '../../spec/principal.ts';

/** What a route may say about its action: the state before and after, and what it acted on. */
export interface RecordedChange {
  before?: unknown;
  after?: unknown;
  /** Replaces the route's parameters as the action's target (`{ team_id, member_id }`). */
  target?: Record<string, string>;
  /**
   * The account acted on, when the route names one in its body or query rather than acting on the
   * caller's (the operator's billing export of `account_id`): the action is filed under it, so that
   * account's admins read it too.
   */
  accountId?: string;
}

interface ActionNote {
  principal: Principal;
  /** The least role the route requires: `operator` routes act on the platform, not on an account. */
  routeRole: PrincipalRole;
  change: RecordedChange | undefined;
}

const notes = new WeakMap<Request, ActionNote>();
const answers = new WeakMap<Response, string>();

/** Called by the core's guards once a management request's key is authenticated. */
export function noteActor(request: Request, principal: Principal, routeRole: PrincipalRole): void {
  notes.set(request, { principal, routeRole, change: notes.get(request)?.change });
}

/**
 * For routes: records the state before and after a change (and optionally the target), so the audit
 * entry shows what changed, not only the answer. Values are scrubbed of secrets before anyone sees them.
 * Later calls merge into earlier ones.
 */
export function recordChange(request: Request, change: RecordedChange): void {
  const note = notes.get(request);
  if (note === undefined) return;
  note.change = { ...note.change, ...change };
}

/** Called by `json()`: the answer's text, so the audit can fall back to it without reading the body. */
export function noteAnswer(response: Response, text: string): void {
  answers.set(response, text);
}

export function actionNoteOf(request: Request): ActionNote | undefined {
  return notes.get(request);
}

export function answerTextOf(response: Response): string | undefined {
  return answers.get(response);
}

/** Field names whose string values are secrets, whatever they look like. */
const SECRET_FIELD =
  /^(?:api_?key|new_api_key|key|keys|secret|password|passphrase|token|authorization|admin_key|master_key|private_key|x-api-key|.+_(?:secret|password|token|api_key|private_key))$/i;
const REDACTED = '[REDACTED]';
const MAX_DEPTH = 12;

/**
 * A copy of a JSON value with every secret removed: secret-named fields holding text become
 * `[REDACTED]` (masked keys and key ids stay), and every other string is scrubbed of key-shaped text
 * and of the secret values in play (core/logger.ts `redactSecrets`).
 */
export function scrubSecrets(value: unknown, depth = MAX_DEPTH): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth === 0) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => scrubSecrets(item, depth - 1));
  const copy: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    copy[name] = SECRET_FIELD.test(name) ? scrubSecretField(item, depth - 1) : scrubSecrets(item, depth - 1);
  }
  return copy;
}

function scrubSecretField(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return REDACTED;
  if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? REDACTED : scrubSecrets(item, depth - 1)));
  return scrubSecrets(value, depth);
}
