// What the core hands every plugin in `setup`: the shared services an in-tree plugin would import.
// An out-of-tree plugin, loaded from disk by the compiled binary, cannot import core modules (there
// are none on disk), so everything it may need at run time reaches it here. Types only: this file
// names the implementations' types so the two cannot drift, and imports nothing at run time.

import type { ClusterBus, WorkerSiblings } from './cluster.ts';
import type { Static, TSchema } from '@sinclair/typebox';
import type * as errorModule from '../errors.ts';
import type * as bodyModule from '../http/kit/body.ts';
import type * as respondModule from '../http/kit/respond.ts';
import type * as auditTrailModule from '../http/kit/audit-trail.ts';
import type * as requestUrlModule from '../http/kit/request-url.ts';
import type * as providerKitModule from '../wire/provider-kit.ts';
import type * as sseModule from '../wire/sse.ts';
import type { Logger } from '../logger.ts';
import type { AlertDelivery, AlertEvent } from './alert-channel.ts';
import type { Counters } from './counters.ts';
import type { KeySourceRegistry } from './key-source.ts';
import type { ValidatedCryptoModule } from './crypto-backend.ts';
import type { Dialect, InboundOperation } from './dialect.ts';
import type { Principal, PrincipalRole } from './principal.ts';
import type { Store } from './store.ts';
import type { KeyOwner, ProviderKeyRecord, ProviderKeySettings } from './provider.ts';
import type { ChatRequest, ErrorDescriptor } from './vocabulary.ts';

export interface Clock {
  now(): number;
}

/** The one error table and the error it builds; clients always get the spec's shape from it. */
export interface ErrorKit {
  readonly table: typeof errorModule.ERROR_TABLE;
  /** The core's KeywayError class: `instanceof` works on it, and `new` builds a spec-shaped error. */
  readonly KeywayError: typeof errorModule.KeywayError;
  create(code: errorModule.ErrorCode, values?: Record<string, string | number | undefined>, options?: errorModule.KeywayErrorOptions): errorModule.KeywayError;
  descriptorOf(error: unknown, requestId: string): ErrorDescriptor;
  /** Scrubs anything key-shaped (and every secret value in play) from free text. */
  redact(text: string): string;
}

/** The helpers every provider adapter shares: upstream calls, failure classification, SSE framing. */
export type ProviderKit = Pick<
  typeof providerKitModule,
  | 'postUpstream'
  | 'getUpstreamJson'
  | 'listedModel'
  | 'readJsonBody'
  | 'readJsonBodyWithText'
  | 'upstreamFailure'
  | 'networkFailure'
  | 'reasonFromStatus'
  | 'parseRetryAfter'
  | 'readNumberHeader'
  | 'recordUpstreamInfo'
  | 'resolveBaseUrl'
  | 'parseDataUrl'
  | 'parseToolArguments'
  | 'parseJsonOrUndefined'
  | 'bodySummary'
> &
  Pick<typeof sseModule, 'readSseEvents' | 'SseParser' | 'encodeSseData' | 'encodeSseEvent' | 'SSE_DONE' | 'SSE_HEADERS'>;

export interface HttpKit {
  /** A JSON body within the size, nesting and time limits (KEYWAY_MAX_BODY_BYTES, KEYWAY_MAX_JSON_DEPTH, KEYWAY_BODY_TIMEOUT_MS): spec-shaped 400/408/413. */
  readJson(request: Request): Promise<unknown>;
  /** readJson for an optional body: undefined when none was sent (nothing, or only whitespace). */
  readOptionalJson(request: Request): Promise<unknown>;
  /** The body as text (empty when none was sent) within the size and time limits: for a route that reads a form or an optional body itself. */
  readText(request: Request): Promise<string>;
  /**
   * readText on a copy, leaving the body for the lifecycle to read (a route that looks before it runs).
   * Both reads share one deadline: after a peek that missed it, the lifecycle answers 408 at once.
   */
  peekText(request: Request): Promise<string>;
  validateBody<Schema extends TSchema>(schema: Schema, body: unknown): Static<Schema>;
  json: typeof respondModule.json;
  requestIdOf: typeof respondModule.requestIdOf;
  fieldName: typeof bodyModule.fieldName;
  /**
   * The request's URL, read safely: use it, not `new URL(request.url)`, which throws for a request
   * without a Host header (HTTP/1.0, load balancers' health checks) or with a malformed one.
   */
  requestUrl: typeof requestUrlModule.requestUrl;
  /** Records the state before and after a management change, for the audit log (docs/audit.md); secrets are stripped. */
  recordChange: typeof auditTrailModule.recordChange;
}

export interface AuthService {
  /** The principal a request's key stands for; throws `invalid_api_key` otherwise. */
  authenticate(headers: Headers): Principal;
  /**
   * What a route that checks its caller itself calls (GET /metrics, a WebSocket upgrade): the key (or
   * session), then, in the one order every call follows, the management guards (a key's allowed_ips),
   * the X-Team-ID check and, when given, the role. A key refused for its address learns nothing else,
   * its role included. Throws as each step does; answers the principal.
   */
  admit(headers: Headers, clientAddress: () => string | undefined, role?: PrincipalRole, teamKeys?: boolean): Principal;
  /**
   * The role check alone, for a principal already through `admit` or `guardManagementCall`: on its own
   * it would tell a key refused for its address what role it has. `teamKeys`: an admin call a team
   * member's admin key may make (see authenticate.ts requireRole).
   */
  requireRole(principal: Principal, role: PrincipalRole, teamKeys?: boolean): void;
  /**
   * Runs the plugins' management guards (an address outside the key's allowed_ips, say) for a route
   * that authenticates by itself (a dashboard's sign-in): throws as they do.
   */
  guardManagementCall(principal: Principal, clientAddress: () => string | undefined): void;
}

/** Runs an inbound operation through auth → key-resolve → route → call → account. */
export interface InferenceService {
  run(request: Request, operation: InboundOperation, clientAddress?: () => string | undefined): Promise<Response>;
  /** A dialect registered by a plugin, or the core's `openai`. */
  dialect(name: string): Dialect | undefined;
}

export interface SnapshotView {
  readonly version: number;
  readonly accounts: ReadonlyMap<string, { id: string; name: string; settings: Record<string, unknown> }>;
  readonly platformSettings: Readonly<Record<string, unknown>>;
  /** Plugin snapshot sections, by section name. */
  readonly sections: ReadonlyMap<string, unknown>;
}

export interface SnapshotService {
  readonly current: SnapshotView;
  section<Value>(name: string): Value | undefined;
  /** Rebuilds the snapshot after a management write; requests never wait for it. */
  refresh(): Promise<void>;
}

/** Gateway-key material, for plugins that issue keys (team member keys): hashes stored, keys shown once. */
export interface CredentialKit {
  /** A new gateway key: `kw_<kind>_` and 40 random base62 characters. */
  generateGatewayKey(kind: 'op' | 'ak' | 'mk'): string;
  /** What the store keeps and authentication compares. */
  hashGatewayKey(key: string): string;
  maskKey(key: string): string;
  randomId(prefix: string): string;
}

/** List prices from the shipped catalog (with the loaded providers' aliases). */
export interface PricingService {
  /**
   * The prompt's tokens as estimated for ordinary text (core/accounting/token-estimate.ts): above what
   * the tokenizers report for prose and code, below it for random text. For figures that may be
   * approximate (token rate limits); money uses `promptTokenBound`.
   */
  estimatePromptTokens(request: ChatRequest): number;
  /**
   * The prompt's tokens counted from above for any text: its UTF-8 bytes plus each message's overheads
   * (core/accounting/prompt-bound.ts). For budget reservations and approval thresholds.
   */
  promptTokenBound(request: ChatRequest): number;
  /**
   * The prompt bound with the messages' texts counted by `provider`'s own tokenizer for `model` instead
   * of their bytes: never above `promptTokenBound`, never below what that provider bills for `model`.
   * Undefined when the provider has no tokenizer (ProviderAdapter.loadTokenizer), the tokenizer does not
   * know the model, or it could not be loaded. Tens of microseconds a kilobyte (and the tokenizer's
   * loading the first time): for a request the byte bound alone would refuse or send for approval.
   */
  countPromptTokens(provider: string, model: string, request: ChatRequest): Promise<number | undefined>;
  /**
   * What `countPromptTokens` answered for this request, provider and model, if it was asked (a budget
   * or an approval near its limit): the figure the reservation was made on, which the estimate of a
   * cut stream or of a call in flight at a crash must not exceed. Nothing is remembered otherwise.
   */
  countedPromptTokens(provider: string, model: string, request: ChatRequest): number | undefined;
  /** USD per token and the model's output-token limit, or undefined when the model is unpriced. */
  price(
    provider: string,
    model: string,
  ):
    | {
        inputPerToken: number;
        outputPerToken: number;
        maxOutputTokens: number | undefined;
        maxInputTokens: number | undefined;
        /** The dearest rate a prompt token can be billed at (a cache write can cost more than plain input). */
        worstInputPerToken?: number;
        /**
         * The provider bills cache writes only for a request that marks what to cache (ProviderAdapter.cacheWrites
         * `marked`): a request marking nothing pays at most `inputPerToken` a prompt token, one marking only
         * 5-minute writes at most `fiveMinuteWriteInputPerToken`, any other `worstInputPerToken`.
         */
        cacheWritesMarked?: boolean;
        /** The dearest rate a prompt token can be billed at when only 5-minute cache writes are possible. */
        fiveMinuteWriteInputPerToken?: number;
        /** The dearest rate an output token can be billed at (reasoning may have its own rate). */
        worstOutputPerToken?: number;
        /** Fees charged once per request (a flat request fee, the dearest search fee). */
        perRequestUsd?: number;
        /**
         * A fee charged for each search the provider reports (Anthropic's web search tool, Perplexity deep
         * research's queries): only a request that bounds its searches (`max_uses`) can have it in its worst case.
         */
        perSearchUsd?: number;
        /**
         * The dearest input and output rates of each processing tier a request may ask for (OpenAI's
         * `service_tier`: `priority`, `flex`), by tier: a request naming one is billed at them.
         */
        serviceTiers?: Readonly<Record<string, { worstInputPerToken: number; worstOutputPerToken: number }>>;
        /**
         * Dearer rates once the prompt exceeds a size (long-context tiers), smallest threshold first: a
         * worst case for a prompt that may exceed `aboveInputTokens` must use them.
         */
        tiers?: ReadonlyArray<{
          aboveInputTokens: number;
          worstInputPerToken: number;
          worstOutputPerToken: number;
          /** The tier's plain input and 5-minute-write rates, for a `cacheWritesMarked` provider (as above). */
          inputPerToken?: number;
          fiveMinuteWriteInputPerToken?: number;
        }>;
      }
    | undefined;
}

/** The usage queue's state, read-only (for metrics): rows waiting for the store, rows in memory, rows written. */
export interface UsageQueueView {
  readonly pending: number;
  readonly buffered: number;
  readonly totalWritten: number;
  /**
   * Writes what this process has queued (rejects when the store refuses; the rows stay queued). For
   * routes that read usage rows and promise what was answered is there: the audit log's request events.
   */
  flush(): Promise<void>;
}

export interface AlertService {
  /** Delivers an event to each of its targets through the first channel that accepts it. */
  fire(event: AlertEvent): Promise<AlertDelivery[]>;
  /** The name of the channel that would deliver to a target, or undefined when none accepts it. */
  channelFor(target: string): string | undefined;
}

/** A small secret other than a provider key (an account's webhook secret), sealed by the running crypto backend. */
export interface SealedSecret {
  backend: string;
  keyVersion: number;
  ciphertext: string;
}

/** Seals and opens such secrets; the plaintext is redacted from every log line once opened. */
export interface SecretSealer {
  seal(plaintext: string, binding: string): Promise<SealedSecret>;
  /** Rejects when the ciphertext was altered, moved to another binding, or its backend is not loaded. */
  open(sealed: Pick<SealedSecret, 'ciphertext' | 'backend'>, binding: string): Promise<string>;
  /**
   * Opens sealed content that is not a secret (a stored conversation): the same checks as `open`, but
   * the plaintext is not remembered for redaction, which would grow without bound and redact prose.
   */
  openContent?(sealed: Pick<SealedSecret, 'ciphertext' | 'backend'>, binding: string): Promise<string>;
}

/** The same service under the name plugins written against the earlier draft import. */
export type SecretService = SecretSealer;

/** One provider's live health (a subset of what `GET /v1/providers/health` answers). */
export interface ProviderHealthSummary {
  name: string;
  /**
   * `unavailable`: the circuit is closed, but no key of the provider can serve now (each refused or not
   * active). Keys only cooling down after a 429 are still tried: `degraded`.
   */
  status: 'healthy' | 'degraded' | 'disabled' | 'recovering' | 'unavailable';
  /** Percent, over the monitor's recent window. */
  success_rate: number;
  requests: number;
  latency_ms: number | null;
  issues: string[];
}

/** The health check took a provider out of routing (`auto_disable`): what `ProviderHealthService.onDisabled` tells. */
export interface ProviderDisabledEvent {
  /** The account whose keys of the provider failed; null for the platform's keys. */
  accountId: string | null;
  provider: string;
  /** When it was disabled, epoch milliseconds, on the process that saw the failures. */
  at: number;
  /** Why, in the health check's words (`success rate 0% below 90%`…). */
  reason: string | undefined;
}

/** Provider health as the routing monitor sees it, read from memory. */
export interface ProviderHealthService {
  /** The account's providers. */
  report(accountId: string): ProviderHealthSummary[];
  /**
   * Whether routing may send a request to this key now (not refused by its provider, its provider not
   * disabled, usable here): what strategies are given as `isAvailable`, for hooks that set keys aside.
   */
  keyAvailable(key: ProviderKeyRecord): boolean;
  /**
   * Calls `listener` each time the health check disables a provider, on this process or on another
   * worker or instance (heard on the cluster bus, best effort), so a disable is seen even when a probe
   * moves the provider on to `recovering` before `report` is next read. Called in a microtask after
   * the disable, never on a request's path; an error it throws is logged. Returns what unsubscribes.
   */
  onDisabled(listener: (event: ProviderDisabledEvent) => void): () => void;
}

/** The crypto backend new provider keys are sealed with, as it declares itself. */
export interface CryptoInfo {
  name: string;
  /** Undefined when the backend declares nothing: not a validated module. */
  validatedModule: ValidatedCryptoModule | undefined;
}

/** A stored provider key's public face: never the key itself. */
export interface ProviderKeyView extends ProviderKeyRecord {
  maskedKey: string;
  fingerprint: string;
  createdAt: string;
}

export interface NewProviderKeyInput {
  owner: KeyOwner;
  accountId: string | null;
  provider: string;
  apiKey: string;
  organizationId: string | undefined;
  settings: ProviderKeySettings;
  weight: number;
}

/** The outcome of a provider's free call (listing models) with a key; `error` never holds key material. */
export type ProviderKeyTest = { ok: true; models: number } | { ok: false; reason: string; error: string };

/**
 * Provider keys for plugins that manage them (key rotation): stored sealed exactly as
 * `POST /v1/providers/keys` stores them, tested with the provider's free call, removed with every
 * decrypted copy forgotten. Reads come from the in-memory snapshot.
 */
export interface ProviderKeyService {
  /** The loaded provider plugins' names: what a key's `provider` (or a rule's, an alert's) may name. */
  providers(): string[];
  get(id: string): ProviderKeyView | undefined;
  /** The account's keys (or the operator's platform keys with `null`), by provider. */
  list(accountId: string | null): ProviderKeyView[];
  /** Lists models with this key through the provider's adapter, under the upstream address policy. */
  test(key: Omit<NewProviderKeyInput, 'owner' | 'accountId' | 'weight'>, timeoutMs?: number): Promise<ProviderKeyTest>;
  /** Seals and stores a key; the snapshot is NOT refreshed (the caller refreshes once with its own writes). */
  add(key: NewProviderKeyInput): Promise<ProviderKeyView>;
  /** Soft-deletes a key and forgets its decrypted copy; the caller refreshes the snapshot. */
  remove(id: string, owner: KeyOwner, accountId: string | null): Promise<boolean>;
  /** The stored fingerprint a key would have: to tell a key already stored. */
  fingerprint(apiKey: string): string;
}

/**
 * A snapshot section under this name may annotate each provider key in `GET /v1/providers` (key
 * rotation shows its state there). `annotate` runs per listed key, from memory.
 */
export const PROVIDER_KEY_ANNOTATIONS_SECTION = 'provider-key-annotations';
export interface ProviderKeyAnnotator {
  annotate(keyId: string, now: number): Record<string, unknown> | undefined;
}

/** What `OutboundService.admit` decided for one delivery. */
export type OutboundAdmission =
  | {
      allowed: true;
      /**
       * The checked address to connect to when the URL names a host: the caller connects there (with the
       * name as Host and TLS server name) rather than resolving the name again. Undefined for an IP literal.
       */
      address: string | undefined;
    }
  | {
      allowed: false;
      /** `refused`: an address rule; `unresolved`: the name had no usable answer, so nothing could be checked. */
      kind: 'refused' | 'unresolved';
      /** Completes "the address …": names the rule, never the internal address nor the URL. */
      reason: string;
    };

/** Addresses a client chose for Keyway to call (webhooks), held to the upstream address rules. */
export interface OutboundService {
  /**
   * Why `url` may not be called, or undefined, without a lookup (when a target is saved). An address
   * written as an IP literal, or `localhost`, is judged by KEYWAY_UPSTREAM_ALLOW/DENY and the private,
   * link-local and metadata ranges, as a provider key's own `base_url` is; a host name passes here and
   * is judged by `admit` before each delivery.
   */
  refusal(url: string): string | undefined;
  /**
   * Before each delivery: `refusal`, then the host name resolved and every answer held to the same
   * rules. Background work only: it waits for DNS.
   */
  admit(url: string): Promise<OutboundAdmission>;
}

/**
 * The shutdown, for hooks and jobs that wait (core/lifecycle/drain.ts). Each signal's `reason` is the
 * core's error for a request the drain ended (503 `not_ready`, `Retry-After: 1`, `x-should-retry: true`,
 * `Connection: close`): a hook throws it (`signal.throwIfAborted()`) and its client is answered in the
 * spec's shape, to send the request again elsewhere. A hook still waiting when the drain ends requests
 * is ended by the core whatever it does; these let it stop its own work (an upstream fetch, a timer)
 * and not act after its request was answered.
 */
export interface ShutdownSignals {
  /**
   * Aborted when the shutdown begins (the first SIGTERM or SIGINT): for a wait that nothing in this
   * process is working towards, only a person or another instance ends, and that the drain time would
   * only prolong (an approval's decision, `Prefer: wait`). The client's re-send waits where it lands.
   */
  readonly draining: AbortSignal;
  /** Aborted when the drain ends the requests in flight: at `KEYWAY_DRAIN_TIMEOUT_MS`, or at a second signal. */
  readonly ended: AbortSignal;
}

export interface Services {
  logger: Logger;
  /** The fetch to use for outbound calls; tests inject their own. */
  fetch: typeof fetch;
  outbound: OutboundService;
  env: Readonly<Record<string, string | undefined>>;
  dataDirectory: string;
  clock: Clock;
  errors: ErrorKit;
  providerKit: ProviderKit;
  http: HttpKit;
  credentials: CredentialKit;
  /** Available once the gateway has started (in routes, hooks and jobs), not during `setup`. */
  readonly store: Store;
  readonly counters: Counters;
  /** Messages and leases shared with the other members of the cluster (core/spec/cluster.ts). */
  readonly cluster: ClusterBus;
  /**
   * The other worker processes of this instance (KEYWAY_WORKERS > 1), available in `setup` already;
   * undefined in a process that serves alone.
   */
  readonly siblings?: WorkerSiblings;
  readonly snapshot: SnapshotService;
  readonly inference: InferenceService;
  readonly auth: AuthService;
  readonly alerts: AlertService;
  readonly pricing: PricingService;
  readonly usageQueue: UsageQueueView;
  readonly crypto: CryptoInfo;
  readonly secrets: SecretSealer;
  readonly providerHealth: ProviderHealthService;
  /** The key-source plugins loaded (core/spec/key-source.ts), by name. */
  readonly keySources: KeySourceRegistry;
  /** Provider keys for plugins that add, test and retire them (key rotation). */
  readonly providerKeys: ProviderKeyService;
  /** The shutdown's start and its drain deadline, as signals (ShutdownSignals); available in `setup` already. */
  readonly shutdown: ShutdownSignals;
}
