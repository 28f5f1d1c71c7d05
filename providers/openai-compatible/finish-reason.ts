// OpenAI's finish reasons are the core's inbound vocabulary, so the mapping lives in core.
export { finishReasonFromOpenAI as mapOpenAIFinishReason } from '../../core/wire/openai-shape.ts';
