// `POST /v1/messages` and `/v1/messages/count_tokens`: the Anthropic Messages dialect on top of the
// core pipeline, so Anthropic SDKs and Claude Code work unchanged against any provider.

import { authenticate } from '../../core/credentials/authenticate.ts';
import { anthropicErrorBody, descriptorFromError, KeywayError } from '../../core/errors.ts';
import { readJson } from '../../core/http/kit/body.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { runChat } from '../../core/http/inference-routes.ts';
import { errorResponse, inferenceHeaders } from '../../core/lifecycle/respond.ts';
import type { InboundFormat } from '../../core/wire/openai-dialect.ts';
import type { RouteExtension, Runtime } from '../../core/runtime.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { requestIdOf } from '../../core/http/kit/respond.ts';
import { chatRequestFromMessages } from './request.ts';
import { messagesResponseFromResult } from './response.ts';
import { AnthropicStreamEncoder } from './stream-encoder.ts';

export const anthropicMessagesFormat: InboundFormat = {
  name: 'anthropic',
  encodeResult: (result) => messagesResponseFromResult(result),
  createStreamEncoder: (context, model) => new AnthropicStreamEncoder({ model, requestId: context.requestId }),
  errorBody: (descriptor, requestId) => anthropicErrorBody(descriptor, requestId),
};

const BETA_FIELD = 'betas';

/** Translation depends on who serves: Anthropic keeps thinking blocks, cache_control and signatures. */
function translator(runtime: Runtime, request: Request) {
  return (body: unknown, warnings: string[]): ChatRequest => {
    const model = typeof (body as { model?: unknown })?.model === 'string' ? ((body as { model: string }).model) : '';
    const providerField = typeof (body as { provider?: unknown })?.provider === 'string' ? (body as { provider: string }).provider : undefined;
    let target: string | undefined;
    try {
      target = runtime.gateway.peekProvider(authenticate(runtime.store, request.headers).accountId, model, providerField);
    } catch {
      target = undefined;
    }
    const translation = chatRequestFromMessages(body, { targetProvider: target });
    warnings.push(...translation.warnings);
    const beta = request.headers.get('anthropic-beta');
    if (beta !== null && target === 'anthropic') translation.request[BETA_FIELD] = beta;
    if (providerField !== undefined) translation.request.provider = providerField;
    const routing = (body as { routing?: unknown }).routing;
    if (routing !== undefined && routing !== null && typeof routing === 'object') translation.request.routing = routing as ChatRequest['routing'];
    return translation.request;
  };
}

async function countTokens(runtime: Runtime, request: Request): Promise<Response> {
  const requestId = requestIdOf(request);
  let context;
  let body: Record<string, unknown>;
  try {
    const principal = authenticate(runtime.store, request.headers);
    body = (await readJson(request, runtime.config.maxBodyBytes)) as Record<string, unknown>;
    if (typeof body.model !== 'string') throw new KeywayError('missing_field', { param: 'model' }, { param: 'model' });
    context = createRequestContext(requestId, request, principal, 'messages', { model: body.model, messages: [], provider: body.provider as string | undefined }, () => undefined);
  } catch (error) {
    return errorResponse(anthropicMessagesFormat, descriptorFromError(error, requestId), requestId);
  }
  try {
    await runtime.gateway.prepare(context);
    const success = await runtime.gateway.attempt(
      context,
      (adapter, call) => {
        if (adapter.countTokens === undefined) throw new KeywayError('unsupported_feature', { detail: `Token counting is offered for Anthropic models only, not ${adapter.name}.` });
        const { provider: _provider, routing: _routing, ...native } = body;
        const beta = request.headers.get('anthropic-beta');
        return adapter.countTokens(beta === null ? native : { ...native, [BETA_FIELD]: beta }, call);
      },
      request.signal,
    );
    success.done();
    return new Response(JSON.stringify({ input_tokens: success.value }), { status: 200, headers: { 'content-type': 'application/json', ...inferenceHeaders(context, undefined, undefined) } });
  } catch (error) {
    return errorResponse(anthropicMessagesFormat, descriptorFromError(error, requestId), requestId, inferenceHeaders(context, undefined, undefined));
  }
}

export const anthropicMessagesRoutes: RouteExtension = (app, runtime) => {
  app.post('/v1/messages', ({ request }) => runChat(runtime, request, () => undefined, anthropicMessagesFormat, translator(runtime, request)), { parse: 'none' });
  app.post('/v1/messages/count_tokens', ({ request }) => countTokens(runtime, request), { parse: 'none' });
};
