// The routing suites' gateway and simulators: the shared test gateway with an injected clock and
// probes off (health tests move time and run probes by hand), one simulator per provider for the
// account's keys and a separate fleet for the platform keys, so platform-key calls can be counted.

import { afterAll, beforeAll, beforeEach } from 'bun:test';
import type { Clock } from '../../core/clock.ts';
import { probeDueKeys } from '../../core/routing/health/probes.ts';
import { OPERATOR_KEY, call, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';

export { OPERATOR_KEY, call, readSse };

export const PROVIDERS = ['openai', 'anthropic', 'google', 'cohere', 'perplexity'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type RoutingGateway = TestGateway;

export interface RoutingGatewayOptions {
  env?: Record<string, string>;
  clock?: Clock;
  /** Background probes; off by default so tests decide when a probe runs. */
  probes?: boolean;
  /** `debug` logs every request's attempts with their durations. */
  logLevel?: string;
}

/**
 * The common test gateway with the routing tests' defaults: probes off, info-level logs, and loopback
 * allowed as an upstream (platform keys reach their simulator fleets through `settings.base_url`).
 */
export function startRoutingGateway(options: RoutingGatewayOptions = {}): Promise<RoutingGateway> {
  return startTestGateway({
    env: { KEYWAY_UPSTREAM_ALLOW: '127.0.0.1', ...options.env },
    clock: options.clock,
    probes: options.probes ?? false,
    logLevel: options.logLevel ?? 'info',
  });
}

/** Runs the probes that are due now, as the background ticker would. */
export function probeNow(gateway: RoutingGateway): Promise<number> {
  const { snapshots, models, health } = gateway.runtime;
  return probeDueKeys(snapshots, models, health);
}

export interface SimulatorFleet {
  simulators: Record<ProviderName, SimulatorHandle>;
  /** The upstream key each simulator accepts. */
  keys: Record<ProviderName, string>;
  /** The base URL Keyway needs for each simulator (OpenAI's includes `/v1`). */
  baseUrls: Record<ProviderName, string>;
  /** KEYWAY_<PROVIDER>_BASE_URL for every simulator of the fleet. */
  environment(): Record<string, string>;
  /** Inference requests each simulator received since the last reset. */
  upstreamCounts(): Record<ProviderName, number>;
  reset(): void;
  stop(): Promise<void>;
}

/** One simulator per provider, each accepting `<label>-<provider>-key`. */
export function startFleet(label: string): SimulatorFleet {
  const keys = Object.fromEntries(PROVIDERS.map((provider) => [provider, `${label}-${provider}-key`])) as Record<ProviderName, string>;
  const simulators: Record<ProviderName, SimulatorHandle> = {
    openai: startOpenAISimulator({ apiKeys: [keys.openai] }),
    anthropic: startAnthropicSimulator({ apiKeys: [keys.anthropic] }),
    google: startGoogleSimulator({ apiKeys: [keys.google] }),
    cohere: startCohereSimulator({ apiKeys: [keys.cohere] }),
    perplexity: startPerplexitySimulator({ apiKeys: [keys.perplexity] }),
  };
  const baseUrls = Object.fromEntries(
    PROVIDERS.map((provider) => [provider, provider === 'openai' ? `${simulators.openai.url}/v1` : simulators[provider].url]),
  ) as Record<ProviderName, string>;
  return {
    simulators,
    keys,
    baseUrls,
    environment: () => Object.fromEntries(PROVIDERS.map((provider) => [`KEYWAY_${provider.toUpperCase()}_BASE_URL`, baseUrls[provider]])),
    upstreamCounts: () =>
      Object.fromEntries(PROVIDERS.map((provider) => [provider, simulators[provider].inferenceRequests().length])) as Record<ProviderName, number>,
    reset: () => {
      for (const simulator of Object.values(simulators)) simulator.reset();
    },
    stop: async () => {
      await Promise.all(Object.values(simulators).map((simulator) => simulator.stop()));
    },
  };
}

export const NO_ATTEMPTS: Readonly<Record<ProviderName, number>> = { openai: 0, anthropic: 0, google: 0, cohere: 0, perplexity: 0 };

/** Expected upstream counts: zero for every provider not named. */
export function attemptsOf(counts: Partial<Record<ProviderName, number>>): Record<ProviderName, number> {
  return { ...NO_ATTEMPTS, ...counts };
}

interface StoredKey {
  key_id: string;
  name: string;
}

/** Stores keys through the API (account: admin or operator key; platform: `/v1/platform/keys`). */
export async function storeKeys(
  gateway: RoutingGateway,
  path: '/v1/providers/keys' | '/v1/platform/keys',
  providers: Array<Record<string, unknown>>,
  key?: string,
): Promise<StoredKey[]> {
  const response = await call(gateway, 'POST', path, { providers }, { key });
  const body = (await response.json()) as { providers?: StoredKey[] };
  if (response.status !== 201) throw new Error(`storing keys failed: ${response.status} ${JSON.stringify(body)}`);
  return body.providers ?? [];
}

/** One account key per named provider, pointing at the fleet; answers provider → key id. */
export async function addAccountKeys(
  gateway: RoutingGateway,
  fleet: SimulatorFleet,
  providers: readonly ProviderName[],
  adminKey?: string,
): Promise<Record<string, string>> {
  const stored = await storeKeys(
    gateway,
    '/v1/providers/keys',
    providers.map((name) => ({ name, api_key: fleet.keys[name] })),
    adminKey,
  );
  return Object.fromEntries(stored.map((key) => [key.name, key.key_id]));
}

/** One platform key per named provider, on its own fleet through the key's `settings.base_url`. */
export async function addPlatformKeys(gateway: RoutingGateway, fleet: SimulatorFleet, providers: readonly ProviderName[]): Promise<Record<string, string>> {
  const stored = await storeKeys(
    gateway,
    '/v1/platform/keys',
    providers.map((name) => ({ name, api_key: fleet.keys[name], settings: { base_url: fleet.baseUrls[name] } })),
  );
  return Object.fromEntries(stored.map((key) => [key.name, key.key_id]));
}

/** A new account (operator call); answers its first admin key. Accounts keep tests' health apart. */
export async function createAccount(gateway: RoutingGateway, name: string): Promise<string> {
  const response = await call(gateway, 'POST', '/v1/accounts', { name });
  const body = (await response.json()) as { admin_key?: { api_key?: string } };
  const key = body.admin_key?.api_key;
  if (response.status !== 201 || key === undefined) throw new Error(`creating account failed: ${response.status} ${JSON.stringify(body)}`);
  return key;
}

export const USER_MESSAGE = [{ role: 'user', content: 'Analyze this data...' }];

/** A chat request as the seed sends it (`X-Use-BYOK: true`); an empty header value leaves that header out. */
export function chat(
  gateway: Pick<RoutingGateway, 'url'>,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  key?: string,
): Promise<Response> {
  const sent = Object.fromEntries(Object.entries({ 'X-Use-BYOK': 'true', ...headers }).filter(([, value]) => value !== ''));
  return call(gateway, 'POST', '/v1/chat/completions', { messages: USER_MESSAGE, ...body }, { headers: sent, key });
}

/** The routing headers of an answer, for one-line assertions. */
export function servedBy(response: Response): {
  provider: string | null;
  keyId: string | null;
  byok: string | null;
  model: string | null;
  fallbackAttempts: string | null;
} {
  return {
    provider: response.headers.get('x-provider-used'),
    keyId: response.headers.get('x-key-id'),
    byok: response.headers.get('x-byok-used'),
    model: response.headers.get('x-model-used'),
    fallbackAttempts: response.headers.get('x-fallback-attempts'),
  };
}

export interface ErrorBody {
  error: {
    message: string;
    type: string;
    code: string;
    param: string | null;
    attempts?: Array<{ provider: string; model: string; key_id: string; owner: string; reason: string; status: number | null }>;
    [extra: string]: unknown;
  };
}

export async function errorOf(response: Response): Promise<ErrorBody['error']> {
  return ((await response.json()) as ErrorBody).error;
}

/** What the official SDK's error says of a refusal: each test file reads the fields it checks. */
export interface SdkFailure {
  status?: number;
  code?: string | null;
  param?: string | null;
  message: string;
  error?: Record<string, unknown>;
  headers?: Headers;
}

/** The SDK's rejection, captured (its promises are thenables, so `.rejects` does not serve). */
export async function sdkFailureOf(promise: Promise<unknown>): Promise<SdkFailure> {
  try {
    await promise;
  } catch (error) {
    return error as SdkFailure;
  }
  throw new Error('the request succeeded');
}

/** A test file's gateway and simulators: started before its tests, stopped after, the simulators reset before each. */
export interface RoutingSuite {
  readonly gateway: RoutingGateway;
  readonly fleet: SimulatorFleet;
}

/** Registers the file's lifecycle hooks; read `gateway` and `fleet` inside tests and later hooks. */
export function routingSuite(label: string, options: Omit<RoutingGatewayOptions, 'env'> = {}): RoutingSuite {
  const suite = {} as { gateway: RoutingGateway; fleet: SimulatorFleet };
  beforeAll(async () => {
    suite.fleet = startFleet(label);
    suite.gateway = await startRoutingGateway({ ...options, env: suite.fleet.environment() });
  });
  afterAll(async () => {
    await suite.gateway.stop();
    await suite.fleet.stop();
  });
  beforeEach(() => suite.fleet.reset());
  return suite;
}
