// The configuration's change counter (migration 0012_config_changes; Store.configChangeVersion and
// recordConfigChange), the same SQL in both dialects, so the PostgreSQL store shares it. One row, read
// by primary key: what every instance runs once a second to notice a change the cluster bus did not
// bring (docs/deployment.md, "When the bus fails").

export const CONFIG_CHANGE_VERSION = 'SELECT version FROM config_changes WHERE id = 1';

/** Raised in one statement, so concurrent writers on several instances each move it on. */
export const RECORD_CONFIG_CHANGE =
  'INSERT INTO config_changes (id, version) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET version = config_changes.version + 1';
