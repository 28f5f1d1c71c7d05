import { authenticate } from '../credentials/authenticate.ts';
import { errorResponse, handleChat, inferenceHeaders } from '../lifecycle/respond.ts';
import { descriptorFromError, invalidField, KeywayError } from '../errors.ts';
import { openAIFormat, type InboundFormat } from '../wire/openai-dialect.ts';
import type { EmbeddingsRequest } from '../spec/plugin.ts';
import { validateChatRequest } from '../wire/request-validation.ts';
import type { Runtime } from '../runtime.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';
import { readJson } from './kit/body.ts';
import { createRequestContext } from '../lifecycle/context.ts';
import { errorAsResponse, json, requestIdOf } from './kit/respond.ts';

export type ClientAddress = (request: Request) => string | undefined;

/** The model a request names, or the provider key's `default_model` when it names only a provider. */
function applyDefaultModel(runtime: Runtime, accountId: string, body: ChatRequest): void {
  if (body.model !== undefined && body.model !== '') return;
  const provider = body.provider;
  const key = provider === undefined ? undefined : runtime.store.keysFor(accountId).account.get(provider)?.find((candidate) => candidate.settings.default_model);
  if (key?.settings.default_model === undefined) throw new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
  body.model = key.settings.default_model;
}

/** Parses, authenticates and validates a chat request in the given dialect, then runs it. */
export async function runChat(
  runtime: Runtime,
  request: Request,
  clientAddress: ClientAddress,
  format: InboundFormat,
  toChatRequest: (body: unknown, warnings: string[]) => ChatRequest,
): Promise<Response> {
  const requestId = requestIdOf(request);
  let context;
  try {
    const principal = authenticate(runtime.store, request.headers);
    const raw = await readJson(request, runtime.config.maxBodyBytes);
    const warnings: string[] = [];
    const body = toChatRequest(raw, warnings);
    applyDefaultModel(runtime, principal.accountId, body);
    context = createRequestContext(requestId, request, principal, 'chat', body, () => clientAddress(request));
    context.warnings.push(...warnings);
  } catch (error) {
    return errorResponse(format, descriptorFromError(error, requestId), requestId);
  }
  return handleChat(runtime.gateway, context, format, request.signal);
}

export function chatCompletions(runtime: Runtime, request: Request, clientAddress: ClientAddress): Promise<Response> {
  return runChat(runtime, request, clientAddress, openAIFormat, (body) => validateChatRequest(body));
}

function validateEmbeddings(body: unknown): EmbeddingsRequest & Pick<ChatRequest, 'provider' | 'routing'> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new KeywayError('invalid_request', { detail: 'The request body must be a JSON object.' });
  const request = body as Record<string, unknown>;
  if (typeof request.model !== 'string' || request.model.length === 0) throw new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
  const input = request.input;
  const valid =
    typeof input === 'string' ||
    (Array.isArray(input) && input.length > 0 && (input.every((item) => typeof item === 'string') || input.every((item) => typeof item === 'number') || input.every((item) => Array.isArray(item))));
  if (!valid) throw invalidField('input', 'expected a string, an array of strings, or token arrays');
  return request as unknown as EmbeddingsRequest & Pick<ChatRequest, 'provider' | 'routing'>;
}

export async function embeddings(runtime: Runtime, request: Request, clientAddress: ClientAddress): Promise<Response> {
  const requestId = requestIdOf(request);
  let context;
  let body;
  try {
    const principal = authenticate(runtime.store, request.headers);
    body = validateEmbeddings(await readJson(request, runtime.config.maxBodyBytes));
    context = createRequestContext(requestId, request, principal, 'embeddings', { ...body, messages: [] } as ChatRequest, () => clientAddress(request));
  } catch (error) {
    return errorAsResponse(error, requestId, runtime.logger);
  }
  const gateway = runtime.gateway;
  try {
    await gateway.prepare(context);
    const { provider: _provider, routing: _routing, ...upstreamBody } = body;
    const success = await gateway.attempt(
      context,
      (adapter, call) => {
        if (adapter.embeddings === undefined) throw new KeywayError('unsupported_feature', { detail: `${adapter.name} does not offer embeddings through Keyway.` });
        return adapter.embeddings(upstreamBody, call);
      },
      request.signal,
    );
    success.done();
    const result = success.value;
    const outcome = gateway.account(context, { status: 200, usage: result.usage, finishReason: undefined, error: undefined, streamed: false });
    const answer = {
      object: 'list',
      data: result.data.map((item) => ({ object: 'embedding', index: item.index, embedding: item.embedding })),
      model: result.model,
      usage: { prompt_tokens: result.usage.inputTokens, total_tokens: result.usage.totalTokens },
    };
    return json(answer, 200, inferenceHeaders(context, result.model, outcome.costUsd));
  } catch (error) {
    const descriptor = descriptorFromError(error, requestId);
    gateway.account(context, { status: descriptor.status, usage: undefined, finishReason: undefined, error: descriptor, streamed: false });
    return errorResponse(openAIFormat, descriptor, requestId, inferenceHeaders(context, undefined, undefined));
  }
}

/** The models the caller may use: what its keys report, or the catalog's list for that provider. */
export function listModels(runtime: Runtime, request: Request): Response {
  const requestId = requestIdOf(request);
  try {
    const principal = authenticate(runtime.store, request.headers);
    const reported = runtime.models.modelsOf(principal.accountId);
    const byModel = new Map<string, string[]>();
    for (const [provider, models] of reported) {
      const names = models.size > 0 ? models : catalogModels(runtime, provider);
      for (const model of names) {
        const providers = byModel.get(model);
        if (providers) providers.push(provider);
        else byModel.set(model, [provider]);
      }
    }
    const data = [];
    for (const [model, providers] of byModel) {
      for (const provider of providers) {
        data.push({ id: providers.length > 1 ? `${provider}/${model}` : model, object: 'model', created: 0, owned_by: provider, provider });
      }
    }
    data.sort((left, right) => left.id.localeCompare(right.id));
    return json({ object: 'list', data }, 200, { 'x-request-id': requestId });
  } catch (error) {
    return errorAsResponse(error, requestId, runtime.logger);
  }
}

function catalogModels(runtime: Runtime, provider: string): Set<string> {
  const names = new Set<string>();
  for (const name of runtime.catalog.names()) if (runtime.catalog.get(provider, name) !== undefined) names.add(name);
  return names;
}
