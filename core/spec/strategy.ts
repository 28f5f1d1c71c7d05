// The routing-strategy contract: order the candidates (provider, model, key) a request may try.

import type { ProviderKeyRecord } from './provider.ts';
import type { ChatRequest } from './vocabulary.ts';

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
  /**
   * Set when the client named a model class instead of a model: the class's name, or a member of it
   * that no provider is known to serve (docs/routing.md, "Model classes"). `model` is then the class's
   * model for `provider`, chosen by routing, and every candidate is routing's choice, none the client's.
   */
  modelClass?: string;
}

export interface ResolvedKeys {
  account: ReadonlyMap<string, readonly ProviderKeyRecord[]>;
  platform: ReadonlyMap<string, readonly ProviderKeyRecord[]>;
}

/** The names a request may use for "the operator's keys" (`parrotrouter/model`, `provider_order`). */
export const PLATFORM_NAMES: ReadonlySet<string> = new Set(['parrotrouter', 'platform']);

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
