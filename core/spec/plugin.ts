import type { Static, TSchema } from '@sinclair/typebox';
import type { Logger } from '../logger.ts';
import type { ChatRequest, ChatResult, ErrorDescriptor, FinishReason, StreamPart, Usage } from './vocabulary.ts';

/** Bumped when a plugin written against an older core would break. */
export const PLUGIN_API_VERSION = 1;

export type PluginKind = 'provider' | 'strategy' | 'policy' | 'alert-channel' | 'crypto-backend';

// ---------------------------------------------------------------------------------------------
// Principals and credentials

export type PrincipalRole = 'operator' | 'admin' | 'developer' | 'viewer';

export interface Principal {
  /** Public id of the gateway key that authenticated the request. */
  keyId: string;
  role: PrincipalRole;
  /** The account the request acts on; the operator acts on `default`. */
  accountId: string;
  teamId: string | undefined;
  /** Whether the key may spend BYOK provider keys (members may be read-only). */
  byokAccess: boolean;
}

export interface ProviderKeySettings {
  default_model?: string;
  max_tokens_default?: number;
  temperature_default?: number;
  safety_settings?: 'low' | 'medium' | 'high' | 'none' | string | Array<{ category: string; threshold: string }>;
  base_url?: string;
  [extra: string]: unknown;
}

export type KeyOwner = 'account' | 'platform';

/** A provider key as the routing layer sees it: everything but the secret. */
export interface ProviderKeyRecord {
  id: string;
  provider: string;
  owner: KeyOwner;
  accountId: string | null;
  organizationId: string | undefined;
  settings: ProviderKeySettings;
  status: string;
  weight: number;
}

/** A provider key ready for a call. `apiKey` lives only in memory, only while needed. */
export interface ProviderCredential extends ProviderKeyRecord {
  apiKey: string;
}

// ---------------------------------------------------------------------------------------------
// Providers

export interface CallContext {
  requestId: string;
  credential: ProviderCredential;
  /** The model name the provider knows (no `provider/` prefix). */
  model: string;
  signal: AbortSignal;
  /** Things the provider could not honour; sent to the client in `X-Keyway-Warnings`. */
  warnings: string[];
  /** Rate-limit and request-id headers the adapter read from the upstream answer. */
  upstream: UpstreamInfo;
  /** Deadline for opening a connection to an upstream not used recently (see core/connect-check.ts). */
  connectTimeoutMs?: number | undefined;
}

export interface UpstreamInfo {
  status?: number;
  requestId?: string;
  rateLimitRemaining?: number;
}

export interface EmbeddingsRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
  [extra: string]: unknown;
}

export interface EmbeddingsResult {
  model: string;
  data: Array<{ index: number; embedding: number[] | string }>;
  usage: Usage;
}

export interface ProviderAdapter {
  name: string;
  /** Where the provider lives when neither the key nor the environment says otherwise. */
  defaultBaseUrl: string;
  /** Bare model names this provider serves, for model selection when the catalog does not know one. */
  modelPatterns: RegExp[];
  chat(request: ChatRequest, context: CallContext): Promise<ChatResult>;
  /**
   * Resolves once the upstream accepted the request (status 2xx), so a failure before the first byte
   * can still fall back; rejects with a KeywayError otherwise. Errors after that arrive as `error` parts.
   */
  chatStream(request: ChatRequest, context: CallContext): Promise<AsyncIterable<StreamPart>>;
  listModels(credential: ProviderCredential, signal: AbortSignal): Promise<string[]>;
  embeddings?(request: EmbeddingsRequest, context: CallContext): Promise<EmbeddingsResult>;
  /** Counts input tokens the provider's way (`/v1/messages/count_tokens`). */
  countTokens?(body: Record<string, unknown>, context: CallContext): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Routing

export interface RouteCandidate {
  provider: string;
  model: string;
  key: ProviderKeyRecord;
}

export interface ModelResolution {
  /** The provider the model name selects; undefined when only the request's routing can say. */
  provider: string | undefined;
  model: string;
  /** True when the client named the provider (`provider` field or `provider/model`). */
  explicit: boolean;
}

export interface RoutePlanInput {
  request: ChatRequest;
  resolution: ModelResolution;
  routing: NonNullable<ChatRequest['routing']>;
  /** The keys the caller may use, by provider: account keys first, then platform keys. */
  keys: ResolvedKeys;
  /** Whether a provider or key is currently routable (health, auth failures, rotation). */
  isAvailable(key: ProviderKeyRecord): boolean;
  /** A key told to wait by a rate limit: pools try it last. */
  isCoolingDown(key: ProviderKeyRecord): boolean;
  /**
   * Keeps one conversation on one key (the `user` field or `X-Session-Id`), so provider prompt
   * caches keep working; undefined when the request has neither.
   */
  stickyKey: string | undefined;
  /** Each provider's model of the requested model's class (the editable model-class table). */
  equivalents: ReadonlyMap<string, string> | undefined;
  /** List price per token (input + output, USD) of a model, for cost comparisons. */
  price(provider: string, model: string): number | undefined;
  /** What the operator adds to list price for platform-key traffic (percent). */
  platformMarkupPercent: number;
}

export interface RoutingStrategy {
  name: string;
  /** Orders the candidates to try. Runs on every request: keep it synchronous and allocation-light. */
  plan(input: RoutePlanInput): RouteCandidate[];
}

export interface ResolvedKeys {
  account: ReadonlyMap<string, readonly ProviderKeyRecord[]>;
  platform: ReadonlyMap<string, readonly ProviderKeyRecord[]>;
}

// ---------------------------------------------------------------------------------------------
// Request lifecycle

export type Endpoint = 'chat' | 'messages' | 'embeddings';

export interface AttemptRecord {
  provider: string;
  model: string;
  keyId: string;
  owner: KeyOwner;
  reason: string;
  status: number | undefined;
  durationMs: number;
}

export interface ServedBy {
  provider: string;
  model: string;
  keyId: string;
  owner: KeyOwner;
}

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  endpoint: Endpoint;
  headers: Headers;
  clientIp: string | undefined;
  principal: Principal;
  request: ChatRequest;
  projectTag: string | undefined;
  keys: ResolvedKeys | undefined;
  resolution: ModelResolution | undefined;
  candidates: RouteCandidate[];
  attempts: AttemptRecord[];
  served: ServedBy | undefined;
  warnings: string[];
  /** Extra response headers plugins want the client to see. */
  responseHeaders: Record<string, string>;
  /** Scratch space for plugins, keyed by plugin name. */
  state: Map<string, unknown>;
}

export interface RequestOutcome {
  status: number;
  usage: Usage | undefined;
  finishReason: FinishReason | undefined;
  error: ErrorDescriptor | undefined;
  latencyMs: number;
  streamed: boolean;
  costUsd: number | undefined;
  /** The cost the provider itself reported (Perplexity's usage.cost), when it did: it wins over list price. */
  providerCostUsd?: number | undefined;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * Lifecycle hooks, run in plugin dependency order after the core's own work for that stage.
 * Throw a KeywayError to refuse the request; any other throw becomes a `plugin_error`.
 */
export interface Hooks {
  auth?(context: RequestContext): MaybePromise<void>;
  keyResolve?(context: RequestContext): MaybePromise<void>;
  route?(context: RequestContext): MaybePromise<void>;
  call?(context: RequestContext): MaybePromise<void>;
  /** After the response ended (stream included). Errors here are logged, never sent to the client. */
  account?(context: RequestContext, outcome: RequestOutcome): MaybePromise<void>;
}

export type HookStage = keyof Hooks;

// ---------------------------------------------------------------------------------------------
// Crypto backends and alert channels

export interface CryptoBackend {
  name: string;
  /** Encrypts `plaintext`, binding the ciphertext to `binding` (the row it belongs to). */
  encrypt(plaintext: string, binding: string): Promise<string>;
  decrypt(ciphertext: string, binding: string): Promise<string>;
  /** The key version new ciphertexts are written under. */
  currentKeyVersion(): number;
}

export interface AlertEvent {
  alertId: string;
  accountId: string;
  type: string;
  message: string;
  firedAt: string;
  details: Record<string, unknown>;
  targets: string[];
}

export interface AlertChannel {
  name: string;
  /** Whether this channel delivers to a target (`https://…`, `someone@example.com`, `slack:#ops`). */
  accepts(target: string): boolean;
  send(event: AlertEvent, target: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Plugin declaration

export interface PluginSetupContext<Config> {
  config: Config;
  logger: Logger;
  /** The fetch to use for outbound calls; tests inject their own. */
  fetch: typeof fetch;
  env: Readonly<Record<string, string | undefined>>;
  dataDirectory: string;
}

export interface PluginContributions {
  provider?: ProviderAdapter;
  strategy?: RoutingStrategy;
  cryptoBackend?: CryptoBackend;
  alertChannel?: AlertChannel;
  hooks?: Hooks;
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
export type { ChatRequest, ChatResult, StreamPart, Usage };
