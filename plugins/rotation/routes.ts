// The rotation API: rotate now, see rotations, schedule rotations, and the account's maximum key age.

import type { RouteDefinition } from '../../core/spec/plugin.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { CronError, isValidTimeZone, parseCron } from './cron.ts';
import { describeRotation, pickOldKey, type Rotations } from './rotate.ts';
import { writeKeyPolicy } from './key-policy.ts';
import { KEY_POLICY_SETTING, nextRunOf, type KeyPolicy } from './schedules.ts';
import { KeyPolicyBodySchema, RotateBodySchema, ScheduleBodySchema } from './schema.ts';
import type { RotationWebhooks } from './webhooks.ts';
import { deleteSchedule, insertSchedule, rotationById, rotationsOf, scheduleById, schedulesOf, type ScheduleRow } from './store.ts';

const DEFAULT_GRACE_MINUTES = { gradual: 60, immediate: 5 } as const;

function accountAdmin(services: Services, principal: Principal | undefined): Principal {
  if (principal === undefined) throw services.errors.create('invalid_api_key');
  if (principal.teamId !== undefined)
    throw services.errors.create('permission_denied', { detail: "Provider keys are the account's: use an account admin key." });
  return principal;
}

function describeSchedule(schedule: ScheduleRow): Record<string, unknown> {
  return {
    id: schedule.id,
    object: 'key_rotation_schedule',
    provider: schedule.provider,
    key_id: schedule.keyId,
    schedule: schedule.schedule,
    timezone: schedule.timezone,
    notification_email: schedule.notificationEmail,
    key_source: schedule.keySource,
    rotation_strategy: schedule.options.rotation_strategy ?? 'gradual',
    grace_period_minutes: schedule.options.grace_period_minutes ?? DEFAULT_GRACE_MINUTES[schedule.options.rotation_strategy ?? 'gradual'],
    test_before_switch: schedule.options.test_before_switch ?? true,
    notification_webhooks: schedule.options.notification_webhooks?.length ?? 0,
    next_run_at: new Date(schedule.nextRunAt).toISOString(),
    last_run_at: schedule.lastRunAt === null ? null : new Date(schedule.lastRunAt).toISOString(),
    last_status: schedule.lastStatus,
    last_error: schedule.lastError,
    created_at: new Date(schedule.createdAt).toISOString(),
  };
}

/**
 * The account's schedule that rotates the same key at the same cron and time zone. Re-running a setup
 * script (the seed's call) answers it, as an idempotent create: a second identical schedule fired the
 * same minute, its rotation refused as in progress (QA seed L5). One with other settings is a 409
 * naming it: two schedules cannot both run that minute, so the caller deletes one first.
 */
async function sameTimeSchedule(services: Services, webhooks: RotationWebhooks, wanted: ScheduleRow): Promise<ScheduleRow | undefined> {
  const existing = (await schedulesOf(services.store, webhooks, wanted.accountId)).find(
    (known) => known.provider === wanted.provider && known.keyId === wanted.keyId && known.schedule === wanted.schedule && known.timezone === wanted.timezone,
  );
  if (existing === undefined) return undefined;
  // No webhooks read back as none given: `[]` sent again is the same schedule.
  const settingsOf = (row: ScheduleRow) =>
    JSON.stringify([row.notificationEmail, row.keySource, { ...row.options, notification_webhooks: row.options.notification_webhooks ?? [] }]);
  if (settingsOf(existing) === settingsOf(wanted)) return existing;
  throw services.errors.create('conflict', {
    detail:
      `Schedule ${existing.id} already rotates this ${wanted.provider} key at '${wanted.schedule}' (${wanted.timezone}) with other settings; ` +
      `both would run the same minute. Delete it first (DELETE /v1/providers/keys/rotation-schedule/${existing.id}) to replace it, or choose another time.`,
  });
}

async function rotateHandler(services: Services, rotations: Rotations, request: Request, caller: Principal, owner: 'account' | 'platform'): Promise<Response> {
  const body = services.http.validateBody(RotateBodySchema, await services.http.readJson(request));
  const strategy = body.rotation_strategy ?? 'gradual';
  const accountId = owner === 'platform' ? null : caller.accountId;
  const old = pickOldKey(services, accountId, body.provider, body.key_id);
  const rotation = await rotations.start({
    accountId,
    owner,
    provider: body.provider,
    keyId: old.id,
    newApiKey: body.new_api_key,
    strategy,
    gracePeriodMinutes: body.grace_period_minutes ?? DEFAULT_GRACE_MINUTES[strategy],
    testBeforeSwitch: body.test_before_switch ?? true,
    notificationWebhooks: body.notification_webhooks ?? [],
    actor: caller.keyId,
  });
  const answer = describeRotation(rotation, services.clock.now());
  // The key being rotated out as GET showed it (masked, its fingerprint), so the entry names which key it was.
  const before = { key_id: old.id, name: old.provider, owner: old.owner, masked_key: old.maskedKey, fingerprint: old.fingerprint, status: old.status };
  services.http.recordChange(request, { target: { rotation_id: rotation.id, key_id: old.id }, before, after: answer });
  return services.http.json({ ...answer, rotation_id: rotation.id }, 201);
}

/** The new key is the one field of a rotation that holds a key; any other holding one is refused. */
const ROTATE_SECRET_FIELDS = ['new_api_key'] as const;

export function rotationRoutes(services: Services, rotations: Rotations): RouteDefinition[] {
  const invalid = (param: string, detail: string) => services.errors.create('invalid_field', { param, detail }, { param });
  return [
    {
      method: 'POST',
      path: '/v1/providers/keys/rotate',
      role: 'admin',
      summary: 'Rotates a provider key: immediate or gradual, optionally tested first; answers the rotation with old_key_expires_at',
      body: RotateBodySchema,
      secretFields: ROTATE_SECRET_FIELDS,
      handle: ({ request, principal }) => {
        const caller = accountAdmin(services, principal);
        return rotateHandler(services, rotations, request, caller, 'account');
      },
    },
    {
      method: 'POST',
      path: '/v1/platform/keys/rotate',
      role: 'operator',
      summary: "Rotates one of the operator's platform keys, with the same rules as an account's",
      body: RotateBodySchema,
      secretFields: ROTATE_SECRET_FIELDS,
      handle: ({ request, principal }) => rotateHandler(services, rotations, request, principal as Principal, 'platform'),
    },
    {
      method: 'GET',
      path: '/v1/platform/keys/rotations',
      role: 'operator',
      summary: "The platform keys' rotations, newest first",
      async handle() {
        const now = services.clock.now();
        return services.http.json({ rotations: (await rotationsOf(services.store, rotations.webhooks, null)).map((row) => describeRotation(row, now)) });
      },
    },
    {
      method: 'GET',
      path: '/v1/providers/keys/rotations',
      role: 'admin',
      summary: "The account's key rotations, newest first",
      async handle({ principal }) {
        const caller = accountAdmin(services, principal);
        const now = services.clock.now();
        return services.http.json({
          rotations: (await rotationsOf(services.store, rotations.webhooks, caller.accountId)).map((row) => describeRotation(row, now)),
        });
      },
    },
    {
      method: 'GET',
      path: '/v1/providers/keys/rotations/:id',
      role: 'admin',
      summary: 'One key rotation',
      async handle({ principal, params }) {
        const caller = accountAdmin(services, principal);
        const rotation = await rotationById(services.store, rotations.webhooks, params.id ?? '');
        if (rotation === undefined || rotation.accountId !== caller.accountId)
          throw services.errors.create('not_found', { detail: `No rotation ${params.id} here.` });
        return services.http.json(describeRotation(rotation, services.clock.now()));
      },
    },
    {
      method: 'POST',
      path: '/v1/providers/keys/rotation-schedule',
      role: 'admin',
      summary: 'Schedules rotations of a provider key (cron, optional IANA time zone and key source); answers the schedule with next_run_at',
      body: ScheduleBodySchema,
      async handle({ request, principal }) {
        const caller = accountAdmin(services, principal);
        const body = services.http.validateBody(ScheduleBodySchema, await services.http.readJson(request));
        try {
          parseCron(body.schedule);
        } catch (error) {
          if (error instanceof CronError) throw invalid('schedule', error.message);
          throw error;
        }
        const timezone = body.timezone ?? 'UTC';
        if (!isValidTimeZone(timezone)) throw invalid('timezone', `'${timezone}' is not an IANA time zone (America/New_York, Europe/Berlin, UTC…)`);
        if (body.key_source !== undefined) {
          const source = services.keySources.get(body.key_source.source);
          if (source === undefined) {
            const names = services.keySources.names();
            throw invalid(
              'key_source.source',
              `no key source '${body.key_source.source}' is loaded; loaded: ${names.length === 0 ? 'none' : names.join(', ')}`,
            );
          }
          // With the account: a source that scopes references by account refuses another account's now, not at the first run.
          const problem = source.validate(body.key_source, { accountId: caller.accountId, provider: body.provider });
          if (problem !== undefined) throw invalid('key_source.locator', problem);
        }
        if (!services.providerKeys.list(caller.accountId).some((key) => key.provider === body.provider))
          throw invalid('provider', `this account has no ${body.provider} provider key to rotate; add one with POST /v1/providers/keys`);
        if (body.key_id !== undefined) pickOldKey(services, caller.accountId, body.provider, body.key_id);
        const now = services.clock.now();
        const schedule: ScheduleRow = {
          id: services.credentials.randomId('rsch'),
          accountId: caller.accountId,
          provider: body.provider,
          keyId: body.key_id ?? null,
          schedule: body.schedule.trim(),
          timezone,
          notificationEmail: body.notification_email ?? null,
          keySource: body.key_source ?? null,
          options: {
            rotation_strategy: body.rotation_strategy,
            grace_period_minutes: body.grace_period_minutes,
            test_before_switch: body.test_before_switch,
            notification_webhooks: body.notification_webhooks,
          },
          nextRunAt: 0,
          lastRunAt: null,
          lastStatus: null,
          lastError: null,
          createdAt: now,
        };
        const existing = await sameTimeSchedule(services, rotations.webhooks, schedule);
        if (existing !== undefined) return services.http.json(describeSchedule(existing), 200);
        schedule.nextRunAt = nextRunOf(schedule, now);
        await insertSchedule(services.store, rotations.webhooks, schedule);
        const answer = describeSchedule(schedule);
        services.http.recordChange(request, { target: { schedule_id: schedule.id }, before: null, after: answer });
        return services.http.json(answer, 201);
      },
    },
    {
      method: 'GET',
      path: '/v1/providers/keys/rotation-schedule',
      role: 'admin',
      summary: "The account's rotation schedules",
      async handle({ principal }) {
        const caller = accountAdmin(services, principal);
        return services.http.json({ schedules: (await schedulesOf(services.store, rotations.webhooks, caller.accountId)).map(describeSchedule) });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/providers/keys/rotation-schedule/:id',
      role: 'admin',
      summary: 'Deletes a rotation schedule',
      async handle({ request, principal, params }) {
        const caller = accountAdmin(services, principal);
        const id = params.id ?? '';
        const before = await scheduleById(services.store, rotations.webhooks, id, caller.accountId);
        if (before === undefined || !(await deleteSchedule(services.store, id, caller.accountId, services.clock.now())))
          throw services.errors.create('not_found', { detail: `No rotation schedule ${id} here.` });
        services.http.recordChange(request, { before: describeSchedule(before), after: null });
        return new Response(null, { status: 204 });
      },
    },
    {
      method: 'GET',
      path: '/v1/providers/keys/rotation-policy',
      role: 'admin',
      summary: "The account's maximum provider key age",
      handle({ principal }) {
        const caller = accountAdmin(services, principal);
        const policy = (services.snapshot.current.accounts.get(caller.accountId)?.settings[KEY_POLICY_SETTING] as KeyPolicy | undefined) ?? {};
        return services.http.json({ max_key_age_days: policy.max_key_age_days ?? null, notification_email: policy.notification_email ?? null });
      },
    },
    {
      method: 'PUT',
      path: '/v1/providers/keys/rotation-policy',
      role: 'admin',
      summary: "Sets the account's maximum provider key age: older keys raise rotation_due",
      body: KeyPolicyBodySchema,
      async handle({ request, principal }) {
        const caller = accountAdmin(services, principal);
        const body = services.http.validateBody(KeyPolicyBodySchema, await services.http.readJson(request));
        const policy: KeyPolicy = {};
        if (body.max_key_age_days !== null) policy.max_key_age_days = body.max_key_age_days;
        if (body.notification_email !== undefined && body.notification_email !== null) policy.notification_email = body.notification_email;
        const before = await writeKeyPolicy(services, caller.accountId, policy);
        services.http.recordChange(request, { before, after: policy });
        return services.http.json({ max_key_age_days: policy.max_key_age_days ?? null, notification_email: policy.notification_email ?? null });
      },
    },
  ];
}
