// Provider health over HTTP: the account's health-check policy and the live report.

import { Type } from '@sinclair/typebox';
import { updateAccountSettings } from '../../http/kit/account-settings.ts';
import { readJson, validateBody } from '../../http/kit/body.ts';
import { guarded } from '../../http/kit/guard.ts';
import { json } from '../../http/kit/respond.ts';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from './monitor.ts';
import { gatherHealthFigures } from './workers.ts';

export const HealthPolicySchema = Type.Object(
  {
    auto_disable: Type.Optional(Type.Boolean({ description: 'Take a key out of rotation when its health falls below the threshold' })),
    health_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'Success rate, in percent, below which a key is unhealthy' })),
    latency_threshold: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000, description: 'Latency, in milliseconds, above which a key is slow' }),
    ),
    check_interval: Type.Optional(Type.Number({ minimum: 1, maximum: 86_400, description: 'Seconds between active health probes' })),
    min_samples: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Requests needed before the success rate counts' })),
  },
  // A misspelt threshold (`health_treshold`) was stored beside the real one, which stayed as it was.
  { additionalProperties: false },
);

export const healthRoutes = {
  putHealthCheck: guarded(
    'admin',
    async (runtime, request, principal) => {
      const body = validateBody(HealthPolicySchema, await readJson(request, runtime.config));
      const current = (runtime.snapshots.current.accounts.get(principal.accountId)?.settings.health_check as HealthPolicy | undefined) ?? DEFAULT_HEALTH_POLICY;
      const policy: HealthPolicy = { ...current, ...body };
      await updateAccountSettings(runtime, principal, 'health_check', policy, request);
      return json(policy);
    },
    { body: HealthPolicySchema },
  ),
  getHealth: guarded('viewer', async (runtime, _request, principal) => {
    // Several workers: the figures are the instance's, every worker's windows combined (workers.ts).
    const gathered = await gatherHealthFigures(runtime.services.siblings, principal.accountId);
    const byProvider = runtime.snapshots.current.accountKeys.get(principal.accountId) ?? new Map();
    const providers = [...byProvider.entries()].map(([provider, keys]) =>
      runtime.health.report(
        provider,
        keys,
        gathered.figures.flatMap((figures) => figures[provider] ?? []),
      ),
    );
    const policy = runtime.snapshots.current.accounts.get(principal.accountId)?.settings.health_check ?? DEFAULT_HEALTH_POLICY;
    return json({ providers, policy, ...(gathered.workers === undefined ? {} : { workers: gathered.workers }) });
  }),
};
