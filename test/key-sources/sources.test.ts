// Each key source's failures and allowlists, against its fixture or simulator: what an account admin
// cannot reach (KEYWAY_MASTER_KEY, /etc/passwd, an arbitrary command, another account's Vault path or
// OpenAI project), and how each failure reads (never with the key in it).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KeySource, KeySourceContext } from '../../core/spec/key-source.ts';
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

async function failure(source: KeySource, locator: string, options?: Record<string, unknown>, context: KeySourceContext = account): Promise<string> {
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

/** Another tenant's id, of the shape POST /v1/accounts gives (`acc_` and 20 letters or digits). */
const OTHER_TENANT = 'acc_Other0123456789abcde';
const other = { accountId: OTHER_TENANT, provider: 'openai', keyId: 'pk_other' };
const defaultAccount = { accountId: 'default', provider: 'openai', keyId: 'pk_default' };
const platform = { accountId: null, provider: 'openai', keyId: 'pk_platform' };

/** Two refusals are one answer when they differ only by the name each was asked for. */
function sameAnswer(first: [string, string], second: [string, string]): void {
  expect(first[1].replaceAll(first[0], '<name>')).toBe(second[1].replaceAll(second[0], '<name>'));
}

describe('env', () => {
  const env = { KEYWAY_KEY_OPENAI: CANARY_KEY, KEYWAY_MASTER_KEY: 'MasterKeyCanary0123456789', KEYWAY_ADMIN_KEY: 'kw_op_canary', PATH: '/usr/bin' };
  test("an account admin cannot read Keyway's own settings or any variable outside the prefix", async () => {
    const source = createEnvKeySource(env, 'KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_MASTER_KEY')).toContain("Keyway's own settings");
    expect(await failure(source, 'KEYWAY_ADMIN_KEY')).toContain("Keyway's own settings");
    expect(await failure(source, 'PATH')).toContain('KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_KEY_SOURCE_ENV_PREFIX')).toContain("Keyway's own settings");
    // In any case: an environment that ignores case (Windows) would read the setting.
    expect(await failure(source, 'KEYWAY_Master_Key')).toContain("Keyway's own settings");
    expect(await failure(source, 'KEYWAY_KEY_source_commands')).toContain("Keyway's own settings");
  });
  test('a missing or empty variable is named, and reads as missing', async () => {
    const source = createEnvKeySource({ ...env, KEYWAY_KEY_acme_EMPTY: '  ' }, 'KEYWAY_KEY_');
    expect(await failure(source, 'KEYWAY_KEY_acme_ABSENT')).toBe(
      "the environment variable KEYWAY_KEY_acme_ABSENT is not set or empty among this account's (KEYWAY_KEY_acme_…)",
    );
    expect(await failure(source, 'KEYWAY_KEY_acme_EMPTY')).toContain('not set or empty');
  });
  test('an operator prefix that would open the environment or Keyway’s settings is refused at start', () => {
    for (const prefix of ['', 'K_', 'KEYWAY_', 'KEYWAY_MASTER_KEY_', 'lower_']) expect(() => checkPrefix(prefix)).toThrow();
    expect(checkPrefix('ACME_OPENAI_')).toBe('ACME_OPENAI_');
  });
  test("an account reads only the names that go on with its id; another's answers as an unset one (QA15 F1)", async () => {
    const variables = {
      KEYWAY_KEY_OPENAI: CANARY_KEY,
      [`KEYWAY_KEY_${OTHER_TENANT}_OPENAI`]: CANARY_KEY,
      KEYWAY_KEY_acme_OPENAI: VAULT_CANARY_KEY,
    };
    const source = createEnvKeySource(variables, 'KEYWAY_KEY_');
    const fetched = async (locator: string, context: typeof account | typeof platform) => (await source.fetch({ source: 'env', locator }, context)).apiKey;
    expect(await fetched('KEYWAY_KEY_acme_OPENAI', account)).toBe(VAULT_CANARY_KEY);
    expect(await fetched(`KEYWAY_KEY_${OTHER_TENANT}_OPENAI`, other)).toBe(CANARY_KEY);
    const theirs = `KEYWAY_KEY_${OTHER_TENANT}_OPENAI`;
    const refusal = await failure(source, theirs);
    // The same answer whether the other tenant's variable is set or not, and as for a missing one of its own.
    sameAnswer([theirs, refusal], [`KEYWAY_KEY_${OTHER_TENANT}_ABSENT`, await failure(source, `KEYWAY_KEY_${OTHER_TENANT}_ABSENT`)]);
    sameAnswer([theirs, refusal], ['KEYWAY_KEY_acme_ABSENT', await failure(source, 'KEYWAY_KEY_acme_ABSENT')]);
    // The default account's names, and the bare account prefix, are not a tenant's either.
    sameAnswer([theirs, refusal], ['KEYWAY_KEY_OPENAI', await failure(source, 'KEYWAY_KEY_OPENAI')]);
    expect(await failure(source, 'KEYWAY_KEY_acme_')).toContain('is not set or empty among this account');
    expect(await failure(source, 'KEYWAY_KEY_OPENAI', undefined, other)).toContain(`(KEYWAY_KEY_${OTHER_TENANT}_…)`);
    // validate with the account says the same, reading nothing; without one it checks the name only.
    expect(source.validate({ source: 'env', locator: theirs }, account)).toBe(refusal);
    expect(source.validate({ source: 'env', locator: 'KEYWAY_KEY_acme_OPENAI' }, account)).toBeUndefined();
    expect(source.validate({ source: 'env', locator: theirs })).toBeUndefined();
  });
  test('the default account keeps every name outside the accounts’ own; the platform reads any', async () => {
    const source = createEnvKeySource({ KEYWAY_KEY_OPENAI: CANARY_KEY, [`KEYWAY_KEY_${OTHER_TENANT}_OPENAI`]: VAULT_CANARY_KEY }, 'KEYWAY_KEY_');
    expect((await source.fetch({ source: 'env', locator: 'KEYWAY_KEY_OPENAI' }, defaultAccount)).apiKey).toBe(CANARY_KEY);
    const theirs = `KEYWAY_KEY_${OTHER_TENANT}_OPENAI`;
    sameAnswer(
      [theirs, await failure(source, theirs, undefined, defaultAccount)],
      ['KEYWAY_KEY_ABSENT', await failure(source, 'KEYWAY_KEY_ABSENT', undefined, defaultAccount)],
    );
    expect(await failure(source, `KEYWAY_KEY_${OTHER_TENANT}`, undefined, defaultAccount)).toContain('among this account');
    // Another spelling of their names is theirs too: an environment that ignores case would read them.
    expect(await failure(source, `KEYWAY_KEY_${OTHER_TENANT.toUpperCase()}_OPENAI`, undefined, defaultAccount)).toContain('among this account');
    expect((await source.fetch({ source: 'env', locator: theirs }, platform)).apiKey).toBe(VAULT_CANARY_KEY);
    expect((await source.fetch({ source: 'env', locator: 'KEYWAY_KEY_OPENAI' }, platform)).apiKey).toBe(CANARY_KEY);
  });

  // QA15 re-verification: the default account is a tenant too; the platform's own key stays the platform's.
  test('KEYWAY_KEY_PLATFORM_… is the platform keys’ alone: the default account reads it as unset', async () => {
    const source = createEnvKeySource({ KEYWAY_KEY_PLATFORM_OPENAI: VAULT_CANARY_KEY }, 'KEYWAY_KEY_');
    expect((await source.fetch({ source: 'env', locator: 'KEYWAY_KEY_PLATFORM_OPENAI' }, platform)).apiKey).toBe(VAULT_CANARY_KEY);
    for (const name of ['KEYWAY_KEY_PLATFORM_OPENAI', 'KEYWAY_KEY_platform_OPENAI'])
      sameAnswer(
        [name, await failure(source, name, undefined, defaultAccount)],
        ['KEYWAY_KEY_ABSENT', await failure(source, 'KEYWAY_KEY_ABSENT', undefined, defaultAccount)],
      );
  });
});

describe('file', () => {
  const directory = scratchDirectory();
  const outside = scratchDirectory();
  beforeAll(() => {
    mkdirSync(join(directory.path, 'acme'));
    mkdirSync(join(directory.path, OTHER_TENANT));
    mkdirSync(join(directory.path, 'team'));
    mkdirSync(join(directory.path, 'platform'));
    writeKeyFile(directory.path, 'acme/ok.key', `\n${CANARY_KEY}\n`);
    writeKeyFile(directory.path, 'acme/world.key', CANARY_KEY, 0o644);
    writeKeyFile(directory.path, 'acme/unreadable.key', CANARY_KEY, 0o000);
    writeKeyFile(directory.path, 'acme/empty.key', '\n');
    writeKeyFile(directory.path, 'acme/two.key', `${CANARY_KEY}\nsecond-line`);
    writeKeyFile(directory.path, `${OTHER_TENANT}/openai.key`, VAULT_CANARY_KEY);
    // A single-company install's layout: keys at the top of the directory, or in folders of its own.
    writeKeyFile(directory.path, 'openai.key', CANARY_KEY);
    writeKeyFile(directory.path, 'team/anthropic.key', CANARY_KEY);
    writeKeyFile(directory.path, 'platform/openai.key', VAULT_CANARY_KEY);
    writeKeyFile(outside.path, 'elsewhere.key', CANARY_KEY);
    symlinkSync(join(outside.path, 'elsewhere.key'), join(directory.path, 'acme/escape.key'));
    symlinkSync('/etc/passwd', join(directory.path, 'acme/passwd'));
    // Links that stay in the directory but lead into another account's folder.
    symlinkSync(join(directory.path, OTHER_TENANT, 'openai.key'), join(directory.path, 'acme/into-other.key'));
    symlinkSync(join(directory.path, OTHER_TENANT, 'openai.key'), join(directory.path, 'tenant-link.key'));
  });
  afterAll(() => {
    directory.remove();
    outside.remove();
  });
  test("reads and trims a key under the account's folder", async () => {
    expect((await createFileKeySource(directory.path).fetch({ source: 'file', locator: 'acme/ok.key' }, account)).apiKey).toBe(CANARY_KEY);
  });
  test('/etc/passwd, .. and symbolic links out of the directory are refused', async () => {
    const source = createFileKeySource(directory.path);
    expect(await failure(source, '/etc/passwd')).toContain('relative path');
    expect(await failure(source, '../../../../etc/passwd')).toContain('relative path');
    expect(await failure(source, 'acme/passwd')).toContain('outside the key directory');
    expect(await failure(source, 'acme/escape.key')).toContain('outside the key directory');
  });
  test('permissions, emptiness and extra content are checked', async () => {
    const source = createFileKeySource(directory.path);
    expect(await failure(source, 'acme/world.key')).toContain('other users');
    if (process.getuid?.() !== 0) expect(await failure(source, 'acme/unreadable.key')).toContain('not readable');
    expect(await failure(source, 'acme/empty.key')).toContain('empty');
    expect(await failure(source, 'acme/two.key')).toContain('more than one');
    expect(await failure(source, 'acme/absent.key')).toContain('no file acme/absent.key');
  });
  test('without an operator directory nothing is readable', async () => {
    expect(await failure(createFileKeySource(undefined), 'acme/ok.key')).toContain('KEYWAY_KEY_SOURCE_FILE_DIR');
  });
  test("an account reads only its own folder; another's file answers as a missing one (QA15 F1)", async () => {
    const source = createFileKeySource(directory.path);
    expect((await source.fetch({ source: 'file', locator: `${OTHER_TENANT}/openai.key` }, other)).apiKey).toBe(VAULT_CANARY_KEY);
    const theirs = `${OTHER_TENANT}/openai.key`;
    const refusal = await failure(source, theirs);
    expect(refusal).toBe(`no file ${theirs} among this account's key files (acme/… in the key directory)`);
    // No existence oracle: the same answer for a file that is not there, in their folder or in ours.
    sameAnswer([theirs, refusal], [`${OTHER_TENANT}/absent.key`, await failure(source, `${OTHER_TENANT}/absent.key`)]);
    sameAnswer([theirs, refusal], ['acme/absent.key', await failure(source, 'acme/absent.key')]);
    sameAnswer([theirs, refusal], ['openai.key', await failure(source, 'openai.key')]);
    // A link in our folder that leads into theirs, followed, is theirs.
    sameAnswer([theirs, refusal], ['acme/into-other.key', await failure(source, 'acme/into-other.key')]);
    expect(source.validate({ source: 'file', locator: theirs }, account)).toBe(refusal);
    expect(source.validate({ source: 'file', locator: 'acme/ok.key' }, account)).toBeUndefined();
    expect(source.validate({ source: 'file', locator: theirs })).toBeUndefined();
  });
  test('the default account keeps the directory outside account folders; the platform reads it all', async () => {
    const source = createFileKeySource(directory.path);
    const read = async (locator: string, context: typeof defaultAccount | typeof platform) => (await source.fetch({ source: 'file', locator }, context)).apiKey;
    expect(await read('openai.key', defaultAccount)).toBe(CANARY_KEY);
    expect(await read('team/anthropic.key', defaultAccount)).toBe(CANARY_KEY);
    const theirs = `${OTHER_TENANT}/openai.key`;
    const refusal = await failure(source, theirs, undefined, defaultAccount);
    sameAnswer([theirs, refusal], ['absent.key', await failure(source, 'absent.key', undefined, defaultAccount)]);
    sameAnswer([theirs, refusal], ['tenant-link.key', await failure(source, 'tenant-link.key', undefined, defaultAccount)]);
    // Another spelling of their folder is theirs too: a case-insensitive file system would open it.
    const upper = `${OTHER_TENANT.toUpperCase()}/openai.key`;
    sameAnswer([theirs, refusal], [upper, await failure(source, upper, undefined, defaultAccount)]);
    expect(await read(theirs, platform)).toBe(VAULT_CANARY_KEY);
    expect(await read('openai.key', platform)).toBe(CANARY_KEY);
  });

  // QA15 re-verification: the default account is a tenant too; the platform's own key stays the platform's.
  test('the folder platform/ is the platform keys’ alone: the default account reads it as missing', async () => {
    const source = createFileKeySource(directory.path);
    expect((await source.fetch({ source: 'file', locator: 'platform/openai.key' }, platform)).apiKey).toBe(VAULT_CANARY_KEY);
    for (const locator of ['platform/openai.key', 'PLATFORM/openai.key'])
      sameAnswer(
        [locator, await failure(source, locator, undefined, defaultAccount)],
        ['absent.key', await failure(source, 'absent.key', undefined, defaultAccount)],
      );
  });
});

describe('command', () => {
  const script = (code: string) => [process.execPath, '-e', code];
  const commands = {
    ok: { argv: script(`process.stdout.write(${JSON.stringify(CANARY_KEY)})`), accounts: ['acme'] },
    shared: { argv: script('process.stdout.write("sk-default-account-key-0123456789")') },
    otherTenant: { argv: script('process.stdout.write("sk-other-tenant-key-0123456789")'), accounts: ['acc_Other0123456789abcdef'] },
    slow: { argv: script('setTimeout(() => {}, 10000)'), timeoutMs: 200, accounts: ['acme'] },
    fails: { argv: script(`process.stderr.write(${JSON.stringify(CANARY_KEY)}); process.exit(3)`), accounts: ['acme'] },
    silent: { argv: script('process.exit(0)'), accounts: ['acme'] },
    environment: {
      argv: script('process.stdout.write(String(process.env.KEYWAY_MASTER_KEY ?? "absent") + "-" + process.env.KEYWAY_KEY_PROVIDER)'),
      accounts: ['acme'],
    },
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
  test("a command serves the accounts it lists, one without a list the default account only, platform keys any; a refusal names only the caller's commands", async () => {
    const reference = (locator: string) => ({ source: 'command', locator });
    const defaultAccount = { accountId: 'default', provider: 'openai', keyId: 'pk_default' };
    expect((await source.fetch(reference('shared'), defaultAccount)).apiKey).toBe('sk-default-account-key-0123456789');
    expect((await source.fetch(reference('otherTenant'), platform)).apiKey).toBe('sk-other-tenant-key-0123456789');
    const foreign = await source.fetch(reference('otherTenant'), account).then(
      () => 'served',
      (error: Error) => error.message,
    );
    const unknown = await source.fetch(reference('nowhere'), account).then(
      () => 'served',
      (error: Error) => error.message,
    );
    // The same answer whether the command exists for another account or not at all.
    expect(foreign).toBe(unknown);
    expect(foreign).not.toContain('otherTenant');
    expect(foreign).not.toContain('shared');
    expect(source.validate(reference('shared'), account)).toBe(unknown);
    expect(source.validate(reference('ok'), account)).toBeUndefined();
    expect(() => parseCommands('{"x": {"argv": ["/bin/true"], "accounts": "acme"}}')).toThrow('accounts');
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
