// OpenAI's usage shape is the core's inbound vocabulary, so the mapping lives in core.
export { usageFromOpenAI, withServiceTier } from '../../core/wire/openai-shape.ts';
