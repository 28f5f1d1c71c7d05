// The plugin API: how every extension is declared, what it may contribute, and (re-exported here)
// the contract of each plugin kind. Plugins import this file; it is types plus `definePlugin`.

import type { Static, TSchema } from '@sinclair/typebox';
import type { AlertChannel } from './alert-channel.ts';
import type { ClusterDriver } from './cluster.ts';
import type { CountersDriver } from './counters.ts';
import type { CiphertextHolder, CryptoBackend } from './crypto-backend.ts';
import type { Dialect } from './dialect.ts';
import type { Hooks } from './lifecycle.ts';
import type { Principal, PrincipalRole } from './principal.ts';
import type { ProviderAdapter } from './provider.ts';
import type { Services } from './services.ts';
import type { ErrorDescriptor } from './vocabulary.ts';
import type { WebSocketHandler } from './websocket.ts';
import type { PluginMigrations, PluginUsageRollups, Store, StoreDriver } from './store.ts';
import type { PluginUsageFolds } from './usage-fold.ts';
import type { RoutingStrategy } from './strategy.ts';
import type { Logger } from '../logger.ts';
import type { KeyDecryptionObserver, KeySource } from './key-source.ts';

/** Bumped when a plugin written against an older core would break. */
export const PLUGIN_API_VERSION = 1;

export const PLUGIN_KINDS = [
  'provider',
  'strategy',
  'policy',
  'alert-channel',
  'crypto-backend',
  'store',
  'counters',
  'dialect',
  'key-source',
  'extension',
] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

type MaybePromise<T> = T | Promise<T>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteInput {
  request: Request;
  /** Path parameters (`/v1/things/:id` → `{ id }`). */
  params: Record<string, string>;
  /** The caller, when the route declares a `role` (the core authenticated it). */
  principal: Principal | undefined;
  /**
   * The client's address as the socket saw it (or a trusted proxy's `X-Forwarded-For`); computed only
   * when read. On a WebSocket upgrade it is resolved before `websocket` is called and the same answer
   * stays valid for the socket's life (the server cannot tell it once the socket is upgraded).
   */
  clientAddress(): string | undefined;
}

/** An HTTP route a plugin adds. The body is never pre-parsed: read it with `services.http.readJson`. */
export interface RouteDefinition {
  method: HttpMethod;
  /** Elysia path syntax: `/v1/messages`, `/v1/teams/:id`. */
  path: string;
  /**
   * How an error the core raises for this path outside the handler (a wrong method: 405) is written,
   * for a route that answers in another dialect's error shape (Anthropic's on `/v1/messages`). Without
   * it the spec's OpenAI-shaped body is used. The core adds `X-Request-Id` and the error's own headers.
   */
  refusal?: (descriptor: ErrorDescriptor, requestId: string) => Response;
  /**
   * The least role that may call it: the core authenticates and checks it first. Omit it for routes
   * that authenticate themselves (inference routes run the lifecycle, which does).
   */
  role?: PrincipalRole;
  /**
   * An `admin` route only: team member keys with the admin role may call it too, and the handler keeps
   * them to their own team (principal.teamId). Without it the core refuses them: an admin route acts
   * on the whole account.
   */
  teamKeys?: boolean;
  /**
   * Request headers this route's clients send beyond the ones the core reads: its dialect's own
   * (`anthropic-version`). With KEYWAY_CORS_ORIGINS set, a browser on a listed origin may send them
   * cross-origin, on every route (one SDK calls several: its models list too). Lower-case names.
   */
  corsRequestHeaders?: readonly string[];
  /**
   * A route with a `role` only: the body fields that legitimately hold a key, as paths with `[]` for
   * any array index (`admin_key`, `providers[].api_key`). Every other string of a body read with
   * `services.http.readJson`, and every field name, is refused (400 `invalid_field` naming the field,
   * never the value) when it holds a provider or gateway key: stored, it would come back in listings.
   */
  secretFields?: readonly string[];
  /**
   * A GET route with a `role` only: the query parameters it takes; the core refuses any other (400
   * `invalid_field`) before the handler runs. Default: none. `'any'` leaves them to the handler (an
   * OpenAI-compatible read, whose SDKs send parameters Keyway does not use).
   */
  query?: readonly string[] | 'any';
  /**
   * Of `query`, the parameters that may be given more than once (`group_by=provider&group_by=model`);
   * the core refuses any other given twice (400 `invalid_request` naming it), rather than read its
   * first value and drop the rest.
   */
  repeatableQuery?: readonly string[];
  /** One line for the OpenAPI document. */
  summary?: string;
  /**
   * The JSON request body the route takes, for the OpenAPI document; the core does not validate
   * against it (the handler does, with `services.http.validateBody`). A route with a `role` and no
   * `body` takes none: the core refuses a body that holds anything but `{}` (400 naming its first
   * field; `invalid_json`; 413 over the size limit) before the handler runs, so a body is never
   * dropped unread while the route acts.
   */
  body?: TSchema;
  /** The JSON answer on success, for the OpenAPI document only. */
  response?: TSchema;
  handle(input: RouteInput): MaybePromise<Response>;
  /**
   * GET routes only: accepts a WebSocket upgrade (`Upgrade: websocket`) on this path. Called with the
   * upgrade request, after the `role` check: a throw refuses the upgrade with the spec's HTTP error
   * (a 401 before any socket exists); the handler returned drives the socket. Requests without the
   * upgrade still go to `handle`.
   */
  websocket?(input: RouteInput): MaybePromise<WebSocketHandler>;
}

/** Background work the runtime starts after the server listens and stops before it closes. */
export interface JobDefinition {
  name: string;
  intervalMs: number;
  run(): MaybePromise<void>;
  /**
   * 'cluster' runs the job on one member of the cluster at a time, under a lease (rotations, alerts,
   * reconciliation: work on shared data that must happen once); 'instance' (the default) on every
   * process (flushing what this process queued).
   */
  scope?: 'instance' | 'cluster';
  /**
   * Optional: runs once at shutdown, after in-flight requests ended and before the store closes (write
   * what is queued). `deadline` (epoch milliseconds) is when the shutdown's drain time ends
   * (KEYWAY_DRAIN_TIMEOUT_MS after the stop began): work that would outlast it records what it has and
   * returns, so the shutdown stays within the orchestrator's grace period.
   */
  drain?(deadline: number): MaybePromise<void>;
}

/** Data a plugin keeps in the in-memory snapshot, reloaded on every configuration change. */
export interface SnapshotSection {
  name: string;
  /**
   * Reads the section through `store` only, and only reads: it is the view of `Store.readConsistent`
   * where the store offers one, so the section and the core's tables are one state of the database.
   * A read through another store handle (`services.store`) would escape that view.
   */
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

/**
 * A management action (a POST, PUT, PATCH or DELETE on a management route) as the core saw it: who,
 * from where, on what, with what result. `before` and `after` never hold a secret: the core strips
 * secret fields and key-shaped text before any observer sees them.
 */
export interface AdminAction {
  requestId: string;
  /** ISO 8601, from the gateway's clock. */
  occurredAt: string;
  actor: { keyId: string; role: PrincipalRole; accountId: string; teamId: string | undefined };
  /** The least role the route requires: an `operator` route acts on the platform (accounts, platform keys, prices), not on the actor's account. */
  routeRole: PrincipalRole;
  /**
   * The account the action acted on, when the route named one (`services.http.recordChange`'s
   * `accountId`: the operator's billing export of another account); undefined when it acted on the
   * actor's own account, or on the platform (an `operator` route).
   */
  accountId: string | undefined;
  clientIp: string | undefined;
  method: Exclude<HttpMethod, 'GET'>;
  /** The route's pattern: `/v1/teams/:id`. */
  route: string;
  /** What was acted on: the route's parameters, or what the route named with `services.http.recordChange`. */
  target: Record<string, string>;
  status: number;
  /** The state before, when the route recorded it; undefined otherwise. */
  before: unknown;
  /** The state after, when the route recorded it; otherwise the JSON answer (undefined for an empty one). */
  after: unknown;
}

/**
 * Called once per management action, after the route answered and before the answer is sent. A
 * returned promise is awaited before the answer goes out (the audit plugin writes the event then, so
 * the log holds it on every worker and instance as soon as the client has its answer); keep it short.
 * A throw or a rejection is logged and never reaches the client.
 */
export type AdminActionObserver = (action: AdminAction) => void | Promise<void>;

/**
 * Turns a browser session into the gateway key it was opened with, for management routes only: given a
 * request's headers (its cookie and an anti-CSRF header), the hash of that gateway key, or undefined. The
 * key itself is re-checked on every request, so revoking it ends the session too. It may throw a
 * KeywayError `invalid_api_key` with its own message to say why a session it knows is refused (the
 * dashboard's: a missing or wrong anti-CSRF header); the generic message asks for a bearer key.
 */
export type SessionCredentialResolver = (headers: Headers) => string | undefined;

/**
 * For a request whose session the resolvers did not know: a promise that settles true once the session
 * it names may be known here (another worker or instance opened it and the cluster bus is still on its
 * way), false when it did not arrive in time; undefined when there is nothing to wait for. A browser
 * signs in on one connection and may send its next request on another, to another worker.
 */
export type SessionArrival = (headers: Headers) => Promise<boolean> | undefined;

/**
 * Runs on every call once its key is recognised, before anything else about the call is judged (its
 * X-Team-ID, its role, its body, the policies' hooks): every route with a `role`, the core's and the
 * plugins', inference, GET /v1/models, GET /metrics, the dashboard's sign-in and a WebSocket upgrade
 * (the one order: `admit`, core/credentials/authenticate.ts). Throw a KeywayError to refuse the call.
 * The ip-allowlist policy refuses addresses outside a key's or its member team's `allowed_ips` here, so
 * a key bound to an office network cannot mint an unbound key, nor learn its role, from elsewhere.
 * `clientAddress` is computed only when read.
 */
export type ManagementGuard = (principal: Principal, clientAddress: () => string | undefined) => void;

/** Who lists the models: the authenticated key, and the request's headers (`X-Team-ID` among them). */
export interface ModelListCaller {
  principal: Principal;
  headers: Headers;
}

/** Whether the caller may call `model` on `provider`. */
export type ModelPredicate = (provider: string, model: string) => boolean;

/**
 * Narrows `GET /v1/models` to what the caller may call, so that listing and calling never disagree: a
 * policy that drops models or providers at inference answers the same rule here. Runs once per
 * listing; undefined means nothing to narrow (a caller without a team), and the listing pays nothing
 * more. Throw a KeywayError to refuse the listing (an `X-Team-ID` the key may not act for). Every
 * plugin's predicate must accept an entry for it to be listed.
 */
export type ModelFilter = (caller: ModelListCaller) => ModelPredicate | undefined;

/**
 * Keeps the account's maximum provider key age (the rotation plugin: a key older than it raises
 * `rotation_due`). `POST /v1/providers/keys` applies the seed's `encryption: {key_rotation: true,
 * rotation_days}` through it, so the block does what it asks rather than being only echoed.
 */
export interface KeyAgePolicy {
  /** Sets the account's maximum key age in days, keeping the rest of its policy (the notification address). */
  setMaxKeyAgeDays(accountId: string, days: number): Promise<void>;
  /** The route that reads and changes the policy, named in the answer: `PUT /v1/providers/keys/rotation-policy`. */
  route: string;
}

export interface PluginContributions {
  provider?: ProviderAdapter;
  strategy?: RoutingStrategy;
  cryptoBackend?: CryptoBackend;
  alertChannel?: AlertChannel;
  keySource?: KeySource;
  store?: StoreDriver;
  counters?: CountersDriver;
  /** Messages and leases across instances (core/spec/cluster.ts), opened for KEYWAY_REDIS_URL like counters. */
  cluster?: ClusterDriver;
  dialect?: Dialect;
  hooks?: Hooks;
  routes?: RouteDefinition[];
  migrations?: PluginMigrations;
  /** Statements run with every usage batch, by store dialect (core/spec/store.ts, PluginUsageRollups). */
  usageRollups?: PluginUsageRollups;
  /**
   * Roll-up tables declared as data (core/spec/usage-fold.ts), summed by the store from each batch's
   * rows. A store that takes folds keeps them instead of this plugin's `usageRollups`; the SQL stays for
   * a store that does not.
   */
  usageFolds?: PluginUsageFolds;
  jobs?: JobDefinition[];
  snapshot?: SnapshotSection[];
  /** Sees every management action (docs/audit.md). */
  adminActions?: AdminActionObserver;
  /** Tables or settings where this plugin keeps ciphertexts of the crypto backend: master-key rotation re-wraps them. */
  ciphertextHolders?: CiphertextHolder[];
  /** Sees every decryption of a provider key (key access logs, docs/key-lifecycle.md). */
  keyDecryptions?: KeyDecryptionObserver;
  /** Lets a management request without a bearer key authenticate by a session (never an inference request). */
  sessionCredentials?: SessionCredentialResolver;
  /** Waits, briefly, for a session another member of the cluster opened (see SessionArrival). */
  sessionArrivals?: SessionArrival;
  /** Checks every call once its key is recognised, before anything else (see ManagementGuard). */
  managementGuard?: ManagementGuard;
  /** Narrows the models `GET /v1/models` lists to what the caller may call (see ModelFilter). */
  modelFilter?: ModelFilter;
  /** The account's maximum key age, which the seed's `encryption.rotation_days` sets (see KeyAgePolicy). At most one plugin. */
  keyAgePolicy?: KeyAgePolicy;
}

/**
 * An environment variable a plugin reads (from the process environment or the KEYWAY_CONFIG file). A
 * name ending in `*` declares every name with that prefix (`KEYWAY_KEY_*`).
 */
export interface EnvironmentVariable {
  name: string;
  /** One line for operators: what the variable sets. */
  description?: string;
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
  /**
   * Every `KEYWAY_…` variable the plugin reads, so that a misspelt one is refused in the KEYWAY_CONFIG
   * file and reported in the environment. An empty list says it reads none; a third-party plugin that
   * declares nothing turns those refusals into warnings, since it may read any name.
   */
  environment?: ReadonlyArray<EnvironmentVariable | string>;
  /** The same as `environment`, shorter; declare one or the other. */
  env?: ReadonlyArray<EnvironmentVariable | string>;
  hooks?: Hooks;
  setup?(context: PluginSetupContext<Static<Schema>>): MaybePromise<PluginContributions | void>;
}

/** Declares a plugin. An identity at run time: the core validates the declaration when it loads. */
export function definePlugin<Schema extends TSchema>(definition: PluginDefinition<Schema>): PluginDefinition<Schema> {
  return definition;
}

export type { Static };
export type { AlertChannel, AlertDelivery, AlertEvent } from './alert-channel.ts';
export type { ClusterBus, ClusterDriver } from './cluster.ts';
export type { Counters, CountersDriver, Reservation } from './counters.ts';
export type {
  CiphertextHolder,
  CiphertextReplacement,
  CryptoBackend,
  HeldCiphertext,
  RewrapResult,
  SealedItem,
  ValidatedCryptoModule,
} from './crypto-backend.ts';
export type { FetchedKey, KeyDecryption, KeyDecryptionObserver, KeyReference, KeySource, KeySourceContext, KeySourceRegistry, KeyUse } from './key-source.ts';
export type { ChatOperation, Dialect, InboundOperation, NativeCalls, ParseContext, StreamEncoder, UnaryAnswer, UnaryOperation } from './dialect.ts';
export type { AttemptRecord, Endpoint, HookStage, Hooks, RequestContext, RequestOutcome, ServedBy } from './lifecycle.ts';
export type { Principal, PrincipalRole } from './principal.ts';
export { CREATED_ACCOUNT_ID, DEFAULT_ACCOUNT_ID } from './principal.ts';
export type {
  CallContext,
  EmbeddingsRequest,
  EmbeddingsResult,
  KeyOwner,
  ListedModel,
  NativeDialectApi,
  ProviderAdapter,
  ProviderModelClasses,
  ProviderCredential,
  ProviderKeyRecord,
  ProviderKeySettings,
  TextTokenCount,
  UpstreamInfo,
} from './provider.ts';
export type {
  AlertService,
  CredentialKit,
  PricingService,
  AuthService,
  Clock,
  CryptoInfo,
  ErrorKit,
  HttpKit,
  InferenceService,
  ProviderKit,
  SealedSecret,
  SecretService,
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
  PluginUsageRollups,
  Store,
  StoreDriver,
  StoredProviderKey,
  UsageRecord,
  UsageRollup,
  UsageSummaryFilter,
  UsageSummaryRow,
} from './store.ts';
export type { WebSocketHandler, WebSocketPeer } from './websocket.ts';
export type { ModelResolution, ResolvedKeys, RouteCandidate, RoutePlanInput, RoutingStrategy } from './strategy.ts';
export type { ChatRequest, ChatResult, StreamPart, Usage } from './vocabulary.ts';
