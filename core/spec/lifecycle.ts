// The request lifecycle's vocabulary: the context every stage reads and writes, the outcome the
// account stage books, and the hooks plugins attach to the five stages.

import type { Principal } from './principal.ts';
import type { KeyOwner } from './provider.ts';
import type { ModelResolution, ResolvedKeys, RouteCandidate } from './strategy.ts';
import type { ChatRequest, ErrorDescriptor, FinishReason, Usage } from './vocabulary.ts';

/** The inbound operation a request is: the usage row's `endpoint`. */
export type Endpoint = 'chat' | 'messages' | 'embeddings' | 'count_tokens' | (string & {});

export interface AttemptRecord {
  provider: string;
  model: string;
  keyId: string;
  owner: KeyOwner;
  reason: string;
  status: number | undefined;
  durationMs: number;
  /** performance.now() when the attempt started (the clock of RequestContext.startedAt): for trace spans. */
  startedAt?: number;
  /**
   * True for a candidate skipped without an upstream call: its provider's translation refused what the
   * request asks (`unsupported_feature`, such as n > 1 where the provider returns one choice).
   */
  skipped?: boolean;
  /**
   * True for a substitute's upstream 400 (`invalid_request`) met while the request was falling back: a
   * candidate routing chose, not the client's model, whose provider refused the request as Keyway
   * translated it for that provider. The next candidate was tried, and the answer is never this
   * attempt's failure (core/lifecycle/attempts.ts).
   */
  setAside?: boolean;
  /**
   * False for an attempt that ended before any upstream call: its provider's translation refused the
   * request (a 4xx with no failure reason: a skipped candidate, or a value it cannot take such as a
   * sixth stop sequence for Cohere), the upstream address was not allowed, or the provider key could
   * not be produced. Absent otherwise. The answer's provider headers never name such an attempt.
   */
  upstreamCalled?: false;
}

export interface ServedBy {
  provider: string;
  model: string;
  keyId: string;
  owner: KeyOwner;
  /** performance.now() when the serving attempt started: for trace spans. */
  startedAt?: number;
  /** performance.now() when its first part (a stream) or its whole answer arrived: time to first byte. */
  firstByteAt?: number;
  /** The provider's own API for the dialect that served (`ChatOperation.native.api`); absent: the chat translation did. */
  api?: string;
  /**
   * `text` with the provider key this attempt called its upstream with replaced by `[REDACTED]`, the
   * same string when it holds none (one substring search). The core checks the answer it sends
   * (core/credentials/key-echo.ts); this is for what a plugin keeps of the answer, such as a stored
   * response, which an upstream echoing its key must not fill with it either.
   */
  redactKey?(text: string): string;
}

export interface RequestOutcome {
  status: number;
  usage: Usage | undefined;
  finishReason: FinishReason | undefined;
  error: ErrorDescriptor | undefined;
  latencyMs: number;
  streamed: boolean;
  /** List price of the usage, or the provider's own reported cost; undefined when unpriced. */
  costUsd: number | undefined;
  /**
   * True when `usage` is not the provider's own figures: Keyway's estimate for a stream cut before
   * the provider sent its usage, or counts the account stage capped as absurd (docs/security.md,
   * "The books").
   */
  usageEstimated?: boolean;
  /**
   * The model the provider said it served (the answer's or the stream's `model`, what `X-Model-Used`
   * shows), when it named one: a dated name such as `claude-sonnet-4-5-20250929` for an alias. The
   * usage row books it, falling back to the routed model (`served.model`).
   */
  servedModel?: string;
}

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  endpoint: Endpoint;
  headers: Headers;
  clientIp: string | undefined;
  principal: Principal;
  /**
   * The team the request acts for: a member key's own team, or the team an account admin names with
   * `X-Team-ID` (set by the teams plugin once it checked the team is the account's).
   */
  teamId: string | undefined;
  /** The request in Keyway's vocabulary, parsed and translated before the `auth` hooks run. */
  request: ChatRequest;
  /**
   * The body exactly as the client sent it (decoded as UTF-8), from when it is read until the `call`
   * hooks have run (then undefined, so a long stream does not hold a second copy of a large body; a
   * request refused before that keeps it through its `account` hooks): what a fingerprint hashes, so
   * that a client can reproduce it from what it sent. A plugin may hash it; never log or store it.
   */
  bodyText?: string;
  projectTag: string | undefined;
  /**
   * Set when the request named no model and `model` is this provider key's `settings.default_model`:
   * a refusal of that model names the key's setting, which is what must change, not the request.
   */
  defaultModelKeyId?: string;
  keys: ResolvedKeys | undefined;
  /**
   * Set by a `route` hook of a policy that narrowed `keys`, when no candidate is left: why keys of the
   * requested provider were passed over, in words naming no key id and no key. The core's 503 (no
   * provider available) ends with them, so its account of the keys it looked at is not the whole story.
   */
  passedOver?: string[];
  resolution: ModelResolution | undefined;
  candidates: RouteCandidate[];
  attempts: AttemptRecord[];
  served: ServedBy | undefined;
  warnings: string[];
  /** Extra response headers plugins want the client to see. */
  responseHeaders: Record<string, string>;
  /** Scratch space for plugins, keyed by plugin name. */
  state: Map<string, unknown>;
  /** Set by the account stage, once: what the request was booked as. */
  outcome: RequestOutcome | undefined;
  /**
   * Set by a `call` or `account` hook to have the request's usage row carry its audit marks (UsageRecord.audited):
   * an audit read from the usage row instead of a row of its own. The account hooks run before the row is built.
   */
  usageAudit?: UsageAudit;
  /**
   * Set by a `call` hook that reserved budget as leases on the shared counters (cost-cap): each lease,
   * so a request in flight when its process dies has them in its in-flight mark, and the replay that
   * books the request's estimate settles them to it (Counters.settleLease) instead of letting them
   * lapse with their amount forgotten.
   */
  leases?: HeldLease[];
}

/** A budget reservation held as a lease on the shared counters (Counters.reserveLease). */
export interface HeldLease {
  /** The provider whose spend the counter counts: the served one is settled to the cost, the others to 0. */
  provider: string;
  key: string;
  leaseId: string;
  expiresAt: number;
}

/** What an audit asks the usage row to keep beyond the booking: the row adds the client's IP and the key's role. */
export interface UsageAudit {
  /** SHA-256 (hex) of the request body, when the audit asked for a fingerprint; never the body. */
  requestSha256: string | null;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * Lifecycle hooks, run in plugin dependency order after the core's own work for that stage.
 * Throw a KeywayError (or an Error with `keywayCode`, see docs/plugins.md) to refuse the request;
 * any other throw becomes a `plugin_error`.
 */
export interface Hooks {
  auth?(context: RequestContext): MaybePromise<void>;
  keyResolve?(context: RequestContext): MaybePromise<void>;
  route?(context: RequestContext): MaybePromise<void>;
  call?(context: RequestContext): MaybePromise<void>;
  /**
   * Exactly once per authenticated request, after the response ended (stream included) or was
   * refused, failed or cancelled. Errors here are logged, never sent to the client.
   */
  account?(context: RequestContext, outcome: RequestOutcome): MaybePromise<void>;
}

export type HookStage = keyof Hooks;

export const HOOK_STAGES: readonly HookStage[] = ['auth', 'keyResolve', 'route', 'call', 'account'];
