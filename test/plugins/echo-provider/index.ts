// An out-of-tree provider: everything it needs at run time reaches it through `services` (the
// compiled binary has no core modules on disk to import). It speaks OpenAI's wire format to an
// upstream at `baseUrl` under its own provider name, `echo`, and serves models named `echo-*`.
// Its failures are plain Errors carrying a `reason`, the way a third party without KeywayError
// reports them; the core keeps the reason for fallback and redacts the message.

import { Type } from '@sinclair/typebox';
import type { CallContext, ChatResult, PluginDefinition, ProviderAdapter, Services, StreamPart } from '../../../core/spec/plugin.ts';

export const ECHO_PROVIDER = 'echo';

const configSchema = Type.Object({ baseUrl: Type.String({ default: 'http://127.0.0.1:9' }) });

class EchoFailure extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function createAdapter(services: Services, baseUrl: string): ProviderAdapter {
  const kit = services.providerKit;
  const post = async (body: Record<string, unknown>, context: CallContext): Promise<Response> => {
    const response = await services.fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${context.credential.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, model: context.model }),
      signal: context.signal,
    });
    if (response.ok) return response;
    const text = await response.text();
    // Deliberately echoes the key: the core must redact it before any client or log sees it.
    throw new EchoFailure(
      `echo upstream refused key ${context.credential.apiKey}: ${text.slice(0, 200)}`,
      kit.reasonFromStatus(response.status),
      response.status,
    );
  };
  return {
    name: ECHO_PROVIDER,
    defaultBaseUrl: baseUrl,
    modelPatterns: [/^echo-/],
    async chat(request, context): Promise<ChatResult> {
      const response = await post({ messages: request.messages, stream: false }, context);
      const body = (await response.json()) as {
        id: string;
        created: number;
        choices: Array<{ message: { content: string }; finish_reason: string }>;
        usage: { prompt_tokens: number; completion_tokens: number };
      };
      const input = body.usage.prompt_tokens;
      const output = body.usage.completion_tokens;
      return {
        id: body.id,
        model: context.model,
        created: body.created,
        choices: body.choices.map((choice, index) => ({
          index,
          message: { role: 'assistant', content: choice.message.content },
          finishReason: { unified: 'stop', raw: choice.finish_reason },
        })),
        usage: { inputTokens: input, outputTokens: output, totalTokens: input + output, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
      };
    },
    async chatStream(request, context): Promise<AsyncIterable<StreamPart>> {
      const response = await post({ messages: request.messages, stream: true, stream_options: { include_usage: true } }, context);
      const body = response.body;
      if (body === null) throw new EchoFailure('echo stream has no body', 'server_error', 502);
      return (async function* parts(): AsyncGenerator<StreamPart> {
        for await (const event of kit.readSseEvents(body, context.signal)) {
          if (event.data === '[DONE]') return;
          const chunk = JSON.parse(event.data) as {
            choices: Array<{ delta: { content?: string } }>;
            usage?: { prompt_tokens: number; completion_tokens: number };
          };
          const text = chunk.choices[0]?.delta.content;
          if (text) yield { type: 'text-delta', index: 0, text };
          if (chunk.usage) {
            const { prompt_tokens: input, completion_tokens: output } = chunk.usage;
            yield {
              type: 'usage',
              usage: {
                inputTokens: input,
                outputTokens: output,
                totalTokens: input + output,
                cachedInputTokens: 0,
                cacheWriteInputTokens: 0,
                reasoningTokens: 0,
              },
            };
          }
        }
      })();
    },
    async listModels() {
      return ['echo-1'];
    },
  };
}

const plugin: PluginDefinition<typeof configSchema> = {
  name: 'example-echo-provider',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'provider',
  description: 'An OpenAI-shaped upstream under the name echo, built only from services',
  configSchema,
  setup: ({ config, services }) => ({ provider: createAdapter(services, config.baseUrl) }),
};

export default plugin;
