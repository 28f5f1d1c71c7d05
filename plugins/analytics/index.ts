// Analytics: usage roll-ups maintained as usage is written, and the routes that read them.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { ROLLUP_MIGRATIONS } from './rollup.ts';

export const analyticsPlugin = definePlugin({
  name: 'analytics',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: 'Usage roll-ups by hour, provider, model, team, project and key',
  setup() {
    return { migrations: ROLLUP_MIGRATIONS };
  },
});
