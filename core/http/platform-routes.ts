// Account settings as a whole, operator-wide settings and the loaded plugins.

import { Type } from '@sinclair/typebox';
import { readJson, validateBody } from './kit/body.ts';
import { recordChange } from './kit/audit-trail.ts';
import { guarded } from './kit/guard.ts';
import { json } from './kit/respond.ts';

export const PlatformSettingsSchema = Type.Object(
  {
    platform_markup_percent: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1000, description: 'Markup, in percent, on requests served with platform keys' }),
    ),
    byok_fee_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: "Fee, in percent, on requests served with the account's own keys" })),
  },
  { additionalProperties: false },
);

/** The operator's fees as the API answers them, the defaults filled in. */
function feesOf(settings: Readonly<Record<string, unknown>>): { platform_markup_percent: number; byok_fee_percent: number } {
  const percent = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : fallback);
  return { platform_markup_percent: percent(settings.platform_markup_percent, 5), byok_fee_percent: percent(settings.byok_fee_percent, 0) };
}

export const platformRoutes = {
  getSettings: guarded('admin', (runtime, _request, principal) =>
    json({ settings: runtime.snapshots.current.accounts.get(principal.accountId)?.settings ?? {} }),
  ),
  putPlatformSettings: guarded(
    'operator',
    async (runtime, request) => {
      const body = validateBody(PlatformSettingsSchema, await readJson(request, runtime.config));
      // The audit entry says what the fees were before, not only what they became: finance reads both.
      const before = feesOf(runtime.snapshots.current.platformSettings);
      for (const [key, value] of Object.entries(body)) await runtime.store.setPlatformSetting(key, value);
      const next = feesOf({ ...runtime.snapshots.current.platformSettings, ...body });
      if (next.platform_markup_percent !== before.platform_markup_percent || next.byok_fee_percent !== before.byok_fee_percent) {
        // Rows are billed at the rates in force when they were booked (docs/costs.md, "Fees"): the
        // change is kept with its time, and the rates before the first change as the history's start.
        const stored = runtime.snapshots.current.platformSettings.fee_history;
        const history = Array.isArray(stored) && stored.length > 0 ? [...stored] : [{ from: null, ...before }];
        history.push({ from: new Date(runtime.clock.now()).toISOString(), ...next });
        await runtime.store.setPlatformSetting('fee_history', history);
      }
      await runtime.snapshots.refresh();
      const after = feesOf(runtime.snapshots.current.platformSettings);
      recordChange(request, { before, after });
      return json(after);
    },
    { body: PlatformSettingsSchema },
  ),
  listPlugins: guarded('operator', (runtime) =>
    json({ plugins: runtime.plugins.plugins.map(({ name, version, kind, description }) => ({ name, version, kind, description })) }),
  ),
};
