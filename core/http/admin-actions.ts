// Every management action is observable without each route doing it by hand: after a POST, PUT, PATCH
// or DELETE whose key a management guard authenticated (guarded() for core routes, the plugin route
// wrapper for plugin routes that declare a role), the core builds one AdminAction and hands it to
// each plugin's `adminActions` observer. Inference routes authenticate through the lifecycle, never
// through a guard, so they are never reported here. Observers run before the answer is sent, and the
// answer waits for the promise an observer returns: the audit plugin writes the event to the database
// then, so a client that reads the log next sees its action whichever worker or instance answers the
// read. Management calls are rare and off the request path; their errors are logged, never answered.

import type { Logger } from '../logger.ts';
import type { AdminAction, HttpMethod } from '../spec/plugin.ts';
import type { PluginSet } from '../registry.ts';
import { actionNoteOf, answerTextOf, scrubSecrets } from './kit/audit-trail.ts';

const MUTATING = new Set<string>(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Above this, a before/after value is replaced by a note of its size: an audit row is not a data dump. */
const MAX_STATE_CHARACTERS = 32_768;
const MAX_TARGET_CHARACTERS = 200;

export interface AdminActionContext {
  request: Request;
  route: string;
  params: Record<string, string> | undefined;
  response: unknown;
}

/**
 * The function app.ts runs after every management route's handler: it never changes the answer, and
 * returns a promise (never rejected) while an observer's work must end before the answer is sent.
 */
export function createAdminActionEmitter(options: {
  observers: PluginSet['adminActionObservers'];
  logger: Logger;
  now: () => number;
  clientAddress: (request: Request) => string | undefined;
}): (context: AdminActionContext) => Promise<void> | undefined {
  const { observers, logger } = options;
  return (context) => {
    if (observers.length === 0 || !MUTATING.has(context.request.method)) return undefined;
    const note = actionNoteOf(context.request);
    if (note === undefined || !(context.response instanceof Response)) return undefined;
    let action: AdminAction;
    try {
      action = buildAction(context, note, options);
    } catch (error) {
      logger.error({ route: context.route, error: error instanceof Error ? error.message : String(error) }, 'could not describe a management action');
      return undefined;
    }
    const pending: Array<Promise<void>> = [];
    for (const { plugin, value: observe } of observers) {
      const failed = (error: unknown) =>
        logger.error({ plugin, route: action.route, error: error instanceof Error ? error.message : String(error) }, 'admin action observer failed');
      try {
        const result = observe(action);
        if (result instanceof Promise) pending.push(result.catch(failed));
      } catch (error) {
        failed(error);
      }
    }
    return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
  };
}

function buildAction(
  context: AdminActionContext,
  note: NonNullable<ReturnType<typeof actionNoteOf>>,
  options: { now: () => number; clientAddress: (request: Request) => string | undefined },
): AdminAction {
  const response = context.response as Response;
  const { principal, change } = note;
  const answer = change !== undefined && 'after' in change ? change.after : parseAnswer(answerTextOf(response));
  return {
    requestId: response.headers.get('x-request-id') ?? '',
    occurredAt: new Date(options.now()).toISOString(),
    actor: { keyId: principal.keyId, role: principal.role, accountId: principal.accountId, teamId: principal.teamId },
    routeRole: note.routeRole,
    accountId: change?.accountId,
    clientIp: options.clientAddress(context.request),
    method: context.request.method as Exclude<HttpMethod, 'GET'>,
    route: context.route,
    target: targetOf(change?.target ?? context.params ?? {}),
    status: response.status,
    before: bounded(change?.before),
    after: bounded(answer),
  };
}

function parseAnswer(text: string | undefined): unknown {
  if (text === undefined || text.length === 0) return undefined;
  if (text.length > MAX_STATE_CHARACTERS) return { omitted: `an answer of ${text.length} characters` };
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function bounded(value: unknown): unknown {
  if (value === undefined) return undefined;
  const scrubbed = scrubSecrets(value);
  const size = JSON.stringify(scrubbed)?.length ?? 0;
  return size > MAX_STATE_CHARACTERS ? { omitted: `a value of ${size} characters` } : scrubbed;
}

function targetOf(params: Record<string, string>): Record<string, string> {
  const target: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) target[name] = String(scrubSecrets(String(value))).slice(0, MAX_TARGET_CHARACTERS);
  return target;
}
