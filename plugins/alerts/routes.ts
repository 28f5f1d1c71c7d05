// The alerts API: POST /v1/alerts (the seed's `{ "alerts": [ … ] }`), GET /v1/alerts,
// DELETE /v1/alerts/{id}, GET /v1/alerts/events. Account admins only; accounts never see each other's.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { parsePeriod } from '../../core/http/kit/period.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import type { TeamsSection } from '../teams/types.ts';
import { maskTarget } from './deliver.ts';
import type { AlertEvaluator } from './evaluate.ts';
import { ALERT_TYPES, AlertsBodySchema, RULE_SCHEMAS, ruleConfig, ruleOf, takesProvider, type AlertRule, type AlertType } from './schema.ts';
import { eventOf } from './store.ts';

const MAX_ALERTS_PER_ACCOUNT = 200;
const EMAIL = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]+$/;

export interface AlertRoutesContext {
  services: Services;
  evaluator: AlertEvaluator;
}

function accountAdmin(services: Services, principal: Principal | undefined): Principal {
  if (principal === undefined) throw services.errors.create('invalid_api_key');
  if (principal.teamId !== undefined) throw services.errors.create('permission_denied', { detail: "Alerts are the account's: use an account admin key." });
  return principal;
}

/** Validates one entry of `alerts[]` against its type's schema, naming the field as `alerts[i].field`. */
function validateEntry(services: Services, entry: Record<string, unknown>, index: number): AlertType {
  const prefix = `alerts[${index}]`;
  const type = entry.type as string;
  if (!(ALERT_TYPES as readonly string[]).includes(type)) {
    throw services.errors.create('invalid_field', { param: `${prefix}.type`, detail: `must be one of ${ALERT_TYPES.join(', ')}` }, { param: `${prefix}.type` });
  }
  checkProvider(services, entry, type as AlertType, prefix);
  try {
    services.http.validateBody(RULE_SCHEMAS[type as AlertType], entry);
  } catch (error) {
    if (!(error instanceof services.errors.KeywayError)) throw error;
    const inner = error.param ?? 'body';
    const param = `${prefix}${inner.startsWith('[') ? '' : '.'}${inner}`;
    if (error.code === 'missing_field') throw services.errors.create('missing_field', { param }, { param });
    const detail = error.message.replace(/^Invalid value for '[^']*': /, '');
    throw services.errors.create('invalid_field', { param, detail }, { param });
  }
  return type as AlertType;
}

/**
 * A rule's provider must be a loaded provider: a misspelt or aliased name (`openaii`, `gemini` for
 * `google`) matches no usage row, so the alert would never fire. Checked before the schema, whose
 * pattern alone could not say which names are valid; a value that is not text is left to the schema.
 */
function checkProvider(services: Services, entry: Record<string, unknown>, type: AlertType, prefix: string): void {
  const provider = entry.provider;
  if (typeof provider !== 'string' || !takesProvider(type)) return;
  const known = services.providerKeys.providers();
  if (known.includes(provider)) return;
  const param = `${prefix}.provider`;
  const detail = `unknown provider '${provider.slice(0, 64)}'; known providers: ${known.join(', ')}`;
  throw services.errors.create('invalid_field', { param, detail }, { param });
}

/** Refuses (400 naming `param`) a target no channel can deliver to, or one at an address Keyway may not call. */
export function checkTarget(services: Services, target: string, param: string): void {
  // A webhook at the cloud metadata address, a private network or Keyway itself is refused up front.
  const refused = /^https?:\/\//i.test(target) ? services.outbound.refusal(target) : undefined;
  if (refused !== undefined) throw services.errors.create('invalid_field', { param, detail: `this address ${refused}` }, { param });
  if (services.alerts.channelFor(target) !== undefined) return;
  if (EMAIL.test(target)) return;
  if (/^https:\/\/[^\s/]+/i.test(target)) {
    try {
      new URL(target);
      return;
    } catch {
      // falls through to the error below
    }
  }
  const detail = /^http:\/\//i.test(target)
    ? 'webhooks must use https://'
    : 'must be an e-mail address, an https:// webhook or Slack incoming-webhook URL, or a target an alert channel plugin accepts';
  throw services.errors.create('invalid_field', { param, detail }, { param });
}

function resolveTeam(services: Services, accountId: string, team: string, param: string): string {
  const teams = services.snapshot.section<TeamsSection>('teams')?.byId;
  for (const view of teams?.values() ?? []) {
    if (view.accountId === accountId && (view.id === team || view.name === team)) return view.id;
  }
  throw services.errors.create('invalid_field', { param, detail: 'no team with this id or name in the account' }, { param });
}

export function alertView(services: Services, rule: AlertRule): Record<string, unknown> {
  const view: Record<string, unknown> = { id: rule.id, object: 'alert', type: rule.type };
  if (rule.name !== undefined) view.name = rule.name;
  if (rule.provider !== undefined) view.provider = rule.provider;
  if (rule.team !== undefined) view.team = rule.team;
  if (rule.threshold !== undefined) view.threshold = rule.threshold;
  if (rule.period !== undefined) view.period = rule.period;
  if (rule.sensitivity !== undefined) view.sensitivity = rule.sensitivity;
  if (rule.metrics !== undefined) view.metrics = rule.metrics;
  if (rule.windowMinutes !== undefined) view.window_minutes = rule.windowMinutes;
  if (rule.minRequests !== undefined) view.min_requests = rule.minRequests;
  view.notify = rule.notify.map(maskTarget);
  view.channels = rule.notify.map((target) => services.alerts.channelFor(target) ?? null);
  view.created_at = rule.createdAt;
  return view;
}

async function createAlerts({ services }: AlertRoutesContext, request: Request, principal: Principal): Promise<Response> {
  const raw = await services.http.readJson(request);
  // The seed sends `{ "alerts": [ … ] }`; one bare alert object is accepted too.
  const body = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'type' in raw && !('alerts' in raw) ? { alerts: [raw] } : raw;
  const { alerts } = services.http.validateBody(AlertsBodySchema, body);
  const existing = await services.store.query('SELECT COUNT(*) AS count FROM alerts WHERE account_id = ? AND deleted_at IS NULL', [principal.accountId]);
  if (Number(existing[0]?.count ?? 0) + alerts.length > MAX_ALERTS_PER_ACCOUNT) {
    throw services.errors.create('invalid_request', { detail: `An account may have at most ${MAX_ALERTS_PER_ACCOUNT} alerts; delete some first.` });
  }
  const rows: Array<{ id: string; type: AlertType; config: Record<string, unknown>; notify: string[] }> = [];
  const warnings: string[] = [];
  alerts.forEach((entry, index) => {
    const item = entry as Record<string, unknown>;
    const type = validateEntry(services, item, index);
    const notify = [...new Set(item.notify as string[])];
    notify.forEach((target, position) => {
      checkTarget(services, target, `alerts[${index}].notify[${position}]`);
      if (services.alerts.channelFor(target) === undefined) {
        warnings.push(
          `alerts[${index}].notify[${position}]: no alert channel delivers to ${maskTarget(target)} yet` +
            (EMAIL.test(target) ? ' (set KEYWAY_SMTP_URL for e-mail)' : '') +
            '; its firings are recorded as undelivered.',
        );
      }
    });
    const team = typeof item.team === 'string' ? resolveTeam(services, principal.accountId, item.team, `alerts[${index}].team`) : undefined;
    rows.push({ id: services.credentials.randomId('alrt'), type, config: ruleConfig(type, item, team), notify });
  });
  const now = new Date(services.clock.now()).toISOString();
  const created: AlertRule[] = [];
  for (const row of rows) {
    const record = {
      id: row.id,
      account_id: principal.accountId,
      type: row.type,
      config: JSON.stringify(row.config),
      notify: JSON.stringify(row.notify),
      created_at: now,
    };
    await services.store.execute('INSERT INTO alerts (id, account_id, type, config, notify, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      record.id,
      record.account_id,
      record.type,
      record.config,
      record.notify,
      record.created_at,
      principal.keyId,
    ]);
    created.push(ruleOf(record));
  }
  await services.snapshot.refresh();
  const answer: Record<string, unknown> = { object: 'list', alerts: created.map((rule) => alertView(services, rule)) };
  if (warnings.length > 0) answer.warnings = warnings;
  return services.http.json(answer, 201);
}

async function listAlerts({ services }: AlertRoutesContext, principal: Principal): Promise<Response> {
  const rows = await services.store.query(
    'SELECT id, account_id, type, config, notify, created_at FROM alerts WHERE account_id = ? AND deleted_at IS NULL ORDER BY created_at, id',
    [principal.accountId],
  );
  return services.http.json({ object: 'list', alerts: rows.map((row) => alertView(services, ruleOf(row))) }, 200);
}

async function deleteAlert({ services, evaluator }: AlertRoutesContext, request: Request, id: string, principal: Principal): Promise<Response> {
  const now = new Date(services.clock.now()).toISOString();
  const deleted = await services.store.query(
    'UPDATE alerts SET deleted_at = ? WHERE id = ? AND account_id = ? AND deleted_at IS NULL RETURNING id, account_id, type, config, notify, created_at',
    [now, id, principal.accountId],
  );
  const removed = deleted[0];
  if (removed === undefined) throw services.errors.create('not_found', { detail: `No alert ${id} in this account.` });
  // The audit entry says what was removed: the rule as GET showed it (webhook URLs masked).
  services.http.recordChange(request, { before: alertView(services, ruleOf(removed)), after: null });
  evaluator.forget(id);
  await services.snapshot.refresh();
  return new Response(null, { status: 204 });
}

/**
 * An events filter names a known type: a built-in one, or one a plugin has raised in this account (any
 * plugin may raise a type of its own, raise.ts). A typo must be a 400, not an empty list that reads
 * as "nothing fired".
 */
async function checkEventType(services: Services, accountId: string, type: string): Promise<void> {
  if ((ALERT_TYPES as readonly string[]).includes(type)) return;
  if (/^[a-z][a-z0-9_]{0,63}$/.test(type)) {
    const raised = await services.store.query('SELECT 1 AS found FROM alert_events WHERE account_id = ? AND type = ? LIMIT 1', [accountId, type]);
    if (raised.length > 0) return;
  }
  const detail = `'${type.slice(0, 64)}' is not an alert type; use one of ${ALERT_TYPES.join(', ')}, or a type a plugin has raised in this account`;
  throw services.errors.create('invalid_field', { param: 'type', detail }, { param: 'type' });
}

const EVENT_PARAMETERS = ['type', 'alert_id', ...PERIOD_PARAMETERS, 'limit'] as const;

async function listEvents({ services }: AlertRoutesContext, request: Request, principal: Principal): Promise<Response> {
  const query = services.http.requestUrl(request).searchParams;
  refuseUnknownParameters(query, EVENT_PARAMETERS);
  const clauses = ['account_id = ?'];
  const parameters: unknown[] = [principal.accountId];
  const type = query.get('type');
  if (type !== null) {
    await checkEventType(services, principal.accountId, type);
    clauses.push('type = ?');
    parameters.push(type);
  }
  const alertId = query.get('alert_id');
  if (alertId !== null) {
    clauses.push('alert_id = ?');
    parameters.push(alertId);
  }
  if (query.has('period') || query.has('start') || query.has('end')) {
    const period = parsePeriod(query, services.clock.now());
    if ('error' in period) throw services.errors.create('invalid_field', { param: period.param, detail: period.error }, { param: period.param });
    clauses.push('fired_at >= ? AND fired_at < ?');
    parameters.push(period.from.toISOString(), period.to.toISOString());
  }
  const limitText = query.get('limit') ?? '100';
  const limit = Number(limitText);
  if (!/^\d+$/.test(limitText) || limit < 1 || limit > 1000) {
    throw services.errors.create('invalid_field', { param: 'limit', detail: 'must be an integer from 1 to 1000' }, { param: 'limit' });
  }
  const rows = await services.store.query(`SELECT * FROM alert_events WHERE ${clauses.join(' AND ')} ORDER BY fired_at DESC, id DESC LIMIT ?`, [
    ...parameters,
    limit,
  ]);
  return services.http.json({ object: 'list', events: rows.map(eventOf) }, 200);
}

export function alertRoutes(context: AlertRoutesContext) {
  const { services } = context;
  return [
    {
      method: 'POST' as const,
      path: '/v1/alerts',
      role: 'admin' as const,
      summary:
        "Creates alerts: the seed's { alerts: [...] } (byok_cost_threshold, byok_usage_anomaly, error_rate, provider_down, rotation_due, approval_pending)",
      body: AlertsBodySchema,
      handle: ({ request, principal }: { request: Request; principal: Principal | undefined }) =>
        createAlerts(context, request, accountAdmin(services, principal)),
    },
    {
      method: 'GET' as const,
      path: '/v1/alerts',
      role: 'admin' as const,
      summary: "The account's alerts (webhook URLs masked)",
      handle: ({ principal }: { principal: Principal | undefined }) => listAlerts(context, accountAdmin(services, principal)),
    },
    {
      method: 'DELETE' as const,
      path: '/v1/alerts/:id',
      role: 'admin' as const,
      summary: 'Deletes an alert; its past events stay in the history',
      handle: ({ request, params, principal }: { request: Request; params: Record<string, string>; principal: Principal | undefined }) =>
        deleteAlert(context, request, String(params.id), accountAdmin(services, principal)),
    },
    {
      method: 'GET' as const,
      path: '/v1/alerts/events',
      role: 'admin' as const,
      query: EVENT_PARAMETERS,
      summary: 'Every firing, newest first, with what was delivered where (?type, ?alert_id, ?period or ?start/?end, ?limit)',
      handle: ({ request, principal }: { request: Request; principal: Principal | undefined }) =>
        listEvents(context, request, accountAdmin(services, principal)),
    },
  ];
}
