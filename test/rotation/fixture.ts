// A gateway for the rotation tests: the OpenAI simulator accepting the old and the new key (the new
// one only once the test says so), a receiver for https:// notification webhooks (through the
// injectable fetch), a local SMTP server, an optional injected clock and a fast rotation job.

import { expect } from 'bun:test';
import type { Clock } from '../../core/clock.ts';
import type { PluginSource } from '../../core/registry.ts';
import { rotationHandleOf, type RotationHandle } from '../../plugins/rotation/index.ts';
import { routingFetch, testResolver } from '../alerts/receivers.ts';
import { startNotificationServers, stopNotificationServers, type NotificationServers } from '../alerts/fixture.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A data directory two gateways (or one, restarted) share. */
export function sharedDataDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'keyway-rotation-'));
}

export const OLD_KEY = 'sk-proj-RotationCanaryOldKey00000000000000000001';
export const NEW_KEY = 'sk-proj-RotationCanaryNewKey00000000000000000002';
export const BAD_KEY = 'sk-proj-RotationCanaryBadKey00000000000000000003';
export const CANARIES = [
  OLD_KEY,
  NEW_KEY,
  BAD_KEY,
  'sk-proj-RotationCanaryPoolKey0000000000000000004',
  'sk-proj-RotationCanaryMintedKey000000000000000005',
  'sk-proj-RotationCanaryMintedKey000000000000000006',
];

export interface RotationWorld extends NotificationServers {
  gateway: TestGateway;
  adminKey: string;
  oldKeyId: string;
  handle: RotationHandle;
  stop(): Promise<void>;
}

export interface RotationWorldOptions {
  clock?: Clock;
  env?: Record<string, string>;
  extraPlugins?: PluginSource[];
  /** Reuse these servers and this data directory's database (a restart, or a second instance). */
  servers?: NotificationServers;
  /** A data directory (master key file and database) shared with another gateway, kept after stop. */
  dataDirectory?: string;
  addKey?: boolean;
  /** The admin key printed by the first gateway on a shared database. */
  adminKey?: string;
}

export async function startRotationWorld(options: RotationWorldOptions = {}): Promise<RotationWorld> {
  const servers = await startNotificationServers([OLD_KEY, NEW_KEY], {}, options.servers);
  const { openai, receiver, smtp } = servers;
  const gateway = await startTestGateway({
    probes: false,
    clock: options.clock,
    fetch: routingFetch(receiver),
    resolve: testResolver,
    extraPlugins: options.extraPlugins,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_SMTP_URL: smtp.url(),
      KEYWAY_ALERTS_INTERVAL_MS: '40',
      KEYWAY_ALERTS_RETRY_BASE_MS: '5',
      // The tests run the job themselves (handle.tick) on their clock; the timer stays out of the way.
      KEYWAY_ROTATION_INTERVAL_MS: '3600000',
      ...(options.dataDirectory === undefined
        ? {}
        : { KEYWAY_DATA_DIR: options.dataDirectory, KEYWAY_DATABASE_URL: `file:${options.dataDirectory}/keyway.db` }),
      ...options.env,
    },
  });
  const adminKey = gateway.defaultAdminKey || (options.adminKey ?? '');
  let oldKeyId = '';
  if (options.addKey !== false) {
    const [stored] = await addProviderKeys(gateway, [{ name: 'openai', api_key: OLD_KEY }], adminKey);
    oldKeyId = String(stored?.key_id);
  }
  const handle = rotationHandleOf(gateway.runtime.services);
  if (handle === undefined) throw new Error('the rotation plugin is not loaded');
  return {
    gateway,
    openai,
    receiver,
    smtp,
    adminKey,
    oldKeyId,
    handle,
    async stop() {
      await gateway.stop();
      if (options.servers === undefined) await stopNotificationServers(servers);
    },
  };
}

export async function rotate(world: Pick<RotationWorld, 'gateway' | 'adminKey'>, body: Record<string, unknown>): Promise<Response> {
  return call(world.gateway, 'POST', '/v1/providers/keys/rotate', { provider: 'openai', new_api_key: NEW_KEY, ...body }, { key: world.adminKey });
}

export async function rotateOk(world: Pick<RotationWorld, 'gateway' | 'adminKey'>, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await rotate(world, body);
  const answer = (await response.json()) as Record<string, unknown>;
  expect({ status: response.status, answer }).toMatchObject({ status: 201 });
  return answer;
}

/** The upstream key each inference request the simulator saw was sent with: 'old', 'new' or 'other'. */
export function servedKeys(openai: SimulatorHandle): Array<'old' | 'new' | 'other'> {
  return openai.inferenceRequests().map((request) => {
    const authorization = request.headers.authorization ?? '';
    return authorization === `Bearer ${OLD_KEY}` ? 'old' : authorization === `Bearer ${NEW_KEY}` ? 'new' : 'other';
  });
}

export function chatBody(content = 'Hello'): Record<string, unknown> {
  return { model: 'gpt-4o', messages: [{ role: 'user', content }] };
}

/** Everything a canary must never appear in: log lines, and the database files' bytes. */
export async function expectNoCanary(world: Pick<RotationWorld, 'gateway'>, extra: string[] = []): Promise<void> {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const texts = [world.gateway.output.join('\n'), ...extra];
  for (const file of readdirSync(world.gateway.dataDirectory)) {
    try {
      texts.push(readFileSync(join(world.gateway.dataDirectory, file)).toString('latin1'));
    } catch {
      // a directory or a file gone meanwhile
    }
  }
  for (const canary of CANARIES) for (const text of texts) expect(text.includes(canary)).toBe(false);
}
