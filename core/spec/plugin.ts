// The plugin API: how every extension is declared, what it may contribute, and (re-exported here)
// the contract of each plugin kind. Plugins import this file; it is types plus `definePlugin`.

import type { Static, TSchema } from '@sinclair/typebox';
import type { AlertChannel } from './alert-channel.ts';
import type { CountersDriver } from './counters.ts';
import type { CiphertextHolder, CryptoBackend } from './crypto-backend.ts';
import type { Dialect } from './dialect.ts';
import type { Hooks } from './lifecycle.ts';
import type { Principal, PrincipalRole } from './principal.ts';
import type { ProviderAdapter } from './provider.ts';
import type { Services } from './services.ts';
import type { PluginMigrations, Store, StoreDriver } from './store.ts';
import type { RoutingStrategy } from './strategy.ts';
import type { Logger } from '../logger.ts';

/** Bumped when a plugin written against an older core would break. */
export const PLUGIN_API_VERSION = 1;

export const PLUGIN_KINDS = ['provider', 'strategy', 'policy', 'alert-channel', 'crypto-backend', 'store', 'counters', 'dialect', 'extension'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

type MaybePromise<T> = T | Promise<T>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteInput {
  request: Request;
  /** Path parameters (`/v1/things/:id` → `{ id }`). */
  params: Record<string, string>;
  /** The caller, when the route declares a `role` (the core authenticated it). */
  principal: Principal | undefined;
  /** The client's address as the socket saw it; computed only when read. */
  clientAddress(): string | undefined;
}

/** An HTTP route a plugin adds. The body is never pre-parsed: read it with `services.http.readJson`. */
export interface RouteDefinition {
  method: HttpMethod;
  /** Elysia path syntax: `/v1/messages`, `/v1/teams/:id`. */
  path: string;
  /**
   * The least role that may call it: the core authenticates and checks it first. Omit it for routes
   * that authenticate themselves (inference routes run the lifecycle, which does).
   */
  role?: PrincipalRole;
  /** One line for the OpenAPI document. */
  summary?: string;
  /** The JSON request body, for the OpenAPI document only: the core never validates against it. */
  body?: TSchema;
  /** The JSON answer on success, for the OpenAPI document only. */
  response?: TSchema;
  handle(input: RouteInput): MaybePromise<Response>;
}

/** Background work the runtime starts after the server listens and stops before it closes. */
export interface JobDefinition {
  name: string;
  intervalMs: number;
  run(): MaybePromise<void>;
}

/** Data a plugin keeps in the in-memory snapshot, reloaded on every configuration change. */
export interface SnapshotSection {
  name: string;
  load(store: Store): Promise<unknown>;
}

export interface PluginSetupContext<Config> {
  config: Config;
  logger: Logger;
  /** The fetch to use for outbound calls; tests inject their own. */
  fetch: typeof fetch;
  env: Readonly<Record<string, string | undefined>>;
  dataDirectory: string;
  /** Shared services; the ones backed by the running gateway are usable from routes, hooks and jobs. */
  services: Services;
}

export interface PluginContributions {
  provider?: ProviderAdapter;
  strategy?: RoutingStrategy;
  cryptoBackend?: CryptoBackend;
  alertChannel?: AlertChannel;
  store?: StoreDriver;
  counters?: CountersDriver;
  dialect?: Dialect;
  hooks?: Hooks;
  routes?: RouteDefinition[];
  migrations?: PluginMigrations;
  jobs?: JobDefinition[];
  snapshot?: SnapshotSection[];
  /** Tables or settings where this plugin keeps ciphertexts of the crypto backend: master-key rotation re-wraps them. */
  ciphertextHolders?: CiphertextHolder[];
}

export interface PluginDefinition<Schema extends TSchema = TSchema> {
  name: string;
  version: string;
  apiVersion: number;
  kind: PluginKind;
  description?: string;
  /** Names of plugins that must be loaded, and whose hooks run, before this one. */
  dependencies?: string[];
  configSchema?: Schema;
  hooks?: Hooks;
  setup?(context: PluginSetupContext<Static<Schema>>): MaybePromise<PluginContributions | void>;
}

/** Declares a plugin. An identity at run time: the core validates the declaration when it loads. */
export function definePlugin<Schema extends TSchema>(definition: PluginDefinition<Schema>): PluginDefinition<Schema> {
  return definition;
}

export type { Static };
export type { AlertChannel, AlertDelivery, AlertEvent } from './alert-channel.ts';
export type { Counters, CountersDriver, Reservation } from './counters.ts';
export type { CiphertextHolder, CiphertextReplacement, CryptoBackend, HeldCiphertext, RewrapResult, SealedItem } from './crypto-backend.ts';
export type { ChatOperation, Dialect, InboundOperation, ParseContext, StreamEncoder, UnaryAnswer, UnaryOperation } from './dialect.ts';
export type { AttemptRecord, Endpoint, HookStage, Hooks, RequestContext, RequestOutcome, ServedBy } from './lifecycle.ts';
export type { Principal, PrincipalRole } from './principal.ts';
export type {
  CallContext,
  EmbeddingsRequest,
  EmbeddingsResult,
  KeyOwner,
  ProviderAdapter,
  ProviderModelClasses,
  ProviderCredential,
  ProviderKeyRecord,
  ProviderKeySettings,
  UpstreamInfo,
} from './provider.ts';
export type {
  AlertService,
  CredentialKit,
  PricingService,
  AuthService,
  Clock,
  ErrorKit,
  HttpKit,
  InferenceService,
  ProviderKit,
  Services,
  SnapshotService,
  SnapshotView,
} from './services.ts';
export type {
  AccountRecord,
  GatewayKeyRecord,
  Migration,
  MigrationReport,
  NewGatewayKey,
  NewProviderKey,
  PluginMigrations,
  Store,
  StoreDriver,
  StoredProviderKey,
  UsageRecord,
  UsageSummaryFilter,
  UsageSummaryRow,
} from './store.ts';
export type { ModelResolution, ResolvedKeys, RouteCandidate, RoutePlanInput, RoutingStrategy } from './strategy.ts';
export type { ChatRequest, ChatResult, StreamPart, Usage } from './vocabulary.ts';
