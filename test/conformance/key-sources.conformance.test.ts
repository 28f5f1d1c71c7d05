// Every built-in key source through the key-source conformance suite (key-source.ts), each against
// its fixture or simulator: env, file, command, vault-kv (Vault KV v2 simulator) and openai-admin
// (the OpenAI simulator's organisation admin API).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCommandKeySource } from '../../plugins/key-source-command/index.ts';
import { createEnvKeySource } from '../../plugins/key-source-env/index.ts';
import { createFileKeySource } from '../../plugins/key-source-file/index.ts';
import { createOpenAIAdminKeySource } from '../../plugins/key-source-openai-admin/index.ts';
import { createVaultKvKeySource, vaultKvSettings } from '../../plugins/key-source-vault-kv/index.ts';
import { CANARY_KEY, scratchDirectory, VAULT_CANARY_KEY, VAULT_TOKEN, writeKeyFile } from '../key-sources/fixtures.ts';
import { OPENAI_SIM_ADMIN_KEY, startOpenAISimulator } from '../simulators/openai.ts';
import { OPENAI_SIM_PROJECT } from '../simulators/openai-admin.ts';
import { startVaultSimulator } from '../simulators/vault.ts';
import { describeKeySourceConformance } from './key-source.ts';

const context = { accountId: 'acct_conformance', provider: 'openai', keyId: 'pk_conformance' };
/** Another account, of the shape POST /v1/accounts gives, whose key the context's account must not reach. */
const OTHER_ACCOUNT = 'acc_Conformance012345678';
const OTHER_KEY = 'sk-proj-OtherAccountCanary0123456789abcdefghijk';

describeKeySourceConformance('env', async () => ({
  source: createEnvKeySource(
    {
      KEYWAY_KEY_acct_conformance_OPENAI: `  ${CANARY_KEY}\n`,
      [`KEYWAY_KEY_${OTHER_ACCOUNT}_OPENAI`]: OTHER_KEY,
      KEYWAY_MASTER_KEY: 'master-canary-0123456789',
      HOME: '/root',
    },
    'KEYWAY_KEY_',
  ),
  valid: { source: 'env', locator: 'KEYWAY_KEY_acct_conformance_OPENAI' },
  expected: CANARY_KEY,
  invalid: [
    { source: 'env', locator: 'KEYWAY_MASTER_KEY' },
    { source: 'env', locator: 'HOME' },
    { source: 'env', locator: 'lower_case' },
    { source: 'env', locator: 'KEYWAY_KEY_acct_conformance_OPENAI', options: { field: 'x' } },
  ],
  missing: { source: 'env', locator: 'KEYWAY_KEY_acct_conformance_ABSENT' },
  foreign: {
    existing: { source: 'env', locator: `KEYWAY_KEY_${OTHER_ACCOUNT}_OPENAI` },
    absent: { source: 'env', locator: `KEYWAY_KEY_${OTHER_ACCOUNT}_ABSENT` },
  },
  context,
  canaries: [CANARY_KEY, OTHER_KEY, 'master-canary-0123456789'],
}));

describeKeySourceConformance('file', async () => {
  const directory = scratchDirectory();
  mkdirSync(join(directory.path, 'acct_conformance'));
  mkdirSync(join(directory.path, OTHER_ACCOUNT));
  writeKeyFile(directory.path, 'acct_conformance/openai.key', `${CANARY_KEY}\n`);
  writeKeyFile(directory.path, `${OTHER_ACCOUNT}/openai.key`, OTHER_KEY);
  return {
    source: createFileKeySource(directory.path),
    valid: { source: 'file', locator: 'acct_conformance/openai.key' },
    expected: CANARY_KEY,
    invalid: [
      { source: 'file', locator: '/etc/passwd' },
      { source: 'file', locator: '../openai.key' },
      { source: 'file', locator: 'acct_conformance/openai.key', options: { encoding: 'hex' } },
    ],
    missing: { source: 'file', locator: 'acct_conformance/absent.key' },
    foreign: {
      existing: { source: 'file', locator: `${OTHER_ACCOUNT}/openai.key` },
      absent: { source: 'file', locator: `${OTHER_ACCOUNT}/absent.key` },
    },
    context,
    canaries: [CANARY_KEY, OTHER_KEY],
    cleanup: () => directory.remove(),
  };
});

describeKeySourceConformance('command', async () => ({
  source: createCommandKeySource(
    {
      print: { argv: [process.execPath, '-e', `process.stdout.write(${JSON.stringify(`${CANARY_KEY}\n`)})`], accounts: ['acct_conformance'] },
      other: { argv: [process.execPath, '-e', `process.stdout.write(${JSON.stringify(OTHER_KEY)})`], accounts: [OTHER_ACCOUNT] },
    },
    process.env,
  ),
  valid: { source: 'command', locator: 'print' },
  expected: CANARY_KEY,
  invalid: [
    { source: 'command', locator: 'cat /etc/passwd' },
    { source: 'command', locator: '/bin/sh' },
    { source: 'command', locator: 'print', options: { args: ['-x'] } },
  ],
  foreign: { existing: { source: 'command', locator: 'other' }, absent: { source: 'command', locator: 'nowhere' } },
  context,
  canaries: [CANARY_KEY, OTHER_KEY],
}));

describeKeySourceConformance('vault-kv', async () => {
  const vault = startVaultSimulator({ tokens: [{ token: VAULT_TOKEN }] });
  vault.put('secret', 'keyway/acct_conformance/openai', { api_key: VAULT_CANARY_KEY });
  vault.put('secret', `keyway/${OTHER_ACCOUNT}/openai`, { api_key: OTHER_KEY });
  const settings = vaultKvSettings({ address: vault.url }, { KEYWAY_VAULT_TOKEN: VAULT_TOKEN });
  return {
    source: createVaultKvKeySource(settings),
    valid: { source: 'vault-kv', locator: 'keyway/acct_conformance/openai' },
    expected: VAULT_CANARY_KEY,
    invalid: [
      { source: 'vault-kv', locator: 'keyway/../sys/raw' },
      { source: 'vault-kv', locator: 'keyway/acct_conformance/openai', options: { mount: 'sys' } },
      { source: 'vault-kv', locator: 'keyway/acct_conformance/openai', options: { version: 0 } },
      { source: 'vault-kv', locator: 'keyway/acct_conformance/openai', options: { namespace: 'other' } },
    ],
    missing: { source: 'vault-kv', locator: 'keyway/acct_conformance/absent' },
    foreign: {
      existing: { source: 'vault-kv', locator: `keyway/${OTHER_ACCOUNT}/openai` },
      absent: { source: 'vault-kv', locator: `keyway/${OTHER_ACCOUNT}/absent` },
    },
    context,
    canaries: [VAULT_CANARY_KEY, VAULT_TOKEN, OTHER_KEY],
    cleanup: () => vault.stop(),
  };
});

describeKeySourceConformance('openai-admin', async () => {
  const openai = startOpenAISimulator();
  return {
    source: createOpenAIAdminKeySource({
      adminKey: OPENAI_SIM_ADMIN_KEY,
      baseUrl: `${openai.url}/v1`,
      projects: { acct_conformance: [OPENAI_SIM_PROJECT], [OTHER_ACCOUNT]: ['proj_otherAccount'] },
    }),
    valid: { source: 'openai-admin', locator: OPENAI_SIM_PROJECT },
    invalid: [
      { source: 'openai-admin', locator: 'not-a-project' },
      { source: 'openai-admin', locator: OPENAI_SIM_PROJECT, options: { role: 'owner' } },
    ],
    foreign: { existing: { source: 'openai-admin', locator: 'proj_otherAccount' }, absent: { source: 'openai-admin', locator: 'proj_nowhere' } },
    context,
    canaries: [OPENAI_SIM_ADMIN_KEY],
    isLive: (apiKey) => openai.state.apiKeys.has(apiKey),
    cleanup: () => openai.stop(),
  };
});
