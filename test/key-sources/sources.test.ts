// Each key source's failures and allowlists, against its fixture or simulator: what an account admin
// cannot reach (KEYWAY_MASTER_KEY, /etc/passwd, an arbitrary command, another account's Vault path or
// OpenAI project), and how each failure reads (never with the key in it).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KeySource } from '../../core/spec/key-source.ts';
import { createCommandKeySource, parseCommands } from '../../plugins/key-source-command/index.ts';
import { checkPrefix, createEnvKeySource } from '../../plugins/key-source-env/index.ts';
import { createFileKeySource } from '../../plugins/key-source-file/index.ts';
import { createOpenAIAdminKeySource } from '../../plugins/key-source-openai-admin/index.ts';
import { createVaultKvKeySource, vaultKvSettings } from '../../plugins/key-source-vault-kv/index.ts';
import { OPENAI_SIM_ADMIN_KEY, startOpenAISimulator } from '../simulators/openai.ts';
import { OPENAI_SIM_PROJECT } from '../simulators/openai-admin.ts';
import { startVaultSimulator, type VaultSimulator } from '../simulators/vault.ts';
import { CANARY_KEY, scratchDirectory, VAULT_CANARY_KEY, VAULT_TOKEN, writeKeyFile } from './fixtures.ts';

const account = { accountId: 'acme', provider: 'openai', keyId: 'pk_test' };

async function failure(source: KeySource, locator: string, options?: Record<string, unknown>, context = account): Promise<string> {
  try {
    await source.fetch({ source: source.name, locator, options }, context);
  } catch (error) {
    const message = (error as Error).message;
    expect(message).not.toContain(CANARY_KEY);
    expect(message).not.toContain(VAULT_CANARY_KEY);
    expect(message).not.toContain(VAULT_TOKEN);
    return message;
  }
  throw new Error(`${source.name} resolved ${locator}, which it must refuse`);
}

describe('env', () => {
  const env = { KEYWAY_KEY_OPENAI: CANARY_KEY, KEYWAY_MASTER_KEY: 'MasterKeyCanary0123456789', KEYWAY_ADMIN_KEY: 'kw_op_canary', PATH: '/usr/bin' };
  test("an account admin cannot read Keyway's own settings or any variable outside the prefix", async () => {
    const source = createEnvKeySource(env, 'KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_MASTER_KEY')).toContain("Keyway's own settings");
    expect(await failure(source, 'KEYWAY_ADMIN_KEY')).toContain("Keyway's own settings");
    expect(await failure(source, 'PATH')).toContain('KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_KEY_SOURCE_ENV_PREFIX')).toContain("Keyway's own settings");
  });
  test('a missing or empty variable is named, and reads as missing', async () => {
    const source = createEnvKeySource({ ...env, KEYWAY_KEY_EMPTY: '  ' }, 'KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_KEY_ABSENT')).toBe('the environment variable KEYWAY_KEY_ABSENT is not set or empty');
    expect(await failure(source, 'KEYWAY_KEY_EMPTY')).toContain('not set or empty');
  });
  test('an operator prefix that would open the environment or Keyway’s settings is refused at start', () => {
    for (const prefix of ['', 'K_', 'KEYWAY_', 'KEYWAY_MASTER_KEY_', 'lower_']) expect(() => checkPrefix(prefix)).toThrow();
    expect(checkPrefix('ACME_OPENAI_')).toBe('ACME_OPENAI_');
  });
});

describe('file', () => {
  const directory = scratchDirectory();
  const outside = scratchDirectory();
  beforeAll(() => {
    writeKeyFile(directory.path, 'ok.key', `\n${CANARY_KEY}\n`);
    writeKeyFile(directory.path, 'world.key', CANARY_KEY, 0o644);
    writeKeyFile(directory.path, 'unreadable.key', CANARY_KEY, 0o000);
    writeKeyFile(directory.path, 'empty.key', '\n');
    writeKeyFile(directory.path, 'two.key', `${CANARY_KEY}\nsecond-line`);
    writeKeyFile(outside.path, 'elsewhere.key', CANARY_KEY);
    symlinkSync(join(outside.path, 'elsewhere.key'), join(directory.path, 'escape.key'));
    symlinkSync('/etc/passwd', join(directory.path, 'passwd'));
  });
  afterAll(() => {
    directory.remove();
    outside.remove();
  });
  test('reads and trims a key under the directory', async () => {
    expect((await createFileKeySource(directory.path).fetch({ source: 'file', locator: 'ok.key' }, account)).apiKey).toBe(CANARY_KEY);
  });
  test('/etc/passwd, .. and symbolic links out of the directory are refused', async () => {
    const source = createFileKeySource(directory.path);
    expect(await failure(source, '/etc/passwd')).toContain('relative path');
    expect(await failure(source, '../../../../etc/passwd')).toContain('relative path');
    expect(await failure(source, 'passwd')).toContain('outside the key directory');
    expect(await failure(source, 'escape.key')).toContain('outside the key directory');
  });
  test('permissions, emptiness and extra content are checked', async () => {
    const source = createFileKeySource(directory.path);
    expect(await failure(source, 'world.key')).toContain('other users');
    if (process.getuid?.() !== 0) expect(await failure(source, 'unreadable.key')).toContain('not readable');
    expect(await failure(source, 'empty.key')).toContain('empty');
    expect(await failure(source, 'two.key')).toContain('more than one');
    expect(await failure(source, 'absent.key')).toContain('no file absent.key');
  });
  test('without an operator directory nothing is readable', async () => {
    expect(await failure(createFileKeySource(undefined), 'ok.key')).toContain('KEYWAY_KEY_SOURCE_FILE_DIR');
  });
});

describe('command', () => {
  const script = (code: string) => [process.execPath, '-e', code];
  const commands = {
    ok: { argv: script(`process.stdout.write(${JSON.stringify(CANARY_KEY)})`) },
    slow: { argv: script('setTimeout(() => {}, 10000)'), timeoutMs: 200 },
    fails: { argv: script(`process.stderr.write(${JSON.stringify(CANARY_KEY)}); process.exit(3)`) },
    silent: { argv: script('process.exit(0)') },
    environment: { argv: script('process.stdout.write(String(process.env.KEYWAY_MASTER_KEY ?? "absent") + "-" + process.env.KEYWAY_KEY_PROVIDER)') },
  };
  const source = createCommandKeySource(commands, { ...process.env, KEYWAY_MASTER_KEY: 'MasterKeyCanary0123456789' });
  test('runs a configured command and answers its stdout', async () => {
    expect((await source.fetch({ source: 'command', locator: 'ok' }, account)).apiKey).toBe(CANARY_KEY);
  });
  test('an account admin cannot run an arbitrary command, or pass arguments', async () => {
    expect(await failure(source, '/bin/sh -c id')).toContain('never accepted');
    expect(await failure(source, 'cat')).toContain('never accepted');
    expect(await failure(source, 'ok', { args: ['x'] })).toContain('no options');
    expect(await failure(source, 'constructor')).toContain('never accepted');
  });
  test('a timeout kills the command; a non-zero exit and no output are failures; stderr is never read', async () => {
    expect(await failure(source, 'slow')).toContain('did not finish within 200 ms');
    expect(await failure(source, 'fails')).toBe("command 'fails' exited with status 3");
    expect(await failure(source, 'silent')).toContain('printed nothing');
  });
  test("the command does not inherit Keyway's environment (no master key), only the key's provider, account and id", async () => {
    expect((await source.fetch({ source: 'command', locator: 'environment' }, account)).apiKey).toBe('absent-openai');
  });
  test('a malformed KEYWAY_KEY_SOURCE_COMMANDS stops the start with a clear message', () => {
    expect(() => parseCommands('not json')).toThrow('must be JSON');
    expect(() => parseCommands('{"x": {"argv": "sh -c id"}}')).toThrow('argv array');
    expect(parseCommands('{"x": {"argv": ["/usr/bin/printf", "k"]}}').x?.argv).toEqual(['/usr/bin/printf', 'k']);
  });
});

describe('vault-kv against the Vault simulator', () => {
  let vault: VaultSimulator;
  let source: KeySource;
  beforeAll(() => {
    vault = startVaultSimulator({ tokens: [{ token: VAULT_TOKEN }, { token: 'hvs.narrow', paths: ['secret/keyway/other/'] }], namespace: 'team-a' });
    vault.put('secret', 'keyway/acme/openai', { api_key: 'sk-old-version-0123456789' });
    vault.put('secret', 'keyway/acme/openai', { api_key: VAULT_CANARY_KEY, other: 'x' });
    vault.put('secret', 'keyway/acme/openai', { api_key: 'sk-third-version-0123456789' });
    vault.deleteVersion('secret', 'keyway/acme/openai', 3);
    vault.put('secret', 'keyway/other/openai', { api_key: 'sk-other-account-0123456789' });
    source = createVaultKvKeySource(vaultKvSettings({ address: vault.url, namespace: 'team-a' }, { KEYWAY_VAULT_TOKEN: VAULT_TOKEN }));
  });
  afterAll(() => vault.stop());
  test('reads data.data[field] of a version, sending the token and the namespace', async () => {
    const fetched = await source.fetch({ source: 'vault-kv', locator: 'keyway/acme/openai', options: { version: 2 } }, account);
    expect(fetched).toEqual({ apiKey: VAULT_CANARY_KEY, version: '2' });
    expect(vault.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/v1/secret/data/keyway/acme/openai',
      version: '2',
      namespace: 'team-a',
      tokenSent: true,
    });
  });
  test('the latest version is deleted: Vault answers 404 with its metadata', async () => {
    expect(await failure(source, 'keyway/acme/openai')).toContain('was deleted in Vault');
  });
  test('wrong path, unknown version, missing field', async () => {
    expect(await failure(source, 'keyway/acme/absent')).toBe('no secret at secret/keyway/acme/absent in Vault (404)');
    expect(await failure(source, 'keyway/acme/openai', { version: 9 })).toBe('no secret at secret/keyway/acme/openai version 9 in Vault (404)');
    expect(await failure(source, 'keyway/acme/openai', { version: 2, field: 'token' })).toContain("no string field 'token'");
  });
  test('bad token, a narrower token and the wrong namespace are 403s', async () => {
    const badToken = createVaultKvKeySource(vaultKvSettings({ address: vault.url, namespace: 'team-a' }, { KEYWAY_VAULT_TOKEN: 'hvs.wrong' }));
    expect(await failure(badToken, 'keyway/acme/openai', { version: 2 })).toContain('403 permission denied');
    const narrow = createVaultKvKeySource(vaultKvSettings({ address: vault.url, namespace: 'team-a' }, { KEYWAY_VAULT_TOKEN: 'hvs.narrow' }));
    expect(await failure(narrow, 'keyway/acme/openai', { version: 2 })).toContain('403');
    const otherNamespace = createVaultKvKeySource(vaultKvSettings({ address: vault.url, namespace: 'team-b' }, { KEYWAY_VAULT_TOKEN: VAULT_TOKEN }));
    expect(await failure(otherNamespace, 'keyway/acme/openai', { version: 2 })).toContain('403');
  });
  test("an account reads only under its own prefix; the operator's platform keys anywhere in the allowed mounts", async () => {
    expect(await failure(source, 'keyway/other/openai')).toContain('only paths under keyway/acme/');
    expect((await source.fetch({ source: 'vault-kv', locator: 'keyway/other/openai' }, { ...account, accountId: null })).apiKey).toBe(
      'sk-other-account-0123456789',
    );
    expect(await failure(source, 'keyway/acme/openai', { mount: 'sys' })).toContain('mount must be one the operator allowed');
  });
  test('an unreachable Vault and a missing token read clearly', async () => {
    const down = createVaultKvKeySource(vaultKvSettings({ address: 'http://127.0.0.1:1' }, { KEYWAY_VAULT_TOKEN: VAULT_TOKEN }));
    expect(await failure(down, 'keyway/acme/openai')).toContain('did not answer');
    const noToken = createVaultKvKeySource(vaultKvSettings({ address: vault.url }, {}));
    expect(await failure(noToken, 'keyway/acme/openai')).toContain('no Vault token');
    expect(() => vaultKvSettings({ accountPrefix: 'keyway/' }, {})).toThrow('{account}');
  });
});

describe('openai-admin against the OpenAI simulator', () => {
  const openai = startOpenAISimulator();
  afterAll(() => openai.stop());
  const settings = { adminKey: OPENAI_SIM_ADMIN_KEY, baseUrl: `${openai.url}/v1`, projects: { acme: [OPENAI_SIM_PROJECT] } };
  test('mints a service-account key that serves chat completions, and revoking it makes the provider refuse it', async () => {
    const source = createOpenAIAdminKeySource(settings);
    const minted = await source.mint?.({ source: 'openai-admin', locator: OPENAI_SIM_PROJECT }, account);
    expect(minted?.version).toMatch(/^svc_acct_/);
    const chat = (apiKey: string) =>
      fetch(`${openai.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await chat(minted?.apiKey as string)).status).toBe(200);
    await source.revoke?.({ source: 'openai-admin', locator: OPENAI_SIM_PROJECT }, minted?.version as string, account);
    expect((await chat(minted?.apiKey as string)).status).toBe(401);
  });
  test('a wrong admin key is a 401, a project not assigned to the account is refused before any call', async () => {
    const wrong = createOpenAIAdminKeySource({ ...settings, adminKey: 'sk-admin-wrong0123456789' });
    const error = await wrong.mint?.({ source: 'openai-admin', locator: OPENAI_SIM_PROJECT }, account).catch((caught: Error) => caught);
    expect((error as Error).message).toContain('refused the admin key (401)');
    const source = createOpenAIAdminKeySource(settings);
    const other = await source.mint?.({ source: 'openai-admin', locator: 'proj_someoneelse' }, account).catch((caught: Error) => caught);
    expect((other as Error).message).toContain('may not mint keys in proj_someoneelse');
    expect(await failure(source, OPENAI_SIM_PROJECT)).toContain('cannot read an existing one back');
  });
});
