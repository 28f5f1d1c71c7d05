// Routing settings over HTTP: the account's default routing and the model-class tables.

import { invalidField } from '../errors.ts';
import { updateAccountSettings } from '../http/kit/account-settings.ts';
import { recordChange } from '../http/kit/audit-trail.ts';
import { readJson } from '../http/kit/body.ts';
import { guarded } from '../http/kit/guard.ts';
import { json } from '../http/kit/respond.ts';
import type { RoutingOptions } from '../spec/vocabulary.ts';
import { validateRouting } from '../wire/request-validation.ts';
import { ModelClassesBodySchema, RoutingSettingsBodySchema } from '../http/openapi-schemas.ts';
import { validateOverrides, type ModelClassOverrides } from './model-classes.ts';
import type { Runtime } from '../runtime.ts';
import { checkCostWeights, checkProviderOrder } from './resolve-model.ts';

/** The seed's cost-optimized block: `{"routing": {...}}` (a bare routing object is accepted too). */
function routingFromBody(body: unknown): RoutingOptions {
  const enveloped = body !== null && typeof body === 'object' && !Array.isArray(body) && 'routing' in body;
  if (enveloped) {
    const extra = Object.keys(body).find((name) => name !== 'routing');
    if (extra !== undefined) throw invalidField(extra, 'unknown field; known fields: routing');
  }
  const routing = enveloped ? (body as { routing: unknown }).routing : body;
  // The same rules as a request's routing (core/wire/request-validation.ts); a stored routing must be an object.
  validateRouting(routing);
  return routing as RoutingOptions;
}

/** The overrides an account stored (`PUT /v1/settings/model-classes`), `{}` when none. */
function accountOverrides(runtime: Runtime, accountId: string): ModelClassOverrides {
  return (runtime.snapshots.current.accounts.get(accountId)?.settings.model_classes as ModelClassOverrides | undefined) ?? {};
}

/** The overrides the operator stored for every account (`PUT /v1/platform/model-classes`), `{}` when none. */
function platformOverrides(runtime: Runtime): ModelClassOverrides {
  return (runtime.snapshots.current.platformSettings.model_classes as ModelClassOverrides | undefined) ?? {};
}

export const routingRoutes = {
  putRouting: guarded(
    'admin',
    async (runtime, request, principal) => {
      const routing = routingFromBody(await readJson(request, runtime.config));
      if (routing.strategy !== undefined && !runtime.plugins.strategies.has(routing.strategy)) {
        throw invalidField('routing.strategy', `unknown strategy '${routing.strategy}'; known: ${[...runtime.plugins.strategies.keys()].join(', ')}`);
      }
      checkProviderOrder(routing.provider_order, runtime.plugins.providers);
      checkCostWeights(routing.cost_weights, runtime.plugins.providers);
      const settings = await updateAccountSettings(runtime, principal, 'routing', routing, request);
      return json({ routing: settings.routing });
    },
    { body: RoutingSettingsBodySchema },
  ),
  getModelClasses: guarded('viewer', (runtime, _request, principal) =>
    json({
      classes: runtime.router.modelClassesFor(principal.accountId).list(),
      account_overrides: accountOverrides(runtime, principal.accountId),
      platform_overrides: platformOverrides(runtime),
    }),
  ),
  // A PUT replaces the whole override set (`{"classes": {}}` clears it): the body is what is stored,
  // not a patch merged into earlier PUTs, so leaving a class out of it brings back the table below.
  putAccountModelClasses: guarded(
    'admin',
    async (runtime, request, principal) => {
      const overrides = validateOverrides(await readJson(request, runtime.config));
      await updateAccountSettings(runtime, principal, 'model_classes', overrides, request);
      return json({ classes: runtime.router.modelClassesFor(principal.accountId).list(), account_overrides: accountOverrides(runtime, principal.accountId) });
    },
    { body: ModelClassesBodySchema },
  ),
  putPlatformModelClasses: guarded(
    'operator',
    async (runtime, request) => {
      const overrides = validateOverrides(await readJson(request, runtime.config));
      const stored = runtime.snapshots.current.platformSettings.model_classes as Record<string, unknown> | undefined;
      await runtime.store.setPlatformSetting('model_classes', overrides);
      await runtime.snapshots.refresh();
      // As the account's overrides are recorded (account-settings.ts): the stored setting before and after.
      recordChange(request, { before: { model_classes: stored ?? null }, after: { model_classes: overrides } });
      return json({ classes: runtime.router.dependencies.modelClasses().list(), platform_overrides: platformOverrides(runtime) });
    },
    { body: ModelClassesBodySchema },
  ),
};
