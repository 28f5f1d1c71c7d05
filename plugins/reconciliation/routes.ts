// Reconciliation's HTTP API, all account admin: the admin keys (stored sealed, answered masked),
// the settings, the on-demand report `GET /v1/analytics/reconciliation`, and the daily runs.

import type { Principal, RouteDefinition } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { calendarDateError, parsePeriod } from '../../core/http/kit/period.ts';
import { PERIOD_PARAMETERS, refuseUnknownParameters } from '../../core/http/kit/query.ts';
import { maskTarget } from '../alerts/deliver.ts';
import { checkTarget } from '../alerts/validate.ts';
import { describeAdminKey, type AdminKeys, type SettingsStore } from './admin-keys.ts';
import { verifyAnthropicAdminKey } from './anthropic-report.ts';
import type { DailyReconciliation } from './daily.ts';
import { verifyOpenAIAdminKey } from './openai-report.ts';
import { DAY_MS, wholeDays, type Reconciler } from './reconcile.ts';
import { ReportError } from './report-fetch.ts';
import {
  AdminKeyBodySchema,
  isReconciledProvider,
  matchToleranceOf,
  RECONCILED_PROVIDERS,
  RunBodySchema,
  SettingsBodySchema,
  type ReconciledProvider,
} from './schema.ts';

export interface RouteParts {
  services: Services;
  adminKeys: AdminKeys;
  settings: SettingsStore;
  reconciler: Reconciler;
  daily: DailyReconciliation;
}

function accountOf(principal: Principal | undefined): string {
  if (principal === undefined) throw new Error('reconciliation routes declare a role, so the core authenticates them');
  return principal.accountId;
}

function providerParameter(services: Services, value: string | null | undefined, param: string): ReconciledProvider | undefined {
  if (value === null || value === undefined) return undefined;
  if (isReconciledProvider(value)) return value;
  throw services.errors.create('invalid_field', { param, detail: `must be one of ${RECONCILED_PROVIDERS.join(', ')}` }, { param });
}

async function verify(services: Services, provider: ReconciledProvider, adminKey: string): Promise<void> {
  try {
    await (provider === 'openai' ? verifyOpenAIAdminKey(services, adminKey) : verifyAnthropicAdminKey(services, adminKey));
  } catch (error) {
    if (error instanceof ReportError && error.code === 'admin_key_rejected')
      throw services.errors.create('admin_key_rejected', { detail: error.message }, { param: 'admin_key' });
    const message = error instanceof Error ? services.errors.redact(error.message) : 'the check failed';
    throw services.errors.create('upstream_error', { detail: `The admin key could not be checked: ${message}. Send "verify": false to store it unchecked.` });
  }
}

function adminKeyRoutes({ services, adminKeys }: RouteParts): RouteDefinition[] {
  return [
    {
      method: 'PUT',
      path: '/v1/reconciliation/admin-keys',
      role: 'admin',
      summary: "Store the account's admin key for a provider's usage and cost reports (sealed; answered masked)",
      body: AdminKeyBodySchema,
      secretFields: ['admin_key'],
      async handle({ request, principal }) {
        const body = services.http.validateBody(AdminKeyBodySchema, await services.http.readJson(request));
        const provider = body.provider as ReconciledProvider;
        // Each provider's own word for what a report can be narrowed to.
        const misplaced = provider === 'openai' ? 'workspace_ids' : 'project_ids';
        if (body[misplaced] !== undefined) {
          throw services.errors.create(
            'invalid_field',
            { param: misplaced, detail: `${provider} reports are narrowed by ${provider === 'openai' ? 'project_ids' : 'workspace_ids'}` },
            { param: misplaced },
          );
        }
        if (body.verify !== false) await verify(services, provider, body.admin_key);
        const scope = [...new Set((provider === 'openai' ? body.project_ids : body.workspace_ids) ?? [])];
        const replaced = (await adminKeys.list(accountOf(principal))).find((key) => key.provider === provider);
        const stored = await adminKeys.put(accountOf(principal), provider, body.admin_key, scope);
        // The audit entry says which key this one replaced (masked, its fingerprint), if any.
        services.http.recordChange(request, { before: replaced === undefined ? null : describeAdminKey(replaced), after: describeAdminKey(stored) });
        return services.http.json({ admin_key: describeAdminKey(stored), verified: body.verify !== false });
      },
    },
    {
      method: 'GET',
      path: '/v1/reconciliation/admin-keys',
      role: 'admin',
      summary: "The account's admin keys, masked",
      async handle({ principal }) {
        return services.http.json({ admin_keys: (await adminKeys.list(accountOf(principal))).map(describeAdminKey) });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/reconciliation/admin-keys/:provider',
      role: 'admin',
      summary: "Remove the account's admin key for a provider",
      async handle({ request, params, principal }) {
        const provider = providerParameter(services, params.provider, 'provider');
        const stored = provider === undefined ? undefined : (await adminKeys.list(accountOf(principal))).find((key) => key.provider === provider);
        if (provider === undefined || !(await adminKeys.remove(accountOf(principal), provider))) {
          throw services.errors.create('not_found', { detail: `No ${params.provider} admin key is stored for this account.` });
        }
        // The audit entry says what was removed: the key as GET showed it (masked, its fingerprint).
        services.http.recordChange(request, { before: stored === undefined ? { provider } : describeAdminKey(stored), after: null });
        return new Response(null, { status: 204 });
      },
    },
  ];
}

/**
 * The settings as answers and the audit log show them: a webhook or Slack target's URL is its secret
 * (anyone holding it can post), so only its masked form leaves the store, as alert rules do.
 */
function shown<Settings extends { notify: string[] }>(stored: Settings): Settings {
  return { ...stored, notify: stored.notify.map(maskTarget) };
}

function settingsRoutes({ services, settings }: RouteParts): RouteDefinition[] {
  return [
    {
      method: 'GET',
      path: '/v1/reconciliation/settings',
      role: 'admin',
      summary: 'Drift alert thresholds, match tolerance and alert targets',
      async handle({ principal }) {
        return services.http.json({ settings: shown(await settings.get(accountOf(principal))) });
      },
    },
    {
      method: 'PUT',
      path: '/v1/reconciliation/settings',
      role: 'admin',
      summary: 'Set drift alert thresholds, match tolerance and alert targets',
      body: SettingsBodySchema,
      async handle({ request, principal }) {
        const body = services.http.validateBody(SettingsBodySchema, await services.http.readJson(request));
        // A masked target sent back (a GET's answer PUT again) would replace the real URL with one that
        // reaches nothing: refused, so leaving `notify` out is how a target is kept.
        const masked = (body.notify ?? []).findIndex((target) => target.includes('…'));
        if (masked !== -1) {
          const param = `notify[${masked}]`;
          throw services.errors.create(
            'invalid_field',
            { param, detail: 'is a masked target as answers show it; send the whole URL, or leave notify out to keep the targets as they are' },
            { param },
          );
        }
        // The same targets an alert rule takes: one nothing delivers to, or at an address Keyway may not
        // call (the metadata service, a private network, this machine), would leave the drift alert unsent.
        for (const [index, target] of (body.notify ?? []).entries()) checkTarget(services, target, `notify[${index}]`);
        const accountId = accountOf(principal);
        const before = shown(await settings.get(accountId));
        const after = shown(await settings.update(accountId, body));
        services.http.recordChange(request, { before, after });
        return services.http.json({ settings: after });
      },
    },
  ];
}

/**
 * The first UTC day a reconciliation may cover. OpenAI's and Anthropic's organisation usage and cost
 * APIs came years later; an earlier day has no report to compare with, and a run stored for it would
 * read as a $0 match (0000-01-01 is a calendar date, so the calendar check alone lets it through).
 */
const EARLIEST_DAY = '2020-01-01';

/** The fields `POST /v1/reconciliation/run` takes; any other is refused, naming it. */
const RUN_FIELDS: ReadonlySet<string> = new Set(['day', 'provider']);

/** What is wrong with a run's `day`, if anything: not a calendar date, before EARLIEST_DAY, or not begun. */
function runDayError(day: string, today: string): string | undefined {
  const calendar = calendarDateError(day);
  if (calendar !== undefined) return calendar;
  if (day < EARLIEST_DAY) return `${day} is before ${EARLIEST_DAY}: no provider reports usage or cost that early`;
  // A day that has not begun has no usage on either side: a run stored for it would read "matched" at $0.
  if (day > today) return `${day} has not begun (today is ${today} UTC)`;
  return undefined;
}

/** The on-demand report asks the providers for every day of its period: none before EARLIEST_DAY. */
function refuseBeforeEarliestDay(services: Services, period: { from: Date }): void {
  if (period.from.getTime() >= Date.parse(`${EARLIEST_DAY}T00:00:00Z`)) return;
  const detail = `starts before ${EARLIEST_DAY}: no provider reports usage or cost that early`;
  throw services.errors.create('invalid_field', { param: 'start', detail }, { param: 'start' });
}

/** The reports are read 31 days a page: a year is a dozen calls per report, and the most one answer asks of a provider. */
const MAX_PERIOD_DAYS = 366;

function periodOf(services: Services, request: Request): { name: string; from: Date; to: Date } {
  const period = parsePeriod(services.http.requestUrl(request).searchParams, services.clock.now());
  if ('error' in period) throw services.errors.create('invalid_field', { param: period.param, detail: period.error }, { param: period.param });
  if (period.to.getTime() - period.from.getTime() > MAX_PERIOD_DAYS * DAY_MS) {
    const param = services.http.requestUrl(request).searchParams.has('start') ? 'start' : 'period';
    throw services.errors.create('invalid_field', { param, detail: `a reconciliation covers at most ${MAX_PERIOD_DAYS} days` }, { param });
  }
  return period;
}

const REPORT_PARAMETERS = [...PERIOD_PARAMETERS, 'provider'] as const;

function reportRoutes({ services, settings, reconciler, daily }: RouteParts): RouteDefinition[] {
  return [
    {
      method: 'GET',
      path: '/v1/analytics/reconciliation',
      role: 'admin',
      query: REPORT_PARAMETERS,
      summary: "Keyway's recorded spend against OpenAI's and Anthropic's own reports, per UTC day, provider and model",
      async handle({ request, principal }) {
        refuseUnknownParameters(services.http.requestUrl(request).searchParams, REPORT_PARAMETERS);
        const accountId = accountOf(principal);
        const period = periodOf(services, request);
        refuseBeforeEarliestDay(services, period);
        const provider = providerParameter(services, services.http.requestUrl(request).searchParams.get('provider'), 'provider');
        const tolerance = matchToleranceOf(await settings.get(accountId));
        const result = await reconciler.reconcile(accountId, period.from, period.to, tolerance, provider);
        return services.http.json({
          period: { name: period.name, start: result.from.toISOString(), end: result.to.toISOString() },
          currency: 'USD',
          match_tolerance_usd: tolerance.usd,
          match_tolerance_percent: tolerance.percent,
          providers: result.providers,
          rows: result.rows,
          keys: result.keys,
        });
      },
    },
    {
      method: 'POST',
      path: '/v1/reconciliation/run',
      role: 'admin',
      summary: 'Run the daily reconciliation now for one UTC day (default yesterday): stored, and alerted on drift',
      body: RunBodySchema,
      async handle({ request, principal }) {
        const accountId = accountOf(principal);
        // The body is optional (no body: the defaults): read as text, within the limits every body has.
        const text = await services.http.readText(request);
        let body: Record<string, unknown> = {};
        if (text.trim() !== '') {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
            throw services.errors.create('invalid_json', { detail: 'the body must be a JSON object' });
          body = parsed as Record<string, unknown>;
        }
        // A misspelt field would otherwise run the default day for every provider, silently.
        const unknown = Object.keys(body).find((field) => !RUN_FIELDS.has(field));
        if (unknown !== undefined)
          throw services.errors.create(
            'invalid_field',
            { param: unknown, detail: 'is not a field of this request: send day and/or provider' },
            { param: unknown },
          );
        const asked = body.day ?? new Date(Math.floor(services.clock.now() / DAY_MS) * DAY_MS - DAY_MS).toISOString().slice(0, 10);
        const today = new Date(services.clock.now()).toISOString().slice(0, 10);
        const dayError = typeof asked === 'string' ? runDayError(asked, today) : 'must be a UTC date, YYYY-MM-DD';
        if (dayError !== undefined) throw services.errors.create('invalid_field', { param: 'day', detail: dayError }, { param: 'day' });
        const day = asked as string;
        const only = providerParameter(services, typeof body.provider === 'string' ? body.provider : undefined, 'provider');
        const runs = [];
        for (const provider of only === undefined ? RECONCILED_PROVIDERS : [only]) runs.push(await daily.run(accountId, day, provider));
        return services.http.json({ runs: runs.filter((run) => run.status !== 'not_configured') });
      },
    },
    {
      method: 'GET',
      path: '/v1/reconciliation/runs',
      role: 'admin',
      query: PERIOD_PARAMETERS,
      summary: "The daily reconciliation's stored results",
      async handle({ request, principal }) {
        refuseUnknownParameters(services.http.requestUrl(request).searchParams, PERIOD_PARAMETERS);
        const period = periodOf(services, request);
        const days = wholeDays(period.from, period.to);
        const runs = await daily.runs(accountOf(principal), days.from.toISOString().slice(0, 10), days.to.toISOString().slice(0, 10));
        return services.http.json({ runs });
      },
    },
  ];
}

export function reconciliationRoutes(parts: RouteParts): RouteDefinition[] {
  return [...adminKeyRoutes(parts), ...settingsRoutes(parts), ...reportRoutes(parts)];
}
