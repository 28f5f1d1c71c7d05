// Audit: every management action (through the core's `adminActions` observer) and key access logs in
// one table written in batches, and request metadata as the account's compliance block asks, kept in
// the request's usage row (marked by the account hook); both read with `GET /v1/audit-logs`; the compliance block itself (`PUT`/`GET /v1/settings/compliance`), and a job
// that purges events past their account's retention. See docs/audit.md.

import { Type } from '@sinclair/typebox';
import type { AdminAction, Principal, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import { integerSetting } from '../../core/spec/settings.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { Compliance } from './compliance.ts';
import { ComplianceTargets } from './compliance-targets.ts';
import { AUDIT_LOG_PARAMETERS, auditQueryOf, readAuditEvents } from './events.ts';
import { AuditQueue } from './queue.ts';
import type { RetentionCutoffs } from './usage-events.ts';
import { markAudited, queueDecryptionEvent, queueKeyUseEvents, type RequestLogging } from './request-events.ts';
import { TEAMS_SECTION, type TeamsSection } from '../teams/types.ts';
import { AUDIT_MIGRATIONS, ComplianceSchema, complianceOf } from './schema.ts';

export const AUDIT_PLUGIN = 'audit';
/** Where actions on operator routes (accounts, platform keys, platform settings) are filed: no account's admin reads them. */
export const PLATFORM_SCOPE = 'platform';
const DAY_MS = 86_400_000;

/**
 * An admin action as a queued event: the action is already free of secrets (the core scrubbed it).
 * Filed under the account it acted on when the route named one (the operator's export of another
 * account, which that account's admins must see), else the platform's for an operator route, else
 * the actor's account.
 */
function adminEvent(action: AdminAction) {
  return {
    accountId: action.accountId ?? (action.routeRole === 'operator' ? PLATFORM_SCOPE : action.actor.accountId),
    type: 'admin' as const,
    occurredAt: action.occurredAt,
    requestId: action.requestId === '' ? null : action.requestId,
    actorKeyId: action.actor.keyId,
    actorRole: action.actor.role,
    actorTeamId: action.actor.teamId ?? null,
    clientIp: action.clientIp ?? null,
    action: `${action.method} ${action.route}`,
    target: action.target,
    status: action.status,
    details: () => ({ method: action.method, route: action.route, before: action.before ?? null, after: action.after ?? null }),
  };
}

/**
 * The account's block decides, and a team whose `usage_controls.log_all_requests` is on (the seed's
 * team) has its own requests logged, fingerprinted, whatever the account chose.
 */
function requestLogging(services: Services, compliance: Compliance, context: RequestContext): RequestLogging {
  const settings = compliance.settingsOf(context.principal.accountId);
  const teamId = context.teamId ?? context.principal.teamId;
  const team = teamId === undefined ? undefined : services.snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(teamId);
  const teamLogs = team?.permissions.usage_controls?.log_all_requests === true;
  const allRequests = settings.audit_logging === 'all_requests';
  return { keyAccess: settings.key_access_logs, requests: allRequests || teamLogs, fingerprint: teamLogs || (allRequests && settings.log_all_requests) };
}

/**
 * Per account, the first instant its retention keeps: the audit table is purged by the job below; an
 * audited usage row stops being an event at its cutoff (usage rows follow their own retention).
 */
function retentionCutoffs(services: Services, defaultRetentionDays: number): RetentionCutoffs {
  const now = services.clock.now();
  const cutoff = (days: number) => new Date(now - days * DAY_MS).toISOString();
  const byAccount = new Map<string, string>();
  for (const account of services.snapshot.current.accounts.values()) {
    const days = complianceOf(account.settings, defaultRetentionDays).audit_retention_days;
    if (days !== defaultRetentionDays) byAccount.set(account.id, cutoff(days));
  }
  return { byAccount, others: cutoff(defaultRetentionDays) };
}

/** Deletes, per account, the events older than its retention; accounts without a block keep the default. */
async function purgeExpired(services: Services, defaultRetentionDays: number): Promise<void> {
  const now = services.clock.now();
  const accounts = [...services.snapshot.current.accounts.values()];
  for (const account of accounts) {
    const days = complianceOf(account.settings, defaultRetentionDays).audit_retention_days;
    await services.store.execute('DELETE FROM audit_events WHERE account_id = ? AND occurred_at < ?', [
      account.id,
      new Date(now - days * DAY_MS).toISOString(),
    ]);
  }
}

export const auditPlugin = definePlugin({
  name: AUDIT_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [
    { name: 'KEYWAY_AUDIT_FLUSH_MS', description: 'How often queued audit entries are written' },
    { name: 'KEYWAY_AUDIT_RETENTION_DAYS', description: 'Days audit entries are kept' },
    { name: 'KEYWAY_AUDIT_PURGE_INTERVAL_MS', description: 'How often entries past retention are deleted' },
  ],
  description: 'Audit log of management actions, key access and request metadata; compliance settings and their report',
  setup({ services, env, logger }) {
    // Intervals of at most a day: a timer past 2^31 ms (24.8 days) fires at once.
    const defaultRetentionDays = integerSetting('KEYWAY_AUDIT_RETENTION_DAYS', env.KEYWAY_AUDIT_RETENTION_DAYS, 365, 1, 36_500);
    const flushMs = integerSetting('KEYWAY_AUDIT_FLUSH_MS', env.KEYWAY_AUDIT_FLUSH_MS, 1000, 10, 86_400_000);
    const purgeMs = integerSetting('KEYWAY_AUDIT_PURGE_INTERVAL_MS', env.KEYWAY_AUDIT_PURGE_INTERVAL_MS, 3_600_000, 10, 86_400_000);
    const queue = new AuditQueue(services, logger);
    const complianceTargets = new ComplianceTargets(services);
    const compliance = new Compliance(services, defaultRetentionDays, complianceTargets);
    const now = () => new Date(services.clock.now()).toISOString();
    return {
      migrations: AUDIT_MIGRATIONS,
      ciphertextHolders: [complianceTargets.holder()],
      snapshot: [complianceTargets.section()],
      // Written before the action's answer is sent: whichever worker or instance serves the next read
      // of the log finds it in the database (docs/audit.md, "Freshness").
      adminActions: (action: AdminAction) => queue.record(adminEvent(action)),
      keyDecryptions: (event) => queueDecryptionEvent(queue, event, (accountId) => compliance.settingsOf(accountId).key_access_logs),
      hooks: {
        // Marked before the upstream call, while the core still holds the body text the fingerprint
        // hashes; a request refused earlier is marked by the account hook (the text is kept for it).
        call(context: RequestContext) {
          const logging = requestLogging(services, compliance, context);
          if (logging.requests) markAudited(context, logging.fingerprint);
          // The client's address is read from its socket, here while it is open: a stream the client
          // cuts is booked after the socket closed, and its event would lose the address.
          if (logging.requests || logging.keyAccess) context.clientIp;
        },
        account(context: RequestContext, outcome: RequestOutcome) {
          const logging = requestLogging(services, compliance, context);
          if (logging.requests && context.usageAudit === undefined) markAudited(context, logging.fingerprint);
          if (logging.keyAccess) queueKeyUseEvents(queue, context, outcome.status, now());
        },
      },
      jobs: [
        { name: 'audit-flush', intervalMs: flushMs, run: () => queue.flush(), drain: () => queue.flush() },
        { name: 'audit-retention', intervalMs: purgeMs, run: () => purgeExpired(services, defaultRetentionDays), scope: 'cluster' },
        // Compliance targets an earlier release kept in the account's settings are sealed.
        complianceTargets.startJob(),
      ],
      routes: [
        {
          method: 'GET',
          path: '/v1/audit-logs',
          role: 'admin',
          query: AUDIT_LOG_PARAMETERS,
          summary: 'Audit events, newest first: who did what to what, when, from which IP (`type`, period, `account_id` for the operator, `cursor`, `limit`)',
          handle: async ({ request, principal }) => {
            const query = auditQueryOf(services, principal as Principal, services.http.requestUrl(request), PLATFORM_SCOPE);
            // What this process queued (key access events, usage rows) is written first, so a request is in
            // the log as soon as its answer is (admin events were written before theirs). A store that
            // refuses the usage rows now leaves them queued: the log is read as it stands.
            await queue.flush();
            await services.usageQueue.flush().catch(() => undefined);
            return services.http.json(await readAuditEvents(services, query, PLATFORM_SCOPE, retentionCutoffs(services, defaultRetentionDays)));
          },
        },
        {
          method: 'GET',
          path: '/v1/settings/compliance',
          role: 'admin',
          summary: "The account's compliance settings and whether the running system meets each",
          handle: async ({ principal }) => services.http.json(await compliance.get(principal as Principal)),
        },
        {
          method: 'PUT',
          path: '/v1/settings/compliance',
          role: 'admin',
          summary: "Set the compliance block (the seed's `byok_compliance`, or the bare block); answers a report per setting",
          body: Type.Union([Type.Object({ byok_compliance: ComplianceSchema }), ComplianceSchema]),
          handle: async ({ request, principal }) => services.http.json(await compliance.put(principal as Principal, request)),
        },
      ],
    };
  },
});
