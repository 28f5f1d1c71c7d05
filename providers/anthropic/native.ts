// Anthropic's own Messages API for the `messages` dialect (/v1/messages): the caller's body goes
// upstream as sent, for what only Anthropic runs (server tools such as web search and code
// execution, and the tools only its API defines) or returns (citations from search results and
// documents), and the answer and events come back as Anthropic wrote them, server tool blocks,
// `citations` and `citations_delta` included. The dialect uses it only for such requests; every
// other one keeps the translation (plugins/anthropic-messages/dialect.ts).

import type { CallContext, NativeDialectApi, ProviderKeySettings } from '../../core/spec/provider.ts';
import { readJsonBody, upstreamFailure } from '../../core/wire/provider-kit.ts';
import { claudeCapabilities } from './capabilities.ts';
import { parseAnthropicMessage } from './response.ts';
import { anthropicStreamParts } from './stream.ts';

type Json = Record<string, unknown>;

export interface AnthropicMessagesAccess {
  /** POSTs `body` to the Messages API with the key's headers and the client's beta flags. */
  post(path: string, body: Json, context: CallContext, betas?: string): Promise<Response>;
  /** Splits the client's beta flags out of the body, to travel as the `anthropic-beta` header. */
  takeBetas(body: Json): { betas: string | undefined; rest: Json };
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The key's `temperature_default` where the caller set no sampling, as the translation applies it: not
 * with extended thinking (which takes only the default), nor to models that refuse sampling parameters.
 */
function applyKeyDefaults(sent: Json, model: string, settings: ProviderKeySettings): void {
  const fallback = settings.temperature_default;
  if (fallback === undefined || sent.temperature !== undefined || sent.top_p !== undefined) return;
  if (isRecord(sent.thinking) && sent.thinking.type !== 'disabled') return;
  if (claudeCapabilities(model).samplingRemoved) return;
  sent.temperature = Math.min(1, Math.max(0, fallback));
}

export function createAnthropicMessagesApi(access: AnthropicMessagesAccess): NativeDialectApi {
  function prepared(body: Json, context: CallContext, stream: boolean): { betas: string | undefined; sent: Json } {
    const { betas, rest } = access.takeBetas(body);
    const sent: Json = { ...rest, model: context.model };
    applyKeyDefaults(sent, context.model, context.credential.settings);
    // Whether to stream is the runner's choice (the request's `stream`), said here for the upstream.
    if (stream) sent.stream = true;
    else delete sent.stream;
    return { betas, sent };
  }

  return {
    async call(body, context) {
      const { betas, sent } = prepared(body, context, false);
      const answer = await readJsonBody(await access.post('messages', sent, context, betas), 'anthropic', context.signal);
      return { ...parseAnthropicMessage(answer), nativeBody: answer };
    },
    async stream(body, context) {
      const { betas, sent } = prepared(body, context, true);
      const response = await access.post('messages', sent, context, betas);
      if (response.body === null)
        throw upstreamFailure({ provider: 'anthropic', status: response.status, reason: 'server_error', message: 'the stream has no body' });
      return anthropicStreamParts(response.body, context.signal, true);
    },
  };
}
