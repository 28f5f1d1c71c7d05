// The Anthropic Messages dialect as a plugin: its routes, its error shape, its translation. It uses
// only the plugin API and the services it is handed, as an out-of-tree dialect would.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { anthropicMessagesDialect, countTokensOperation, messagesOperation } from './dialect.ts';
import { anthropicRefusal, withAnthropicRequestId } from './errors.ts';
import { CountTokensBodySchema, CountTokensSchema, MessageSchemaResponse, MessagesBodySchema } from './schema.ts';

export { anthropicMessagesDialect, countTokensOperation, messagesOperation } from './dialect.ts';
export { anthropicErrorBody, withAnthropicRequestId } from './errors.ts';
export { chatRequestFromMessages, type MessagesTranslation, type MessagesTranslationOptions } from './request.ts';
export {
  anthropicUsageFromUsage,
  contentBlocksFromMessage,
  messagesResponseFromResult,
  stopReasonFromFinish,
  stopSequenceFromFinish,
  stopSequencesOf,
  type AnthropicMessageBody,
  type AnthropicUsageBody,
} from './response.ts';
export { AnthropicStreamEncoder, type AnthropicStreamEncoderOptions } from './stream-encoder.ts';

/** What Anthropic's SDKs send from a browser besides the key (`x-api-key`, which the core reads). */
const BROWSER_HEADERS = ['anthropic-version', 'anthropic-beta', 'anthropic-dangerous-direct-browser-access'];

export const anthropicMessagesPlugin = definePlugin({
  name: 'dialect-anthropic-messages',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'dialect',
  description: 'The Anthropic Messages API (/v1/messages, /v1/messages/count_tokens) over every provider',
  setup({ services }) {
    const countTokens = countTokensOperation(services.errors);
    return {
      dialect: anthropicMessagesDialect,
      routes: [
        {
          method: 'POST',
          path: '/v1/messages',
          refusal: anthropicRefusal,
          corsRequestHeaders: BROWSER_HEADERS,
          summary: 'Anthropic Messages API',
          body: MessagesBodySchema,
          response: MessageSchemaResponse,
          handle: async ({ request, clientAddress }) => withAnthropicRequestId(await services.inference.run(request, messagesOperation, clientAddress)),
        },
        {
          method: 'POST',
          path: '/v1/messages/count_tokens',
          refusal: anthropicRefusal,
          corsRequestHeaders: BROWSER_HEADERS,
          summary: 'Count input tokens (Anthropic)',
          body: CountTokensBodySchema,
          response: CountTokensSchema,
          handle: async ({ request, clientAddress }) => withAnthropicRequestId(await services.inference.run(request, countTokens, clientAddress)),
        },
      ],
    };
  },
});
