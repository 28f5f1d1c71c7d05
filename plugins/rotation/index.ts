// Key rotation (PRODUCT.md "Key lifecycle"): POST /v1/providers/keys/rotate (immediate or gradual,
// tested first, signed notifications), the rotation state every instance reads from its snapshot and
// its clock, cron schedules with time zones run once per cluster, key sources for scheduled rotations,
// and the account's maximum key age. See docs/key-lifecycle.md.

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { integerSetting } from '../../core/spec/settings.ts';
import type { Services } from '../../core/spec/services.ts';
import { buildSection, chooseKeys, collapsePairs, type KeyAvailable, type RotationsSection } from './choose.ts';
import { Rotations, ROTATIONS_SECTION } from './rotate.ts';
import { keyAgePolicy } from './key-policy.ts';
import { rotationRoutes } from './routes.ts';
import { ScheduleRunner } from './schedules.ts';
import { ROTATION_MIGRATIONS, rotationsInProgress } from './store.ts';
import { RotationWebhooks } from './webhooks.ts';

export const ROTATION_PLUGIN = 'rotation';

const configSchema = Type.Object({
  intervalMs: Type.Integer({
    minimum: 10,
    default: 1_000,
    description: 'How often rotations are completed, due schedules run and key ages checked (KEYWAY_ROTATION_INTERVAL_MS)',
  }),
});

/** The per-gateway objects tests reach (run the job now, wait for notifications). */
export interface RotationHandle {
  rotations: Rotations;
  schedules: ScheduleRunner;
  /** One pass of the job. */
  tick(): Promise<void>;
}
const handles = new WeakMap<Services, RotationHandle>();
export function rotationHandleOf(services: Services): RotationHandle | undefined {
  return handles.get(services);
}

/** At most a day: a timer past 2^31 ms (24.8 days) fires at once. */
function intervalFrom(env: Readonly<Record<string, string | undefined>>, fallback: number): number {
  return integerSetting('KEYWAY_ROTATION_INTERVAL_MS', env.KEYWAY_ROTATION_INTERVAL_MS, fallback, 10, 86_400_000);
}

export const rotationPlugin = definePlugin({
  name: ROTATION_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  environment: [{ name: 'KEYWAY_ROTATION_INTERVAL_MS', description: 'How often due key rotations are looked for' }],
  dependencies: ['webhooks', 'alerts'],
  description: 'Zero-downtime provider key rotation (immediate and gradual), rotation schedules with key sources, maximum key age',
  configSchema,
  setup: ({ config, env, services }) => {
    const rotations = new Rotations(services, new RotationWebhooks(services));
    const available: KeyAvailable = (key) => services.providerHealth.keyAvailable(key);
    const schedules = new ScheduleRunner(services, rotations);
    let running: Promise<void> | undefined;
    const tick = async (): Promise<void> => {
      // One pass at a time: a slow key source must not let passes pile up.
      if (running !== undefined) return running;
      running = (async () => {
        await rotations.completeDue();
        await schedules.runDue();
        await schedules.checkKeyAges();
      })().finally(() => {
        running = undefined;
      });
      return running;
    };
    handles.set(services, { rotations, schedules, tick });
    return {
      migrations: ROTATION_MIGRATIONS,
      snapshot: [{ name: ROTATIONS_SECTION, load: async (store) => buildSection(await rotationsInProgress(store, rotations.webhooks)) }],
      hooks: {
        keyResolve: (context) => collapsePairs(context, services.snapshot.section<RotationsSection>(ROTATIONS_SECTION), available),
        route: (context) => chooseKeys(context, services.snapshot.section<RotationsSection>(ROTATIONS_SECTION), services.clock.now(), available),
      },
      ciphertextHolders: rotations.webhooks.holders(),
      jobs: [
        { name: 'key-rotation', intervalMs: intervalFrom(env, config.intervalMs), run: tick, drain: () => rotations.idle(), scope: 'cluster' },
        rotations.webhooks.startJob(),
      ],
      routes: rotationRoutes(services, rotations),
      // The seed's encryption.rotation_days on POST /v1/providers/keys sets the maximum key age.
      keyAgePolicy: keyAgePolicy(services),
    };
  },
});

export default rotationPlugin;
