import type { FinishReason, UnifiedFinishReason } from '../../core/vocabulary.ts';

const UNIFIED: Record<string, UnifiedFinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
};

export function mapOpenAIFinishReason(raw: string | null | undefined): FinishReason {
  if (raw === null || raw === undefined) return { unified: 'other', raw: undefined };
  return { unified: UNIFIED[raw] ?? 'other', raw };
}
