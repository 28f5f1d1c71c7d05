// Settings an operator gets wrong, as the process meets them (QA17): every value Keyway cannot read stops
// the start with exit code 1 and one `keyway: cannot start: …` line naming the variable, never a stack
// trace and never the secret or password it holds. Before, a switch turned "false" stayed on, a pool of
// 0 or a session of -1 hours quietly meant the default, a base URL that was no URL started and then
// refused every request, a one-character operator key was taken, and a bad host, log level, Redis URL
// or a port in use printed a stack trace that did not name the variable.

import { afterAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FROM_SOURCE, runUntilExit, startGatewayProcess, type FinishedProcess } from './process-helpers.ts';

const scratchDirectories: string[] = [];

function scratchDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-settings-'));
  scratchDirectories.push(directory);
  return directory;
}

afterAll(() => {
  for (const directory of scratchDirectories) rmSync(directory, { recursive: true, force: true });
});

/** A start with `env` on a scratch data folder; a start that is not refused fails the test after 10 s. */
async function refusedStart(env: Record<string, string>): Promise<FinishedProcess> {
  const directory = scratchDirectory();
  return runUntilExit(
    {
      command: FROM_SOURCE,
      cwd: directory,
      env: { KEYWAY_DATA_DIR: join(directory, 'data'), KEYWAY_DATABASE_URL: `file:${join(directory, 'data', 'keyway.db')}`, ...env },
    },
    10_000,
  );
}

function expectOneLine(result: FinishedProcess, message: RegExp, secret?: string): void {
  expect({ exitCode: result.exitCode, stderr: result.stderr }).toMatchObject({ exitCode: 1, stderr: expect.stringMatching(/^keyway: cannot start: /) });
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  if (secret !== undefined) expect(`${result.stdout}${result.stderr}`).not.toContain(secret);
}

interface Refusal {
  env: Record<string, string>;
  message: RegExp;
  /** Text that must appear in no output. */
  secret?: string;
}

/** Folders and files the plugin settings of QA18 name: one of each kind, made once. */
const paths = (() => {
  const root = scratchDirectory();
  const keyFolder = join(root, 'keys');
  mkdirSync(keyFolder, { mode: 0o700 });
  const aFile = join(root, 'a-file');
  writeFileSync(aFile, 'not a folder\n');
  const emptyFile = join(root, 'empty-token');
  writeFileSync(emptyFile, '  \n', { mode: 0o600 });
  const tokenFile = join(root, 'vault-token');
  writeFileSync(tokenFile, 'hvs.Canary-vault-token\n', { mode: 0o600 });
  return { root, keyFolder, aFile, emptyFile, tokenFile, missing: join(root, 'no-such-thing') };
})();

const SPACED_ADMIN_KEY = 'sk-Canary-admin key with spaces-0123456789abcdef';

const refusals: Record<string, Refusal> = {
  // Switches: one parser, the same spellings everywhere.
  'KEYWAY_RESPONSES_STORE=maybe': { env: { KEYWAY_RESPONSES_STORE: 'maybe' }, message: /KEYWAY_RESPONSES_STORE must be on or off; got "maybe"\./ },
  'KEYWAY_RESPONSES_WEBSOCKET=maybe': { env: { KEYWAY_RESPONSES_WEBSOCKET: 'maybe' }, message: /KEYWAY_RESPONSES_WEBSOCKET must be on or off/ },
  'KEYWAY_TOKENIZERS=maybe': { env: { KEYWAY_TOKENIZERS: 'maybe' }, message: /KEYWAY_TOKENIZERS must be on or off; got "maybe"\./ },
  'KEYWAY_VAULT_FIPS=maybe (the Vault backend asleep)': { env: { KEYWAY_VAULT_FIPS: 'maybe' }, message: /KEYWAY_VAULT_FIPS must be on or off/ },
  'KEYWAY_USAGE_WRITER=thread': { env: { KEYWAY_USAGE_WRITER: 'thread' }, message: /KEYWAY_USAGE_WRITER must be one of worker, inline; got "thread"\./ },
  // Numbers once replaced by their defaults.
  'KEYWAY_DATABASE_POOL=0 (on SQLite too)': {
    env: { KEYWAY_DATABASE_POOL: '0' },
    message: /KEYWAY_DATABASE_POOL must be an integer between 1 and 200; got "0"\./,
  },
  'KEYWAY_DATABASE_POOL=500': { env: { KEYWAY_DATABASE_POOL: '500' }, message: /KEYWAY_DATABASE_POOL must be an integer between 1 and 200/ },
  'KEYWAY_DASHBOARD_SESSION_HOURS=-1': {
    env: { KEYWAY_DASHBOARD_SESSION_HOURS: '-1' },
    message: /KEYWAY_DASHBOARD_SESSION_HOURS must be a number greater than 0 and at most 8760; got "-1"\./,
  },
  'KEYWAY_DASHBOARD_SESSION_HOURS=abc': { env: { KEYWAY_DASHBOARD_SESSION_HOURS: 'abc' }, message: /KEYWAY_DASHBOARD_SESSION_HOURS must be a number/ },
  'KEYWAY_RESPONSES_RETENTION_DAYS=abc': {
    env: { KEYWAY_RESPONSES_RETENTION_DAYS: 'abc' },
    message: /KEYWAY_RESPONSES_RETENTION_DAYS must be a number from 0 to 3650/,
  },
  'KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES=-1': {
    env: { KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES: '-1' },
    message: /KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES must be a number from 0 to 525600/,
  },
  'KEYWAY_MASTER_KEY_REWRAP_BATCH=0 (read at start, not at the first rotation)': {
    env: { KEYWAY_MASTER_KEY_REWRAP_BATCH: '0' },
    message: /KEYWAY_MASTER_KEY_REWRAP_BATCH must be an integer between 1 and 10000; got "0"\./,
  },
  'KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS=-1': {
    env: { KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS: '-1' },
    message: /KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS must be an integer between 0 and 60000/,
  },
  // Addresses that started and then refused every request as upstream_not_allowed.
  'KEYWAY_OPENAI_BASE_URL=notaurl': { env: { KEYWAY_OPENAI_BASE_URL: 'notaurl' }, message: /KEYWAY_OPENAI_BASE_URL is not a URL/ },
  'KEYWAY_OPENAI_BASE_URL=ftp://…': {
    env: { KEYWAY_OPENAI_BASE_URL: 'ftp://files.example/v1' },
    message: /KEYWAY_OPENAI_BASE_URL must start with http:\/\/ or https:\/\/; got the scheme ftp:\./,
  },
  'KEYWAY_OPENAI_BASE_URL=http://': { env: { KEYWAY_OPENAI_BASE_URL: 'http://' }, message: /KEYWAY_OPENAI_BASE_URL is not a URL/ },
  'KEYWAY_ANTHROPIC_BASE_URL=not a url': { env: { KEYWAY_ANTHROPIC_BASE_URL: 'not a url' }, message: /KEYWAY_ANTHROPIC_BASE_URL is not a URL/ },
  'KEYWAY_GROQ_BASE_URL=not a url': { env: { KEYWAY_GROQ_BASE_URL: 'not a url' }, message: /KEYWAY_GROQ_BASE_URL is not a URL/ },
  'KEYWAY_OPENAI_ADMIN_BASE_URL=not a url': { env: { KEYWAY_OPENAI_ADMIN_BASE_URL: 'not a url' }, message: /KEYWAY_OPENAI_ADMIN_BASE_URL is not a URL/ },
  // Operator secrets anyone could guess.
  'KEYWAY_ADMIN_KEY=x': { env: { KEYWAY_ADMIN_KEY: 'x' }, message: /KEYWAY_ADMIN_KEY is too weak: it is shorter than 32 characters\. Generate one with/ },
  'KEYWAY_ADMIN_KEY with spaces': { env: { KEYWAY_ADMIN_KEY: SPACED_ADMIN_KEY }, message: /KEYWAY_ADMIN_KEY is too weak: it holds a space/, secret: 'Canary' },
  'KEYWAY_ADMIN_KEY a repeated pattern': {
    env: { KEYWAY_ADMIN_KEY: 'Canary0123456789'.repeat(3) },
    message: /KEYWAY_ADMIN_KEY is too weak: it repeats a shorter pattern/,
    secret: 'Canary0123456789',
  },
  'KEYWAY_METRICS_TOKEN=x': { env: { KEYWAY_METRICS_TOKEN: 'x' }, message: /KEYWAY_METRICS_TOKEN is too weak: it is shorter than 32 characters/ },
  // Stack traces that named no variable.
  'KEYWAY_HOST=999.1.1.1': {
    env: { KEYWAY_HOST: '999.1.1.1' },
    message: /KEYWAY_HOST must be an IP address of this machine .* or a host name; got "999\.1\.1\.1"\./,
  },
  'KEYWAY_HOST=not a host!!': { env: { KEYWAY_HOST: 'not a host!!' }, message: /KEYWAY_HOST must be an IP address/ },
  'KEYWAY_HOST an address of another machine': {
    env: { KEYWAY_HOST: '192.0.2.77' },
    message: /KEYWAY_HOST 192\.0\.2\.77 is not an address of this machine.*\(EADDRNOTAVAIL\)/,
  },
  'KEYWAY_LOG_LEVEL=verbose': {
    env: { KEYWAY_LOG_LEVEL: 'verbose' },
    message: /KEYWAY_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "verbose"\./,
  },
  'KEYWAY_REDIS_URL with a password and no host': {
    env: { KEYWAY_REDIS_URL: 'redis://user:Sup3rSecretRedisPassword@' },
    message: /KEYWAY_REDIS_URL is not a URL; write it as redis:\/\/\[user:password@\]host\[:port\]\[\/db\] \(the port defaults to 6379\)\./,
    secret: 'Sup3rSecretRedisPassword',
  },
  'KEYWAY_REDIS_URL with a port that is not a number': {
    env: { KEYWAY_REDIS_URL: 'redis://:Sup3rSecretRedisPassword@127.0.0.1:notaport' },
    message: /KEYWAY_REDIS_URL is not a URL/,
    secret: 'Sup3rSecretRedisPassword',
  },
  // Refusals that named the plugin rather than the variable.
  'KEYWAY_KEY_SOURCE_ENV_PREFIX=KEYWAY_': {
    env: { KEYWAY_KEY_SOURCE_ENV_PREFIX: 'KEYWAY_' },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_ENV_PREFIX: the prefix 'KEYWAY_' would expose Keyway's own settings/,
  },
  'KEYWAY_VAULT_KV_ACCOUNT_PREFIX without {account}': {
    env: { KEYWAY_VAULT_KV_ACCOUNT_PREFIX: 'keyway/' },
    message: /^keyway: cannot start: KEYWAY_VAULT_KV_ACCOUNT_PREFIX: the account prefix must contain \{account\}/,
  },
  // A plugin's own refusal of its variable is the variable's line, not "plugin '…': setup failed: …".
  'KEYWAY_AUDIT_RETENTION_DAYS=0': {
    env: { KEYWAY_AUDIT_RETENTION_DAYS: '0' },
    message: /^keyway: cannot start: KEYWAY_AUDIT_RETENTION_DAYS must be an integer between 1 and/,
  },
  // QA18: folders, files and lists a plugin used only at the first request or key add, now looked at at start.
  'KEYWAY_KEY_SOURCE_FILE_DIR a folder that does not exist': {
    env: { KEYWAY_KEY_SOURCE_FILE_DIR: paths.missing },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_FILE_DIR names \S+\/no-such-thing, which does not exist\.$/m,
  },
  'KEYWAY_KEY_SOURCE_FILE_DIR a file': {
    env: { KEYWAY_KEY_SOURCE_FILE_DIR: paths.aFile },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_FILE_DIR names \S+\/a-file, which is not a folder\.$/m,
  },
  'KEYWAY_VAULT_KV_MOUNTS with an empty entry': {
    env: { KEYWAY_VAULT_KV_MOUNTS: 'secret,,kv-team' },
    message: /^keyway: cannot start: KEYWAY_VAULT_KV_MOUNTS has an empty entry; write mount names comma-separated/,
  },
  'KEYWAY_VAULT_KV_MOUNTS=secret/ (as the Vault CLI prints it)': {
    env: { KEYWAY_VAULT_KV_MOUNTS: 'secret/' },
    message: /^keyway: cannot start: KEYWAY_VAULT_KV_MOUNTS has the entry "secret\/", which is not a mount name/,
  },
  'KEYWAY_VAULT_KV_MOUNTS=,': { env: { KEYWAY_VAULT_KV_MOUNTS: ',' }, message: /^keyway: cannot start: KEYWAY_VAULT_KV_MOUNTS has an empty entry/ },
  'KEYWAY_VAULT_TOKEN_FILE a file that does not exist (the Transit backend asleep)': {
    env: { KEYWAY_VAULT_TOKEN_FILE: paths.missing },
    message: /^keyway: cannot start: KEYWAY_VAULT_TOKEN_FILE names \S+\/no-such-thing, which does not exist\.$/m,
  },
  'KEYWAY_VAULT_TOKEN_FILE an empty file': {
    env: { KEYWAY_VAULT_TOKEN_FILE: paths.emptyFile },
    message: /^keyway: cannot start: KEYWAY_VAULT_TOKEN_FILE names \S+\/empty-token, which is empty\.$/m,
  },
  'KEYWAY_VAULT_TOKEN_FILE a folder': {
    env: { KEYWAY_VAULT_TOKEN_FILE: paths.keyFolder },
    message: /^keyway: cannot start: KEYWAY_VAULT_TOKEN_FILE names \S+\/keys, which is a folder, not a file\.$/m,
  },
  'KEYWAY_KEY_SOURCE_COMMANDS a program that does not exist': {
    env: { KEYWAY_KEY_SOURCE_COMMANDS: JSON.stringify({ vault: { argv: [join(paths.root, 'fetch-key.sh')] } }) },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_COMMANDS: command 'vault' runs \S+\/fetch-key\.sh, which is not an executable file\.$/m,
  },
  'KEYWAY_KEY_SOURCE_COMMANDS a program not on the PATH': {
    env: { KEYWAY_KEY_SOURCE_COMMANDS: JSON.stringify({ op: { argv: ['no-such-program-keyway', 'read'] } }) },
    message: /KEYWAY_KEY_SOURCE_COMMANDS: command 'op' runs no-such-program-keyway, which is not an executable file on the PATH\./,
  },
  'KEYWAY_KEY_SOURCE_COMMANDS a timeoutMs that is no number': {
    env: { KEYWAY_KEY_SOURCE_COMMANDS: JSON.stringify({ op: { argv: ['/bin/sh'], timeoutMs: 'abc' } }) },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_COMMANDS: command 'op' has a timeoutMs that is not an integer from 10 to 120000$/m,
  },
  'KEYWAY_KEY_SOURCE_COMMANDS not JSON (named without the plugin)': {
    env: { KEYWAY_KEY_SOURCE_COMMANDS: 'notjson' },
    message: /^keyway: cannot start: KEYWAY_KEY_SOURCE_COMMANDS must be JSON/,
  },
  'KEYWAY_OPENAI_ADMIN_PROJECTS not JSON (named without the plugin)': {
    env: { KEYWAY_OPENAI_ADMIN_PROJECTS: 'notjson' },
    message: /^keyway: cannot start: KEYWAY_OPENAI_ADMIN_PROJECTS must be JSON/,
  },
  'KEYWAY_SMTP_URL not a URL (named without the plugin)': {
    env: { KEYWAY_SMTP_URL: 'notaurl' },
    message: /^keyway: cannot start: KEYWAY_SMTP_URL is not a URL/,
  },
  "KEYWAY_SMTP_URL's tls_verify=flase, which kept verifying": {
    env: { KEYWAY_SMTP_URL: 'smtp://alerts:Sup3rSecretSmtpPassword@127.0.0.1:2525?tls_verify=flase' },
    message: /^keyway: cannot start: KEYWAY_SMTP_URL's tls_verify= must be on or off; got "flase"\.$/m,
    secret: 'Sup3rSecretSmtpPassword',
  },
  'KEYWAY_MASTER_KEY_FILE a file that does not exist (named without the plugin)': {
    env: { KEYWAY_MASTER_KEY_FILE: paths.missing },
    message: /^keyway: cannot start: KEYWAY_MASTER_KEY_FILE names \S+\/no-such-thing, which does not exist\.$/m,
  },
  'KEYWAY_CRYPTO_BACKEND=vault-transit without KEYWAY_VAULT_ADDR (named without the plugin)': {
    env: { KEYWAY_CRYPTO_BACKEND: 'vault-transit' },
    message: /^keyway: cannot start: KEYWAY_CRYPTO_BACKEND is vault-transit, but KEYWAY_VAULT_ADDR is not set\.$/m,
  },
  // QA19 ops L2: it read `plugin 'otel-traces' (builtin): setup failed: OTEL_BSP_SCHEDULE_DELAY must be …`.
  'OTEL_BSP_SCHEDULE_DELAY=soon': {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: 'soon' },
    message: /^keyway: cannot start: OTEL_BSP_SCHEDULE_DELAY must be an integer between 10 and 3600000; got "soon"\.$/m,
  },
  "KEYWAY_SMTP_URL's timeout_ms=abc, which meant 15 s": {
    env: { KEYWAY_SMTP_URL: 'smtp://127.0.0.1:2525?timeout_ms=abc' },
    message: /^keyway: cannot start: KEYWAY_SMTP_URL's timeout_ms= must be an integer between 1 and 600000; got "abc"\.$/m,
  },
};

describe('a setting Keyway cannot read stops the start in one line naming it', () => {
  for (const [name, refusal] of Object.entries(refusals)) {
    // Longer than runUntilExit's 10 s, so a start that is not refused is killed by it, not left running.
    test(name, async () => {
      expectOneLine(await refusedStart(refusal.env), refusal.message, refusal.secret);
    }, 15_000);
  }
});

describe('the plugin settings checked at start still start when they are right', () => {
  test('a key folder, a Vault token file, mounts, a command on the PATH and an SMTP URL that can be used', async () => {
    const directory = scratchDirectory();
    const gateway = await startGatewayProcess({
      command: FROM_SOURCE,
      cwd: directory,
      env: {
        KEYWAY_DATA_DIR: join(directory, 'data'),
        KEYWAY_DATABASE_URL: `file:${join(directory, 'data', 'keyway.db')}`,
        KEYWAY_KEY_SOURCE_FILE_DIR: paths.keyFolder,
        KEYWAY_VAULT_TOKEN_FILE: paths.tokenFile,
        KEYWAY_VAULT_KV_MOUNTS: ' secret , kv-team ',
        KEYWAY_KEY_SOURCE_COMMANDS: JSON.stringify({ op: { argv: ['sh', '-c', 'echo sk-key'], timeoutMs: 2000 } }),
        KEYWAY_SMTP_URL: 'smtp://127.0.0.1:2525?tls_verify=off&timeout_ms=5000',
      },
    });
    try {
      expect((await fetch(`${gateway.url}/ready`)).status).toBe(200);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
    expect(`${gateway.stdout()}${gateway.stderr()}`).not.toContain('Canary-vault-token');
  }, 30_000);
});

describe('start-up failures that used to print a stack trace', () => {
  test('a port already in use names KEYWAY_PORT, with one worker and with several', async () => {
    const taken = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('taken') });
    try {
      for (const workers of ['1', '2']) {
        const result = await refusedStart({ KEYWAY_PORT: String(taken.port), KEYWAY_WORKERS: workers });
        expectOneLine(result, new RegExp(`KEYWAY_PORT ${taken.port} is already in use on 127\\.0\\.0\\.1 \\(KEYWAY_HOST\\)`));
        // QA19 ops L7: a first start printed its banner of new keys as if it had started, then failed.
        // The keys were created (and stay valid): the banner says the start failed, not that it began.
        expect(result.stdout).toContain('Keyway did not start (the reason follows), but these keys were created');
        expect(result.stdout).toMatch(/Operator key \(KEYWAY_ADMIN_KEY\):\s+kw_op_/);
        expect(result.stdout).not.toContain('These keys are shown only now');
      }
    } finally {
      taken.stop(true);
    }
  });

  const BROKEN_PLUGIN = resolve(import.meta.dir, 'fixtures/broken-snapshot-plugin.ts');

  test('an unexpected error is one line, its name and message; the stack only at KEYWAY_LOG_LEVEL=debug', async () => {
    const plain = await refusedStart({ KEYWAY_PLUGINS: BROKEN_PLUGIN });
    expectOneLine(plain, /^keyway: cannot start: TypeError: the rows of the broken section are missing \(KEYWAY_LOG_LEVEL=debug prints where it came from\)$/m);
    const debug = await refusedStart({ KEYWAY_PLUGINS: BROKEN_PLUGIN, KEYWAY_LOG_LEVEL: 'debug' });
    expect(debug.exitCode).toBe(1);
    expect(debug.stderr).toMatch(/^keyway: cannot start: TypeError: the rows of the broken section\s+are missing\n\s+at /);
  });
});
