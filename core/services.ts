// Builds the `services` object every plugin receives in `setup`. The parts backed by the running
// gateway (store, counters, snapshot, inference, auth, alerts) are bound once the runtime has built
// them; reading one earlier (inside `setup` itself) is a plugin bug and says so.

import { descriptorFromError, ERROR_TABLE, KeywayError } from './errors.ts';
import { fieldName, peekBodyText, readBodyText, readJson, readOptionalJson, validateBody } from './http/kit/body.ts';
import { json, requestIdOf } from './http/kit/respond.ts';
import { recordChange } from './http/kit/audit-trail.ts';
import { requestUrl } from './http/kit/request-url.ts';
import type { Logger } from './logger.ts';
import { redactSecrets } from './logger.ts';
import type {
  AlertService,
  AuthService,
  OutboundService,
  Clock,
  CryptoInfo,
  InferenceService,
  PricingService,
  ProviderKit,
  Services,
  ProviderHealthService,
  ProviderKeyService,
  SecretSealer,
  ShutdownSignals,
  SnapshotService,
  UsageQueueView,
} from './spec/services.ts';
import { generateGatewayKey, hashGatewayKey, maskKey, randomId } from './credentials/secrets.ts';
import type { ClusterBus, WorkerSiblings } from './spec/cluster.ts';
import type { Counters } from './spec/counters.ts';
import type { KeySourceRegistry } from './spec/key-source.ts';
import type { Store } from './spec/store.ts';
import * as providerKit from './wire/provider-kit.ts';
import * as sse from './wire/sse.ts';

export interface RuntimeServices {
  store: Store;
  counters: Counters;
  cluster: ClusterBus;
  snapshot: SnapshotService;
  inference: InferenceService;
  auth: AuthService;
  outbound: OutboundService;
  alerts: AlertService;
  pricing: PricingService;
  usageQueue: UsageQueueView;
  crypto: CryptoInfo;
  secrets: SecretSealer;
  providerHealth: ProviderHealthService;
  keySources: KeySourceRegistry;
  providerKeys: ProviderKeyService;
}

export interface ServiceBase {
  logger: Logger;
  fetch: typeof fetch;
  env: Readonly<Record<string, string | undefined>>;
  dataDirectory: string;
  clock: Clock;
  maxBodyBytes: number;
  /** How deeply request bodies may nest; the default when absent. */
  maxJsonDepth?: number;
  /** How long a request body may take to arrive in full; the default when absent. */
  bodyTimeoutMs?: number;
  /** The other workers of this instance (KEYWAY_WORKERS > 1); undefined in a process alone. */
  siblings?: WorkerSiblings;
  /** The shutdown drain's signals (core/lifecycle/drain.ts); absent outside a gateway: never aborted. */
  shutdown?: ShutdownSignals;
}

export const PROVIDER_KIT: ProviderKit = {
  postUpstream: providerKit.postUpstream,
  getUpstreamJson: providerKit.getUpstreamJson,
  listedModel: providerKit.listedModel,
  readJsonBody: providerKit.readJsonBody,
  readJsonBodyWithText: providerKit.readJsonBodyWithText,
  upstreamFailure: providerKit.upstreamFailure,
  networkFailure: providerKit.networkFailure,
  reasonFromStatus: providerKit.reasonFromStatus,
  parseRetryAfter: providerKit.parseRetryAfter,
  readNumberHeader: providerKit.readNumberHeader,
  recordUpstreamInfo: providerKit.recordUpstreamInfo,
  resolveBaseUrl: providerKit.resolveBaseUrl,
  parseDataUrl: providerKit.parseDataUrl,
  parseToolArguments: providerKit.parseToolArguments,
  parseJsonOrUndefined: providerKit.parseJsonOrUndefined,
  bodySummary: providerKit.bodySummary,
  readSseEvents: sse.readSseEvents,
  SseParser: sse.SseParser,
  encodeSseData: sse.encodeSseData,
  encodeSseEvent: sse.encodeSseEvent,
  SSE_DONE: sse.SSE_DONE,
  SSE_HEADERS: sse.SSE_HEADERS,
};

function notYet(name: string): never {
  throw new Error(`services.${name} is available once the gateway has started (in routes, hooks and jobs), not during plugin setup`);
}

/** The services object, and the function that binds the running gateway's parts into it. */
export function createServices(base: ServiceBase): {
  services: Services;
  bind(parts: RuntimeServices): void;
  /**
   * Binds `secrets` alone, as soon as the crypto backends are loaded: a snapshot section opens sealed
   * values in its first load (alert targets), which runs before the other parts exist.
   */
  bindSecrets(secrets: SecretSealer): void;
} {
  let bound: RuntimeServices | undefined;
  let earlySecrets: SecretSealer | undefined;
  const part = <Name extends keyof RuntimeServices>(name: Name): RuntimeServices[Name] => (bound === undefined ? notYet(name) : bound[name]);
  const services: Services = {
    logger: base.logger,
    fetch: base.fetch,
    env: base.env,
    dataDirectory: base.dataDirectory,
    clock: base.clock,
    shutdown: base.shutdown ?? { draining: new AbortController().signal, ended: new AbortController().signal },
    ...(base.siblings === undefined ? {} : { siblings: base.siblings }),
    errors: {
      table: ERROR_TABLE,
      KeywayError,
      create: (code, values, options) => new KeywayError(code, values, options),
      descriptorOf: descriptorFromError,
      redact: redactSecrets,
    },
    providerKit: PROVIDER_KIT,
    http: {
      readJson: (request) => readJson(request, base),
      readOptionalJson: (request) => readOptionalJson(request, base),
      readText: (request) => readBodyText(request, base),
      peekText: (request) => peekBodyText(request, base),
      validateBody,
      json,
      requestIdOf,
      fieldName,
      requestUrl,
      recordChange,
    },
    get store() {
      return part('store');
    },
    get counters() {
      return part('counters');
    },
    get cluster() {
      return part('cluster');
    },
    get snapshot() {
      return part('snapshot');
    },
    get inference() {
      return part('inference');
    },
    get auth() {
      return part('auth');
    },
    get outbound() {
      return part('outbound');
    },
    get alerts() {
      return part('alerts');
    },
    get pricing() {
      return part('pricing');
    },
    get usageQueue() {
      return part('usageQueue');
    },
    get crypto() {
      return part('crypto');
    },
    get secrets() {
      return earlySecrets ?? part('secrets');
    },
    get providerHealth() {
      return part('providerHealth');
    },
    get keySources() {
      return part('keySources');
    },
    get providerKeys() {
      return part('providerKeys');
    },
    credentials: { generateGatewayKey, hashGatewayKey, maskKey, randomId },
  };
  return {
    services,
    bind(parts) {
      bound = parts;
    },
    bindSecrets(secrets) {
      earlySecrets = secrets;
    },
  };
}

/** Services for a plugin set up outside a gateway (unit tests, benches): the runtime parts throw. */
export function standaloneServices(base: Partial<ServiceBase> & Pick<ServiceBase, 'logger'>): Services {
  return createServices({
    fetch: globalThis.fetch,
    env: {},
    dataDirectory: '.',
    clock: { now: () => Date.now() },
    maxBodyBytes: 16 * 1024 * 1024,
    ...base,
  }).services;
}
