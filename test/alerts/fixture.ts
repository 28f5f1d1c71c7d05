// A gateway for the alert tests: the OpenAI simulator as the default account's BYOK key, a local
// HTTP receiver for https:// webhook and Slack targets (through the injectable fetch), a local SMTP
// server in KEYWAY_SMTP_URL, a fast alert job and fast retries.

import { expect } from 'bun:test';
import { alertsHandleOf } from '../../plugins/alerts/index.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { routingFetch, testResolver, startReceiver, type Receiver } from './receivers.ts';
import { type SmtpServerOptions, startSmtpServer, type TestSmtpServer } from './smtp-server.ts';
import type { StoredEvent } from '../../plugins/alerts/store.ts';
import type { ClusterBus } from '../../core/spec/cluster.ts';

export const OPENAI_CANARY_KEY = 'sk-proj-AlertsCanaryOpenAIKey0000000000000001';
export const SMTP_PASSWORD = 'smtp-secret-pass-42';
export const DELIVERY_ATTEMPTS = 3;

/** The servers a gateway notifies through (also the rotation tests'): an upstream, webhook receivers, SMTP. */
export interface NotificationServers {
  openai: SimulatorHandle;
  receiver: Receiver;
  smtp: TestSmtpServer;
}

/** Starts what `reuse` does not already give. */
export async function startNotificationServers(apiKeys: string[], smtp: SmtpServerOptions = {}, reuse?: NotificationServers): Promise<NotificationServers> {
  return reuse ?? { openai: startOpenAISimulator({ apiKeys }), receiver: startReceiver(), smtp: await startSmtpServer(smtp) };
}

export async function stopNotificationServers(servers: NotificationServers): Promise<void> {
  await servers.openai.stop();
  await servers.receiver.stop();
  await servers.smtp.stop();
}

export interface AlertsGateway extends NotificationServers {
  gateway: TestGateway;
  adminKey: string;
  stop(): Promise<void>;
}

export interface AlertsGatewayOptions {
  env?: Record<string, string>;
  /** Reuse these servers (a restarted gateway). */
  servers?: NotificationServers;
  addKey?: boolean;
  /** The resolver webhook host names are checked with (default: the test hosts answer a public address). */
  resolve?: (host: string) => Promise<string[]>;
  /** A member of a LocalClusterHub: several gateways as the instances of one cluster. */
  cluster?: ClusterBus;
}

export async function startAlertsGateway(options: AlertsGatewayOptions = {}): Promise<AlertsGateway> {
  const servers = await startNotificationServers([OPENAI_CANARY_KEY], { credentials: { username: 'keyway', password: SMTP_PASSWORD } }, options.servers);
  const { openai, receiver, smtp } = servers;
  const gateway = await startTestGateway({
    probes: false,
    fetch: routingFetch(receiver),
    resolve: options.resolve ?? testResolver,
    cluster: options.cluster,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_SMTP_URL: smtp.url(`keyway:${SMTP_PASSWORD}`),
      KEYWAY_ALERTS_INTERVAL_MS: '40',
      KEYWAY_ALERTS_RETRY_BASE_MS: '5',
      KEYWAY_ALERTS_DELIVERY_ATTEMPTS: String(DELIVERY_ATTEMPTS),
      ...options.env,
    },
  });
  const adminKey = gateway.defaultAdminKey;
  if (options.addKey !== false) await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_CANARY_KEY }], adminKey);
  return {
    gateway,
    openai,
    receiver,
    smtp,
    adminKey,
    async stop() {
      await gateway.stop();
      if (options.servers === undefined) await stopNotificationServers(servers);
    },
  };
}

/** An event as `GET /v1/alerts/events` answers it. */
/**
 * The same database and notification servers under a new process (`first` already stopped): the
 * restart the delivery and trigger suites check state across. `stops` gets what stops the new gateway
 * and, after it, the servers the two shared.
 */
export async function restartAlertsGateway(first: AlertsGateway, env: Record<string, string>, stops: Array<() => Promise<void>>): Promise<AlertsGateway> {
  const second = await startAlertsGateway({ env, servers: first, addKey: false });
  stops.push(async () => {
    await second.stop();
    await stopNotificationServers(first);
  });
  return second;
}

export type EventView = StoredEvent;

export async function events(gateway: Pick<TestGateway, 'url'>, key: string, query = ''): Promise<EventView[]> {
  const response = await call(gateway, 'GET', `/v1/alerts/events${query}`, undefined, { key });
  expect(response.status).toBe(200);
  return ((await response.json()) as { events: EventView[] }).events;
}

/** Polls until `find` returns something (the alert job runs every 40 ms), or fails after 5 s. */
export async function eventually<T>(what: string, find: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** An event of this alert whose deliveries are all final (delivered or failed after its retries). */
export function settledEvent(setup: AlertsGateway, alertId: string): Promise<EventView> {
  return eventually(`a settled event of ${alertId}`, async () => {
    const found = (await events(setup.gateway, setup.adminKey, `?alert_id=${alertId}`))[0];
    return found !== undefined && found.status !== 'delivering' ? found : undefined;
  });
}

export async function createAlerts(setup: AlertsGateway, alerts: unknown[], key = setup.adminKey): Promise<Array<Record<string, unknown>>> {
  const response = await call(setup.gateway, 'POST', '/v1/alerts', { alerts }, { key });
  const body = (await response.json()) as { alerts: Array<Record<string, unknown>> };
  expect(response.status).toBe(201);
  return body.alerts;
}

export async function chat(setup: AlertsGateway, key = setup.adminKey, headers: Record<string, string> = {}): Promise<Response> {
  return call(setup.gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello there' }] }, { key, headers });
}

/** Runs the alert job now and waits for every delivery it started. */
export async function evaluateNow(setup: Pick<AlertsGateway, 'gateway'>): Promise<void> {
  const handle = alertsHandleOf(setup.gateway.runtime.services);
  if (handle === undefined) throw new Error('the alerts plugin is not loaded');
  await setup.gateway.runtime.usage.flush();
  await handle.evaluator.run();
  await handle.dispatcher.idle();
}
