// The alerts API: POST /v1/alerts (the seed's `{ "alerts": [ … ] }`), GET /v1/alerts, GET, PATCH and
// DELETE /v1/alerts/{id}, GET /v1/alerts/events. Account admins only; accounts never see each other's.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { parsePeriod } from '../../core/http/kit/period.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import type { TeamsSection } from '../teams/types.ts';
import { maskTarget } from './deliver.ts';
import type { AlertEvaluator } from './evaluate.ts';
import { ALERT_TYPES, AlertPatchSchema, AlertsBodySchema, ruleConfig, ruleOf, type AlertRule, type AlertType } from './schema.ts';
import { eventOf, RULE_COLUMNS } from './store.ts';
import type { AlertTargets } from './targets.ts';
import { checkNotify, resolveTeam, validateEntry } from './validate.ts';

const MAX_ALERTS_PER_ACCOUNT = 200;
/**
 * What a rule watches: its firing record (alert, type, subject, period) is keyed by them, so a PATCH
 * cannot change them (400); delete the alert and create another to watch something else.
 */
const FIXED_FIELDS = ['type', 'provider', 'team'] as const;

export interface AlertRoutesContext {
  services: Services;
  evaluator: AlertEvaluator;
  /** Seals a rule's targets when it is written, opens them when it is read. */
  targets: AlertTargets;
}

function accountAdmin(services: Services, principal: Principal | undefined): Principal {
  if (principal === undefined) throw services.errors.create('invalid_api_key');
  if (principal.teamId !== undefined) throw services.errors.create('permission_denied', { detail: "Alerts are the account's: use an account admin key." });
  return principal;
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
  // A null among channel names tells a user nothing: a target no loaded channel delivers to (e-mail
  // without KEYWAY_SMTP_URL) is named instead, masked as in `notify`.
  const channels: string[] = [];
  const undeliverable: string[] = [];
  for (const target of rule.notify) {
    const channel = services.alerts.channelFor(target);
    if (channel === undefined) undeliverable.push(maskTarget(target));
    else channels.push(channel);
  }
  view.channels = channels;
  if (undeliverable.length > 0) view.undeliverable = undeliverable;
  if (rule.notifyUnreadable) view.notify_unreadable = true;
  view.created_at = rule.createdAt;
  if (rule.updatedAt !== undefined) view.updated_at = rule.updatedAt;
  return view;
}

async function createAlerts({ services, evaluator, targets }: AlertRoutesContext, request: Request, principal: Principal): Promise<Response> {
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
    const type = validateEntry(services, item, `alerts[${index}]`);
    const notify = [...new Set(item.notify as string[])];
    checkNotify(services, notify, `alerts[${index}]`, warnings);
    const team = typeof item.team === 'string' ? resolveTeam(services, principal.accountId, item.team, `alerts[${index}].team`) : undefined;
    rows.push({ id: services.credentials.randomId('alrt'), type, config: ruleConfig(type, item, team), notify });
  });
  const now = new Date(services.clock.now()).toISOString();
  const created: AlertRule[] = [];
  for (const row of rows) {
    const record = { id: row.id, account_id: principal.accountId, type: row.type, config: JSON.stringify(row.config), created_at: now, updated_at: null };
    const sealed = await targets.seal(principal.accountId, row.id, row.notify);
    await services.store.execute(
      `INSERT INTO alerts (id, account_id, type, config, notify, notify_ciphertext, notify_backend, notify_key_version, created_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        record.id,
        record.account_id,
        record.type,
        record.config,
        sealed.notify,
        sealed.notify_ciphertext,
        sealed.notify_backend,
        sealed.notify_key_version,
        record.created_at,
        principal.keyId,
      ],
    );
    created.push(ruleOf(record, { targets: row.notify, unreadable: false }));
  }
  await services.snapshot.refresh();
  // Judged at once: spend already past a threshold fires now, and the cost trigger starts from the stored spend.
  await evaluator.judgeNow(created);
  const answer: Record<string, unknown> = { object: 'list', alerts: created.map((rule) => alertView(services, rule)) };
  if (warnings.length > 0) answer.warnings = warnings;
  return services.http.json(answer, 201);
}

async function listAlerts({ services, targets }: AlertRoutesContext, principal: Principal): Promise<Response> {
  const rows = await services.store.query(`SELECT ${RULE_COLUMNS} FROM alerts WHERE account_id = ? AND deleted_at IS NULL ORDER BY created_at, id`, [
    principal.accountId,
  ]);
  const rules = await Promise.all(rows.map((row) => targets.rule(row)));
  return services.http.json({ object: 'list', alerts: rules.map((rule) => alertView(services, rule)) }, 200);
}

async function findRule({ services, targets }: AlertRoutesContext, id: string, accountId: string): Promise<AlertRule> {
  const rows = await services.store.query(`SELECT ${RULE_COLUMNS} FROM alerts WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, [id, accountId]);
  const row = rows[0];
  if (row === undefined) throw services.errors.create('not_found', { detail: `No alert ${id} in this account.` });
  return targets.rule(row);
}

async function getAlert(context: AlertRoutesContext, id: string, principal: Principal): Promise<Response> {
  return context.services.http.json(alertView(context.services, await findRule(context, id, principal.accountId)), 200);
}

/** The rule as a create's body would say it, its targets as stored (unmasked): what a PATCH is merged over. */
function bodyOf(rule: AlertRule): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    type: rule.type,
    name: rule.name,
    provider: rule.provider,
    team: rule.team,
    threshold: rule.threshold,
    period: rule.period,
    sensitivity: rule.sensitivity,
    metrics: rule.metrics,
    window_minutes: rule.windowMinutes,
    min_requests: rule.minRequests,
    notify: rule.notify,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

/**
 * A GET's answer sent back carries the targets masked: each that is the masked form of a stored target
 * stands for it (a read-modify-write keeps them); other masked text would replace a URL with one that
 * reaches nothing, and is refused naming it.
 */
function unmaskTargets(services: Services, notify: unknown, stored: readonly string[]): unknown {
  if (!Array.isArray(notify)) return notify;
  return notify.map((target: unknown, index) => {
    if (typeof target !== 'string' || !target.includes('…')) return target;
    const original = stored.find((candidate) => maskTarget(candidate) === target);
    if (original !== undefined) return original;
    const param = `notify[${index}]`;
    throw services.errors.create('invalid_field', { param, detail: 'is a masked target that matches no stored target; send the whole URL' }, { param });
  });
}

/**
 * PATCH /v1/alerts/{id}: a JSON merge patch of the fields a create takes (null removes one: back to its
 * default, or a 400 for a required one), checked as a create is. The id stays, and so does the rule's
 * firing record: a new threshold or new targets never fire again a period that already fired. The
 * fields that say what the rule watches (FIXED_FIELDS) cannot change.
 */
async function updateAlert(context: AlertRoutesContext, request: Request, id: string, principal: Principal): Promise<Response> {
  const { services, evaluator, targets } = context;
  const input = await services.http.readJson(request);
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw services.errors.create('invalid_request', { detail: 'The body must be a JSON object of the fields to change (a JSON merge patch).' });
  }
  const patch = input as Record<string, unknown>;
  const rule = await findRule(context, id, principal.accountId);
  const current = bodyOf(rule);
  for (const field of FIXED_FIELDS) {
    if (!(field in patch)) continue;
    const asked = patch[field];
    // The same value sent back (a GET's answer, edited) changes nothing; a team may be named by its name.
    const same =
      asked === null
        ? current[field] === undefined
        : field === 'team' && typeof asked === 'string'
          ? asked === rule.team || services.snapshot.section<TeamsSection>('teams')?.byId.get(rule.team ?? '')?.name === asked
          : asked === current[field];
    if (!same) {
      const detail = `cannot be changed: it says what the alert watches, and its firings are recorded under it. Delete alert ${id} and create another instead.`;
      throw services.errors.create('invalid_field', { param: field, detail }, { param: field });
    }
  }
  const merged: Record<string, unknown> = { ...current };
  for (const [field, value] of Object.entries(patch)) {
    if ((FIXED_FIELDS as readonly string[]).includes(field)) continue;
    if (value === null) delete merged[field];
    else merged[field] = field === 'notify' ? unmaskTargets(services, value, rule.notify) : value;
  }
  validateEntry(services, merged, '');
  const warnings: string[] = [];
  const notify = [...new Set(merged.notify as string[])];
  checkNotify(services, notify, '', warnings);
  const now = new Date(services.clock.now()).toISOString();
  const sealed = await targets.seal(principal.accountId, id, notify);
  const rows = await services.store.query(
    `UPDATE alerts SET config = ?, notify = ?, notify_ciphertext = ?, notify_backend = ?, notify_key_version = ?, updated_at = ?
     WHERE id = ? AND account_id = ? AND deleted_at IS NULL RETURNING ${RULE_COLUMNS}`,
    [
      JSON.stringify(ruleConfig(rule.type, merged, rule.team)),
      sealed.notify,
      sealed.notify_ciphertext,
      sealed.notify_backend,
      sealed.notify_key_version,
      now,
      id,
      principal.accountId,
    ],
  );
  const row = rows[0];
  if (row === undefined) throw services.errors.create('not_found', { detail: `No alert ${id} in this account.` });
  const updated = await targets.rule(row);
  await services.snapshot.refresh();
  // Judged at once, as a new rule is: a lower threshold the period's spend already passed fires now (once).
  await evaluator.judgeNow([updated]);
  services.http.recordChange(request, { before: alertView(services, rule), after: alertView(services, updated) });
  const answer = alertView(services, updated);
  if (warnings.length > 0) answer.warnings = warnings;
  return services.http.json(answer, 200);
}

async function deleteAlert({ services, evaluator, targets }: AlertRoutesContext, request: Request, id: string, principal: Principal): Promise<Response> {
  const now = new Date(services.clock.now()).toISOString();
  const deleted = await services.store.query(
    `UPDATE alerts SET deleted_at = ? WHERE id = ? AND account_id = ? AND deleted_at IS NULL RETURNING ${RULE_COLUMNS}`,
    [now, id, principal.accountId],
  );
  const removed = deleted[0];
  if (removed === undefined) throw services.errors.create('not_found', { detail: `No alert ${id} in this account.` });
  // The audit entry says what was removed: the rule as GET showed it (webhook URLs masked).
  services.http.recordChange(request, { before: alertView(services, await targets.rule(removed)), after: null });
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
      method: 'GET' as const,
      path: '/v1/alerts/:id',
      role: 'admin' as const,
      summary: 'One alert (webhook URLs masked)',
      handle: ({ params, principal }: { params: Record<string, string>; principal: Principal | undefined }) =>
        getAlert(context, String(params.id), accountAdmin(services, principal)),
    },
    {
      method: 'PATCH' as const,
      path: '/v1/alerts/:id',
      role: 'admin' as const,
      summary:
        'Changes an alert: a JSON merge patch of the fields POST takes (null removes one); type, provider and team cannot change. Its firing record stays: a period that fired does not fire again',
      body: AlertPatchSchema,
      handle: ({ request, params, principal }: { request: Request; params: Record<string, string>; principal: Principal | undefined }) =>
        updateAlert(context, request, String(params.id), accountAdmin(services, principal)),
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
