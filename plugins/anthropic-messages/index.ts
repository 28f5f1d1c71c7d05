// Anthropic Messages API ⇄ Keyway's vocabulary, for the `/v1/messages` route: requests in,
// results and stream parts out. The route itself lives with the core HTTP server.

export { chatRequestFromMessages, type MessagesTranslation, type MessagesTranslationOptions } from './request.ts';
export {
  anthropicUsageFromUsage,
  contentBlocksFromMessage,
  messagesResponseFromResult,
  stopReasonFromFinish,
  type AnthropicMessageBody,
  type AnthropicUsageBody,
} from './response.ts';
export { AnthropicStreamEncoder, type AnthropicStreamEncoderOptions } from './stream-encoder.ts';
