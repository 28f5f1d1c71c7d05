// The first start's banner of new keys comes once the server listens (QA19 ops L7: it came before the
// port was tried, so a start that then failed showed keys as if it had started). A start whose listen
// fails still shows them, saying it did not start: the keys were created and are never shown again.

import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../core/logger.ts';
import { createRuntime } from '../../core/runtime.ts';
import { startServer } from '../../core/server.ts';
import { builtinPlugins } from '../../plugins/builtin.ts';

const directories: string[] = [];
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

async function firstStartRuntime(port: number, output: string[]) {
  const directory = mkdtempSync(join(tmpdir(), 'keyway-banner-'));
  directories.push(directory);
  return createRuntime({
    builtinPlugins: builtinPlugins(),
    environment: {
      KEYWAY_HOST: '127.0.0.1',
      KEYWAY_PORT: String(port),
      KEYWAY_DATA_DIR: directory,
      KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}`,
    },
    logger: createLogger('warn', { write: () => undefined } as never),
    announce: (text) => void output.push(text),
    probes: false,
  });
}

test('the banner is printed once the server listens, not before', async () => {
  const output: string[] = [];
  const runtime = await firstStartRuntime(0, output);
  expect(output.join('')).not.toContain('Keyway first start');
  const server = startServer(runtime);
  try {
    const banner = output.join('');
    expect(banner).toContain('Keyway first start');
    expect(banner).toMatch(/Operator key \(KEYWAY_ADMIN_KEY\):\s+kw_op_/);
    expect(banner).toContain('These keys are shown only now: store them safely.');
  } finally {
    await server.stop();
  }
});

test('a start whose port is taken shows the keys it created, saying it did not start', async () => {
  const taken = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('taken') });
  try {
    const output: string[] = [];
    const runtime = await firstStartRuntime(taken.port as number, output);
    expect(() => startServer(runtime)).toThrow(/is already in use/);
    const banner = output.join('');
    expect(banner).toMatch(/Admin key of the 'default' account:\s+kw_ak_/);
    expect(banner).toContain('Keyway did not start (the reason follows), but these keys were created');
    expect(banner).not.toContain('These keys are shown only now');
    runtime.store.close();
  } finally {
    taken.stop(true);
  }
});
