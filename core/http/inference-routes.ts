// The OpenAI-dialect inference routes; each runs the lifecycle.

import { recognise } from '../credentials/authenticate.ts';
import type { Runtime } from '../runtime.ts';
import { modelPredicate } from '../routing/model-predicate.ts';
import { chatCompletionsOperation, embeddingsOperation } from '../wire/openai-dialect.ts';
import { snapshotBase } from '../catalog/snapshots.ts';
import { KeywayError } from '../errors.ts';
import { admitCall } from './kit/guard.ts';
import { refuseSecretName } from '../wire/secret-fields.ts';
import { providerOfPrefix } from '../routing/resolve-model.ts';
import { PLATFORM_NAMES } from '../spec/strategy.ts';
import { errorAsResponse, json, requestIdOf } from './kit/respond.ts';
import { decodedPathPart, requestUrl } from './kit/request-url.ts';
import type { DialectModelsList } from '../spec/dialect.ts';

export type ClientAddress = (request: Request) => string | undefined;

export function chatCompletions(runtime: Runtime, request: Request, clientAddress: ClientAddress): Promise<Response> {
  return runtime.lifecycle.run(request, chatCompletionsOperation, () => clientAddress(request));
}

export function embeddings(runtime: Runtime, request: Request, clientAddress: ClientAddress): Promise<Response> {
  return runtime.lifecycle.run(request, embeddingsOperation, () => clientAddress(request));
}

/**
 * The models the caller may use: what its keys report, or the catalog's list for that provider, less
 * what a plugin's model filter says the caller may not call (a team's policy). A key that may call no
 * model (a viewer, a member without byok_access) is shown none, so a listed model is always callable;
 * the plugins' guards (allowed_ips) bind the listing as they bind every other call of the key.
 */
export async function listModels(runtime: Runtime, request: Request): Promise<Response> {
  const requestId = requestIdOf(request);
  try {
    const models = await callableModels(runtime, request);
    // A dialect's clients read its own page (Anthropic's SDKs: type, display_name, created_at, has_more…).
    const shape = dialectShapeFor(runtime, request.headers);
    if (shape !== undefined) return json(shape.page(models, requestUrl(request).searchParams), 200, { 'x-request-id': requestId });
    return json({ object: 'list', data: models }, 200, { 'x-request-id': requestId });
  } catch (error) {
    return errorAsResponse(error, requestId, runtime.logger);
  }
}

/**
 * GET /v1/models/{model}: one entry of the caller's list, or 404 `model_not_found` as for a model it
 * may not call. `provider/model` names an entry too (the list shows it bare when one provider serves
 * it), as on the inference routes; the answer's id is the name asked for.
 */
export async function retrieveModel(runtime: Runtime, request: Request, encodedId: string): Promise<Response> {
  const requestId = requestIdOf(request);
  try {
    const id = decodedModelId(encodedId);
    const models = await callableModels(runtime, request);
    refuseSecretName('model', id, 'a model name');
    const qualified = qualifiedModelId(runtime, id);
    const entry = models.find((candidate) => candidate.id === id || `${candidate.provider}/${candidate.id}` === qualified);
    if (entry === undefined) {
      throw new KeywayError('model_not_found', { detail: `The model '${id.slice(0, 200)}' does not exist or this key may not use it.` }, { param: 'model' });
    }
    const shape = dialectShapeFor(runtime, request.headers);
    if (shape !== undefined) return json(shape.one({ ...entry, id }), 200, { 'x-request-id': requestId });
    return json({ ...entry, id }, 200, { 'x-request-id': requestId });
  } catch (error) {
    return errorAsResponse(error, requestId, runtime.logger);
  }
}

/** The model-list shape of the dialect whose clients sent the request, or undefined for OpenAI's list. */
function dialectShapeFor(runtime: Runtime, headers: Headers): DialectModelsList | undefined {
  for (const dialect of runtime.plugins.dialects.values()) if (dialect.modelsList?.wants(headers) === true) return dialect.modelsList;
  return undefined;
}

/** `provider/model` with a LiteLLM provider name (`gemini/…`) as the provider's own (`google/…`), as the inference routes read it. */
function qualifiedModelId(runtime: Runtime, id: string): string {
  const slash = id.indexOf('/');
  const provider = slash > 0 ? providerOfPrefix(runtime.plugins.providers, id.slice(0, slash)) : undefined;
  return provider === undefined ? id : `${provider}${id.slice(slash)}`;
}

/** The path's model id: percent-escapes decoded (a client may escape the slash of `provider/model`); a bad escape is kept as sent. */
function decodedModelId(encoded: string): string {
  // A trailing slash is the same path to the router everywhere else (`/v1/models/`): no model id ends in one.
  return decodedPathPart(encoded.endsWith('/') ? encoded.slice(0, -1) : encoded);
}

interface ModelEntry {
  id: string;
  object: 'model';
  /** When the provider's own list says the model was published (Unix seconds); 0 when it does not say. */
  created: number;
  owned_by: string;
  provider: string;
}

/**
 * How long a listing waits for the account's keys' model lists this process has not fetched yet
 * (another worker stored the key, or the gateway restarted): without them it would show the catalog.
 */
const LISTING_WAIT_MS = 5_000;

async function callableModels(runtime: Runtime, request: Request): Promise<ModelEntry[]> {
  const principal = admitCall(runtime, request, recognise(runtime.snapshots, request.headers));
  if (principal.role === 'viewer' || !principal.byokAccess) return [];
  const learning = runtime.models.learnAccount(principal.accountId, LISTING_WAIT_MS);
  if (learning !== undefined) await learning;
  const allowed = modelPredicate(runtime.plugins.modelFilters, { principal, headers: request.headers });
  const reported = runtime.models.modelsOf(principal.accountId);
  const created = (provider: string, model: string) => createdOf(runtime, principal.accountId, provider, model, reported.get(provider));
  const byModel = new Map<string, string[]>();
  for (const [provider, models] of reported) {
    const names = models.size > 0 ? withAliases(runtime, provider, models) : catalogModels(runtime, provider);
    for (const model of names) {
      const providers = byModel.get(model);
      if (providers) providers.push(provider);
      else byModel.set(model, [provider]);
    }
  }
  const data: ModelEntry[] = [];
  for (const [model, providers] of byModel) {
    for (const provider of providers) {
      // Filtered after grouping: an id stays `provider/model` when the account has the model on two
      // providers, so a name the caller is shown routes to the very provider it was allowed on.
      if (allowed !== undefined && !allowed(provider, model)) continue;
      const id = providers.length > 1 || readsAsAnotherProvider(runtime, provider, model) ? `${provider}/${model}` : model;
      data.push({ id, object: 'model', created: created(provider, model), owned_by: provider, provider });
    }
  }
  data.sort((left, right) => left.id.localeCompare(right.id));
  return data;
}

/**
 * The names a key reports, and the alias of each dated snapshot among them that the catalog knows for
 * the provider (Anthropic lists `claude-sonnet-4-5-20250929`, and answers `claude-sonnet-4-5` too): a
 * team that allows the alias sees what it may call.
 */
function withAliases(runtime: Runtime, provider: string, reported: ReadonlySet<string>): ReadonlySet<string> {
  let names: Set<string> | undefined;
  for (const model of reported) {
    const base = snapshotBase(model);
    if (base === undefined || reported.has(base) || runtime.catalog.get(provider, base) === undefined) continue;
    names ??= new Set(reported);
    names.add(base);
  }
  return names ?? reported;
}

/**
 * The model's publication time from its provider's list; an alias the catalog adds (withAliases) takes
 * its newest dated snapshot's. 0 when the list gives none (Gemini, Cohere, the catalog's names).
 */
function createdOf(runtime: Runtime, accountId: string, provider: string, model: string, reported: ReadonlySet<string> | undefined): number {
  const own = runtime.models.createdOf(accountId, provider, model);
  if (own !== undefined || reported === undefined || reported.has(model)) return own ?? 0;
  let newest = 0;
  for (const name of reported) {
    if (snapshotBase(name) === model) newest = Math.max(newest, runtime.models.createdOf(accountId, provider, name) ?? 0);
  }
  return newest;
}

/**
 * Whether `model`, listed bare, would be routed away from `provider`: its first segment names another
 * provider or the platform (Groq's `openai/gpt-oss-120b`, Perplexity's catalog name
 * `anthropic/claude-haiku-4-5`). Such a name is listed as `provider/model`, which routes to `provider`.
 */
function readsAsAnotherProvider(runtime: Runtime, provider: string, model: string): boolean {
  const slash = model.indexOf('/');
  if (slash <= 0) return false;
  const prefix = model.slice(0, slash);
  const named = providerOfPrefix(runtime.plugins.providers, prefix);
  return named === undefined ? PLATFORM_NAMES.has(prefix) : named !== provider;
}

function catalogModels(runtime: Runtime, provider: string): Set<string> {
  const names = new Set<string>();
  for (const name of runtime.catalog.names()) if (runtime.catalog.get(provider, name) !== undefined) names.add(name);
  return names;
}
