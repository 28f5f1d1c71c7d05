// Account settings as a whole, operator-wide settings and the loaded plugins.

import { Type } from '@sinclair/typebox';
import { readJson, validateBody } from './kit/body.ts';
import { guarded } from './kit/guard.ts';
import { json } from './kit/respond.ts';

export const PlatformSettingsSchema = Type.Object({
  platform_markup_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: 'Markup, in percent, on requests served with platform keys' })),
  byok_fee_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: "Fee, in percent, on requests served with the account's own keys" })),
});

export const platformRoutes = {
  getSettings: guarded('admin', (runtime, _request, principal) =>
    json({ settings: runtime.snapshots.current.accounts.get(principal.accountId)?.settings ?? {} }),
  ),
  putPlatformSettings: guarded('operator', async (runtime, request) => {
    const body = validateBody(PlatformSettingsSchema, await readJson(request, runtime.config.maxBodyBytes, runtime.config.maxJsonDepth));
    for (const [key, value] of Object.entries(body)) await runtime.store.setPlatformSetting(key, value);
    await runtime.snapshots.refresh();
    const settings = runtime.snapshots.current.platformSettings;
    return json({ platform_markup_percent: settings.platform_markup_percent ?? 5, byok_fee_percent: settings.byok_fee_percent ?? 0 });
  }),
  listPlugins: guarded('operator', (runtime) =>
    json({ plugins: runtime.plugins.plugins.map(({ name, version, kind, description }) => ({ name, version, kind, description })) }),
  ),
};
