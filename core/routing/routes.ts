import { Type } from '@sinclair/typebox';
import { invalidField, KeywayError } from '../errors.ts';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from './health/monitor.ts';
import { validateOverrides } from './model-classes.ts';
import type { Principal } from '../spec/plugin.ts';
import { validateChatRequest } from '../wire/request-validation.ts';
import type { Runtime } from '../runtime.ts';
import type { RoutingOptions } from '../spec/vocabulary.ts';
import { readJson, validateBody } from '../http/kit/body.ts';
import { guarded } from '../http/kit/guard.ts';
import { json } from '../http/kit/respond.ts';

async function updateAccountSettings(runtime: Runtime, principal: Principal, key: string, value: unknown): Promise<Record<string, unknown>> {
  const account = runtime.store.current.accounts.get(principal.accountId);
  if (account === undefined) throw new KeywayError('not_found', { detail: `Account ${principal.accountId} does not exist.` });
  const settings = { ...account.settings };
  if (value === null) delete settings[key];
  else settings[key] = value;
  await runtime.repository.updateAccountSettings(principal.accountId, settings);
  await runtime.store.refresh();
  return settings;
}

/** The seed's cost-optimized block: `{"routing": {...}}` (a bare routing object is accepted too). */
function routingFromBody(body: unknown): RoutingOptions {
  const routing = (body as { routing?: unknown } | null)?.routing ?? body;
  // The chat request validator owns the rules for routing objects; reuse it on a stub request.
  validateChatRequest({ messages: [{ role: 'user', content: '' }], routing });
  return routing as RoutingOptions;
}

const HealthPolicySchema = Type.Object({
  auto_disable: Type.Optional(Type.Boolean()),
  health_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  latency_threshold: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000 })),
  check_interval: Type.Optional(Type.Number({ minimum: 1, maximum: 86_400 })),
  min_samples: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
});

const PlatformSettingsSchema = Type.Object({
  platform_markup_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
  byok_fee_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
});

export const settingsRoutes = {
  putRouting: guarded('admin', async (runtime, request, principal) => {
    const routing = routingFromBody(await readJson(request, runtime.config.maxBodyBytes));
    if (routing.strategy !== undefined && !runtime.plugins.strategies.has(routing.strategy)) {
      throw invalidField('routing.strategy', `unknown strategy '${routing.strategy}'; known: ${[...runtime.plugins.strategies.keys()].join(', ')}`);
    }
    const settings = await updateAccountSettings(runtime, principal, 'routing', routing);
    return json({ routing: settings.routing });
  }),
  getSettings: guarded('admin', (runtime, _request, principal) => json({ settings: runtime.store.current.accounts.get(principal.accountId)?.settings ?? {} })),
  putHealthCheck: guarded('admin', async (runtime, request, principal) => {
    const body = validateBody(HealthPolicySchema, await readJson(request, runtime.config.maxBodyBytes));
    const current = (runtime.store.current.accounts.get(principal.accountId)?.settings.health_check as HealthPolicy | undefined) ?? DEFAULT_HEALTH_POLICY;
    const policy: HealthPolicy = { ...current, ...body };
    await updateAccountSettings(runtime, principal, 'health_check', policy);
    return json(policy);
  }),
  getHealth: guarded('viewer', (runtime, _request, principal) => {
    const byProvider = runtime.store.current.accountKeys.get(principal.accountId) ?? new Map();
    const providers = [...byProvider.entries()].map(([provider, keys]) => runtime.health.report(provider, keys));
    return json({ providers, policy: runtime.store.current.accounts.get(principal.accountId)?.settings.health_check ?? DEFAULT_HEALTH_POLICY });
  }),
  getModelClasses: guarded('viewer', (runtime, _request, principal) => json({ classes: runtime.gateway.modelClassesFor(principal.accountId).list() })),
  putAccountModelClasses: guarded('admin', async (runtime, request, principal) => {
    const overrides = validateOverrides(await readJson(request, runtime.config.maxBodyBytes));
    const current = (runtime.store.current.accounts.get(principal.accountId)?.settings.model_classes as Record<string, unknown> | undefined) ?? {};
    await updateAccountSettings(runtime, principal, 'model_classes', { ...current, ...overrides });
    return json({ classes: runtime.gateway.modelClassesFor(principal.accountId).list() });
  }),
  putPlatformModelClasses: guarded('operator', async (runtime, request) => {
    const overrides = validateOverrides(await readJson(request, runtime.config.maxBodyBytes));
    const current = (runtime.store.current.platformSettings.model_classes as Record<string, unknown> | undefined) ?? {};
    await runtime.repository.setPlatformSetting('model_classes', { ...current, ...overrides });
    await runtime.store.refresh();
    return json({ classes: runtime.gateway.dependencies.modelClasses().list() });
  }),
  putPlatformSettings: guarded('operator', async (runtime, request) => {
    const body = validateBody(PlatformSettingsSchema, await readJson(request, runtime.config.maxBodyBytes));
    for (const [key, value] of Object.entries(body)) await runtime.repository.setPlatformSetting(key, value);
    await runtime.store.refresh();
    const settings = runtime.store.current.platformSettings;
    return json({ platform_markup_percent: settings.platform_markup_percent ?? 5, byok_fee_percent: settings.byok_fee_percent ?? 0 });
  }),
};
