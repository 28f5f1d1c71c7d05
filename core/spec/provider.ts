// The provider contract: one adapter per upstream API, plus the key records it is called with.

import type { TSchema } from '@sinclair/typebox';
import type { ChatRequest, ChatResult, StreamPart, Usage } from './vocabulary.ts';

/**
 * A provider key's settings. The core reads only the fields every provider shares; a provider's
 * own fields (Gemini's `safety_settings`…) are declared by its `keySettingsSchema`.
 */
export interface ProviderKeySettings {
  default_model?: string;
  max_tokens_default?: number;
  temperature_default?: number;
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

export interface UpstreamInfo {
  status?: number;
  requestId?: string;
  rateLimitRemaining?: number;
}

export interface CallContext {
  requestId: string;
  credential: ProviderCredential;
  /** The model name the provider knows (no `provider/` prefix). */
  model: string;
  /**
   * The model the request named (or its key's `default_model`), as the client wrote it: not `model`
   * when a strategy chose a substitute (a class's model of another provider), whose adapter may then
   * leave out what was meant only for the model named.
   */
  requestedModel?: string;
  signal: AbortSignal;
  /** Things the provider could not honour; sent to the client in `X-Keyway-Warnings`. */
  warnings: string[];
  /** Rate-limit and request-id headers the adapter read from the upstream answer. */
  upstream: UpstreamInfo;
  /** Deadline for opening a connection to an upstream not used recently (see core/wire/connect-check.ts). */
  connectTimeoutMs?: number | undefined;
  /**
   * Set by the core: the upstream-address policy this call is held to (core/wire/upstream-policy.ts).
   * The provider kit's postUpstream applies it; adapters only pass the context along.
   */
  upstreamScope?: unknown;
  /**
   * Set by the core: the provider kit's postUpstream calls it when the upstream's 2xx head arrives.
   * A non-streamed answer has then met its first-byte deadline, and the rest of its body is bounded
   * by the request's total deadline (core/lifecycle/attempt-deadlines.ts). An adapter that calls
   * fetch itself may call it too; one that does not keeps the first-byte deadline over the whole body.
   */
  onResponseHead?: (status: number) => void;
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

/**
 * An inbound dialect's own API that a provider serves itself (OpenAI's Responses API for the
 * `responses` dialect): the dialect's body goes upstream unchanged but for what Keyway owns, and the
 * answer comes back in the dialect's shape. Declared in `ProviderAdapter.native` under the name the
 * dialect's operation asks for (`ChatOperation.native.api`).
 */
export interface NativeDialectApi {
  /** Not streamed: the upstream's body rides in `nativeBody`; usage, model and finish reason are read from it. */
  call(body: Record<string, unknown>, context: CallContext): Promise<ChatResult>;
  /**
   * Streamed: resolves once the upstream accepted the request, as `chatStream`. The upstream's events
   * arrive as `native-event` parts, with `start`, `usage` and `finish` parts for the books; a failure
   * after the first byte is an `error` part.
   */
  stream(body: Record<string, unknown>, context: CallContext): Promise<AsyncIterable<StreamPart>>;
}

/** A model a provider's list names, with when it was published (Unix seconds) where the list says. */
export interface ListedModel {
  id: string;
  created?: number;
}

/** A provider's model of each provider-neutral tier (`flagship`, `mid`, `small`), and the tier's other names. */
export type ProviderModelClasses = Readonly<Record<string, { model: string; members?: readonly string[] }>>;

/** A model's tokenizer: each text's tokens as the provider bills them, in order. */
export type TextTokenCount = (texts: readonly string[]) => Promise<number[]>;

export interface ProviderAdapter {
  name: string;
  /** Where the provider lives when neither the key nor the environment says otherwise. */
  defaultBaseUrl: string;
  /** Bare model names this provider serves, for model selection when the catalog does not know one. */
  modelPatterns: RegExp[];
  /**
   * Name shapes no list or catalog can know beforehand. `prefixes`: what the provider's own SDKs and docs
   * write before its model names (Gemini's `models/`): a name carrying one is this provider's, and the
   * bare name is what goes upstream and into the books. `derived`: names made from a base model (a
   * fine-tune, `ft:<base>:…`), each pattern's first group being the base; such a name is this provider's
   * when the base model is (by the catalog or `modelPatterns`).
   */
  modelNameForms?: { prefixes?: readonly string[]; derived?: readonly RegExp[] };
  /**
   * The names the shipped price catalog (LiteLLM's `litellm_provider`) uses for this provider, and
   * the model-name prefixes it writes (`gemini/`); the catalog maps them to this provider's name.
   */
  catalogAliases?: { providers: readonly string[]; modelPrefixes?: readonly string[] };
  /** Its model of each model class, for equivalence fallback and cost-optimized routing. */
  modelClasses?: ProviderModelClasses;
  /** The provider's own key settings (beyond the shared ones), checked when a key is stored. */
  keySettingsSchema?: TSchema;
  chat(request: ChatRequest, context: CallContext): Promise<ChatResult>;
  /**
   * Resolves once the upstream accepted the request (status 2xx), so a failure before the first byte
   * can still fall back; rejects with a KeywayError otherwise. Errors after that arrive as `error` parts.
   */
  chatStream(request: ChatRequest, context: CallContext): Promise<AsyncIterable<StreamPart>>;
  /** The models the key may use: names, or entries with a publication time (`GET /v1/models` shows it as `created`). */
  listModels(credential: ProviderCredential, signal: AbortSignal): Promise<Array<string | ListedModel>>;
  embeddings?(request: EmbeddingsRequest, context: CallContext): Promise<EmbeddingsResult>;
  /** Counts input tokens the provider's way (`/v1/messages/count_tokens`). */
  countTokens?(body: Record<string, unknown>, context: CallContext): Promise<number>;
  /**
   * The provider's own tokenizer for `model` (its tables are megabytes: load them on first use, off the
   * gateway's thread if that takes long): texts' tokens exactly as the provider bills them, or undefined
   * for a model it does not know. Budgets and
   * approvals count with it only when the byte bound alone would refuse a request or ask for an
   * approval (PricingService.countPromptTokens), so an ordinary request never pays for it.
   */
  loadTokenizer?(model: string): Promise<TextTokenCount | undefined>;
  /**
   * When the provider bills a prompt's cache writes (at a rate above plain input): `marked`, only for a
   * request that marks what to cache (`cache_control`, as Anthropic's API does); `automatic` (the
   * default), for any prompt, as a provider that caches on its own may. A budget reserves a request
   * that marks nothing at the plain input rate on a `marked` provider.
   */
  cacheWrites?: 'marked' | 'automatic';
  /**
   * For a provider whose every request runs a search billed per request (Perplexity's Sonar): the
   * search context size a request searches at (its own, else the provider's default; `request` is
   * undefined when only the provider is known). Keyway prices a usage it had to estimate (a stream cut
   * short, a call the drain ended, a request a crashed process left in flight) with it, as the
   * provider's usage reader does when usage came: the search ran before the first token, and is billed.
   */
  searchContextSizeOf?(request: Readonly<Record<string, unknown>> | undefined): string;
  /** Dialects whose own API the provider serves, by the name their operation asks for (`responses`). */
  native?: Readonly<Record<string, NativeDialectApi>>;
}
