// Refused starts that protect stored data, as an operator meets them: a master key that is not the
// one the database was set up with, a database file that cannot be used, and a database an earlier
// release kept in ./data while KEYWAY_DATA_DIR now holds it. Each is exit code 1 and one
// `keyway: cannot start: …` line that names the problem, and touches nothing.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMasterKey } from '../../plugins/crypto-local/master-key.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { encodingsOf } from '../crypto/helpers.ts';
import { addOpenAIKey, chatCompletion, FROM_SOURCE, printedKeys, runUntilExit, startGatewayProcess, type FinishedProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-KeyCheckTestUpstreamKey00000000000001';
const OPERATOR_KEY = 'kw_op_KeyCheckTestOperatorKey0123456789abcdef';
const RUNNING_AS_ROOT = process.getuid?.() === 0;

const scratchDirectories: string[] = [];
let simulator: SimulatorHandle;

function scratchDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-refusals-'));
  scratchDirectories.push(directory);
  return directory;
}

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
});

afterAll(async () => {
  await simulator.stop();
  for (const directory of scratchDirectories) {
    chmodSync(directory, 0o700);
    rmSync(directory, { recursive: true, force: true });
  }
});

function expectOneLineRefusal(result: FinishedProcess, message: RegExp): void {
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toMatch(/^keyway: cannot start: /);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

/** Every row an operator could lose, as stored. */
function storedRows(databaseFile: string): { providerKeys: unknown[]; gatewayKeys: unknown[]; platformSettings: unknown[]; migrations: unknown[] } {
  const database = new Database(databaseFile, { readonly: true });
  try {
    return {
      providerKeys: database.query('SELECT * FROM provider_keys ORDER BY id').all(),
      gatewayKeys: database.query('SELECT * FROM gateway_keys ORDER BY id').all(),
      platformSettings: database.query('SELECT * FROM platform_settings ORDER BY key').all(),
      migrations: database.query('SELECT * FROM keyway_migrations ORDER BY id').all(),
    };
  } finally {
    database.close();
  }
}

describe('a master key that does not match the database', () => {
  test('is refused at restart in one line naming the version and the variable, and touches no data', async () => {
    const directory = scratchDirectory();
    const databaseFile = join(directory, 'data', 'keyway.db');
    const rightKey = generateMasterKey();
    const env = {
      KEYWAY_DATA_DIR: join(directory, 'data'),
      KEYWAY_DATABASE_URL: `file:${databaseFile}`,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
    };
    const first = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: { ...env, KEYWAY_MASTER_KEY: rightKey } });
    try {
      await addOpenAIKey(first.url, OPERATOR_KEY, UPSTREAM_KEY);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const before = storedRows(databaseFile);
    expect(before.providerKeys).toHaveLength(1);
    expect(before.platformSettings.some((row) => (row as { key: string }).key === 'crypto_key_check')).toBe(true);

    const wrongKey = generateMasterKey();
    const refused = await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: { ...env, KEYWAY_MASTER_KEY: wrongKey } });
    expectOneLineRefusal(refused, /Wrong master key: master key v1 \(from KEYWAY_MASTER_KEY\) does not match this database/);
    for (const leak of [...encodingsOf(Buffer.from(wrongKey, 'base64')), ...encodingsOf(Buffer.from(rightKey, 'base64'))]) {
      expect(`${refused.stdout}${refused.stderr}`).not.toContain(leak);
    }
    expect(storedRows(databaseFile)).toEqual(before);

    // The right key still starts, and the stored provider key still serves.
    const again = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: { ...env, KEYWAY_MASTER_KEY: rightKey } });
    try {
      const response = await chatCompletion(again.url, OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: 'still there?' }] });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    } finally {
      expect(await again.stop()).toBe(0);
    }
  });

  test('a replaced generated key file is refused naming the file', async () => {
    const directory = scratchDirectory();
    const dataDirectory = join(directory, 'data');
    const env = { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`, KEYWAY_ADMIN_KEY: OPERATOR_KEY };
    const first = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env });
    expect(await first.stop()).toBe(0);
    const keyFile = join(dataDirectory, 'master.key');
    writeFileSync(keyFile, `${generateMasterKey()}\n`, { mode: 0o600 });
    const refused = await runUntilExit({ command: FROM_SOURCE, cwd: directory, env });
    expectOneLineRefusal(refused, new RegExp(`master key v1 \\(from the generated key file ${keyFile.replaceAll('.', '\\.')}\\) does not match this database`));
  });
});

describe('a database file that cannot be used', () => {
  const masterKey = generateMasterKey();

  async function startOn(databaseFile: string, directory: string): Promise<FinishedProcess> {
    return runUntilExit({
      command: FROM_SOURCE,
      cwd: directory,
      env: {
        KEYWAY_DATA_DIR: join(directory, 'data'),
        KEYWAY_DATABASE_URL: `file:${databaseFile}`,
        KEYWAY_MASTER_KEY: masterKey,
        KEYWAY_ADMIN_KEY: OPERATOR_KEY,
      },
    });
  }

  test('a file that is not SQLite is named, and left as it was', async () => {
    const directory = scratchDirectory();
    const databaseFile = join(directory, 'notes.txt');
    const content = 'These are my notes, not a database.\n'.repeat(200);
    writeFileSync(databaseFile, content);
    const result = await startOn(databaseFile, directory);
    expectOneLineRefusal(result, new RegExp(`The database file ${databaseFile.replaceAll('.', '\\.')} is not a SQLite database`));
    expect(readFileSync(databaseFile, 'utf8')).toBe(content);
  });

  test('a folder is named as a folder', async () => {
    const directory = scratchDirectory();
    const databaseFile = join(directory, 'keyway.db');
    mkdirSync(databaseFile);
    const result = await startOn(databaseFile, directory);
    expectOneLineRefusal(result, new RegExp(`KEYWAY_DATABASE_URL names ${databaseFile.replaceAll('.', '\\.')}, which is a folder, not a database file`));
  });

  test('a path through a regular file names the folder that could not be created', async () => {
    const directory = scratchDirectory();
    writeFileSync(join(directory, 'plain-file'), 'x');
    const direct = await startOn(join(directory, 'plain-file', 'keyway.db'), directory);
    expectOneLineRefusal(direct, new RegExp(`The database folder ${join(directory, 'plain-file')} \\(KEYWAY_DATABASE_URL\\) is a file, not a folder`));
    const deeper = await startOn(join(directory, 'plain-file', 'sub', 'keyway.db'), directory);
    expectOneLineRefusal(
      deeper,
      new RegExp(
        `The database folder ${join(directory, 'plain-file', 'sub')} \\(KEYWAY_DATABASE_URL\\) could not be created: part of its path is a file \\(ENOTDIR\\)`,
      ),
    );
  });

  test('a KEYWAY_DATA_DIR that is a file is named as one, with its variable, whatever the master key', async () => {
    const directory = scratchDirectory();
    const dataFile = join(directory, 'data-file');
    writeFileSync(dataFile, 'not a folder\n');
    for (const masterKey of [{}, { KEYWAY_MASTER_KEY: generateMasterKey() }] as Array<Record<string, string>>) {
      const result = await runUntilExit({
        command: FROM_SOURCE,
        cwd: directory,
        env: { KEYWAY_DATA_DIR: dataFile, KEYWAY_ADMIN_KEY: OPERATOR_KEY, ...masterKey },
      });
      expectOneLineRefusal(result, new RegExp(`KEYWAY_DATA_DIR is ${dataFile}, which is a file, not a folder`));
    }
    expect(readFileSync(dataFile, 'utf8')).toBe('not a folder\n');
  });

  test('a damaged database fails its integrity check at start, named in one line', async () => {
    const directory = scratchDirectory();
    const databaseFile = join(directory, 'damaged.db');
    const database = new Database(databaseFile, { create: true });
    database.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = database.query('INSERT INTO filler (id, body) VALUES (?, ?)');
    database.transaction(() => {
      for (let id = 0; id < 2000; id++) insert.run(id, 'x'.repeat(100));
    })();
    database.close();
    const bytes = readFileSync(databaseFile);
    // Overwrite cells of a table page (page 4): the file still opens, its b-tree no longer holds together.
    bytes.fill(0x55, 4096 * 3 + 100, 4096 * 3 + 400);
    writeFileSync(databaseFile, bytes);
    const result = await startOn(databaseFile, directory);
    expectOneLineRefusal(
      result,
      new RegExp(`The database file ${databaseFile.replaceAll('.', '\\.')} (failed its integrity check \\(PRAGMA quick_check: |is damaged)`),
    );
  });

  /** A data folder a gateway has started on and stopped cleanly: a healthy database to break or copy. */
  async function startedOnce(): Promise<{ directory: string; dataDirectory: string; env: Record<string, string> }> {
    const directory = scratchDirectory();
    const dataDirectory = join(directory, 'data');
    const env = {
      KEYWAY_DATA_DIR: dataDirectory,
      KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
      KEYWAY_MASTER_KEY: masterKey,
      KEYWAY_ADMIN_KEY: OPERATOR_KEY,
    };
    const first = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env });
    expect(await first.stop()).toBe(0);
    return { directory, dataDirectory, env };
  }

  test.skipIf(RUNNING_AS_ROOT)('a read-only data folder says it could not be written, naming the folder (skipped as root: root writes anyway)', async () => {
    const { directory, dataDirectory, env } = await startedOnce();
    chmodSync(dataDirectory, 0o555);
    try {
      const result = await runUntilExit({ command: FROM_SOURCE, cwd: directory, env });
      expectOneLineRefusal(result, new RegExp(`The database folder ${dataDirectory.replaceAll('.', '\\.')} could not be written \\(EACCES\\)`));
    } finally {
      chmodSync(dataDirectory, 0o700);
    }
  });

  test.skipIf(RUNNING_AS_ROOT)('a read-only data folder without a master key says the folder could not be written (skipped as root)', async () => {
    const directory = scratchDirectory();
    const dataDirectory = join(directory, 'data');
    mkdirSync(dataDirectory, { mode: 0o555 });
    try {
      const result = await runUntilExit({
        command: FROM_SOURCE,
        cwd: directory,
        env: { KEYWAY_DATA_DIR: dataDirectory, KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}` },
      });
      expectOneLineRefusal(result, new RegExp(`The data folder ${dataDirectory.replaceAll('.', '\\.')} could not be written \\(EACCES\\)`));
    } finally {
      chmodSync(dataDirectory, 0o700);
    }
  });

  test('a database copied from a healthy gateway still starts (the checks refuse only what is broken)', async () => {
    const { directory, dataDirectory, env } = await startedOnce();
    const copy = join(directory, 'copy');
    mkdirSync(copy);
    copyFileSync(join(dataDirectory, 'keyway.db'), join(copy, 'keyway.db'));
    const second = await startGatewayProcess({
      command: FROM_SOURCE,
      cwd: directory,
      env: { ...env, KEYWAY_DATA_DIR: copy, KEYWAY_DATABASE_URL: `file:${join(copy, 'keyway.db')}` },
    });
    expect(await second.stop()).toBe(0);
  });
});

describe('KEYWAY_DATA_DIR alone holds the whole installation', () => {
  async function listsProviders(url: string, key: string): Promise<boolean> {
    const response = await fetch(`${url}/v1/providers`, { headers: { authorization: `Bearer ${key}` } });
    await response.arrayBuffer();
    return response.status === 200;
  }

  test('the database goes to KEYWAY_DATA_DIR with the master key: a redeploy from another working directory keeps every key', async () => {
    const directory = scratchDirectory();
    const volume = join(directory, 'volume');
    for (const release of ['release-1', 'release-2']) mkdirSync(join(directory, release));
    const first = await startGatewayProcess({ command: FROM_SOURCE, cwd: join(directory, 'release-1'), env: { KEYWAY_DATA_DIR: volume } });
    const { defaultAdminKey } = printedKeys(first.stdout());
    expect(await first.stop()).toBe(0);
    expect(readdirSync(volume)).toEqual(expect.arrayContaining(['keyway.db', 'master.key']));
    // Nothing under the working directory: it used to get ./data/keyway.db, lost with the container.
    expect(readdirSync(join(directory, 'release-1'))).toEqual([]);
    const second = await startGatewayProcess({ command: FROM_SOURCE, cwd: join(directory, 'release-2'), env: { KEYWAY_DATA_DIR: volume } });
    try {
      expect(second.stdout()).not.toContain('first start');
      expect(await listsProviders(second.url, defaultAdminKey ?? '')).toBe(true);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 30_000);

  test('an installation an earlier release left in ./data is refused, not replaced by an empty one, and the message says how to move it', async () => {
    const directory = scratchDirectory();
    const volume = join(directory, 'volume');
    const earlier = join(directory, 'data', 'keyway.db');
    // What an earlier release did with KEYWAY_DATA_DIR alone: the master key in it, the database in ./data.
    const old = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: { KEYWAY_DATA_DIR: volume, KEYWAY_DATABASE_URL: `file:${earlier}` } });
    const { defaultAdminKey } = printedKeys(old.stdout());
    expect(await old.stop()).toBe(0);

    const refused = await runUntilExit({ command: FROM_SOURCE, cwd: directory, env: { KEYWAY_DATA_DIR: volume } });
    expectOneLineRefusal(
      refused,
      new RegExp(
        `KEYWAY_DATA_DIR is ${volume}, which holds no keyway\\.db, but ${earlier.replaceAll('.', '\\.')} exists: .*` +
          `\\(mv ${earlier.replaceAll('.', '\\.')} ${volume}/, .*KEYWAY_DATABASE_URL=file:${earlier.replaceAll('.', '\\.')}`,
      ),
    );
    expect(readdirSync(volume)).not.toContain('keyway.db');

    // Either way out keeps the installation: the database where it is, named by KEYWAY_DATABASE_URL…
    const named = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: { KEYWAY_DATA_DIR: volume, KEYWAY_DATABASE_URL: `file:${earlier}` } });
    try {
      expect(await listsProviders(named.url, defaultAdminKey ?? '')).toBe(true);
    } finally {
      expect(await named.stop()).toBe(0);
    }
    // …or moved into the data directory.
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(`${earlier}${suffix}`)) renameSync(`${earlier}${suffix}`, join(volume, `keyway.db${suffix}`));
    const moved = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: { KEYWAY_DATA_DIR: volume } });
    try {
      expect(moved.stdout()).not.toContain('first start');
      expect(await listsProviders(moved.url, defaultAdminKey ?? '')).toBe(true);
    } finally {
      expect(await moved.stop()).toBe(0);
    }
  }, 30_000);
});

describe('a plugin that cannot start, with a key in its message', () => {
  // A vendor SDK's refusal often echoes the token it was given; the one start line is scrubbed of
  // key-shaped text as every log line is (QA18: a setup error printed its sk-proj-… key in clear).
  const LEAKED = 'sk-proj-SetupLeakCanary0123456789abcdefghijkl';

  async function refusedWith(moduleText: string): Promise<FinishedProcess> {
    const directory = scratchDirectory();
    const pluginFile = join(directory, 'leaky-plugin.ts');
    writeFileSync(pluginFile, moduleText);
    return runUntilExit({
      command: FROM_SOURCE,
      cwd: directory,
      env: { KEYWAY_DATA_DIR: join(directory, 'data'), KEYWAY_DATABASE_URL: `file:${join(directory, 'data', 'keyway.db')}`, KEYWAY_PLUGINS: pluginFile },
    });
  }

  test('a setup that throws: the line names the plugin, and the key is redacted', async () => {
    const result = await refusedWith(
      `export default { name: 'leaky', version: '1.0.0', apiVersion: 1, kind: 'extension', environment: [], setup() { throw new Error('vendor said: invalid token ${LEAKED}'); } };\n`,
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("keyway: cannot start: plugin 'leaky'");
    expect(result.stderr).toContain('setup failed: vendor said: invalid token');
    expect(result.stderr + result.stdout).not.toContain(LEAKED);
  });

  test('a module that throws as it loads: the key is redacted', async () => {
    const result = await refusedWith(`throw new Error('could not log in with ${LEAKED}');\n`);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('keyway: cannot start: KEYWAY_PLUGINS: cannot load');
    expect(result.stderr + result.stdout).not.toContain(LEAKED);
  });
});
