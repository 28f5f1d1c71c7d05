import type { FinishReason, UnifiedFinishReason } from '../../core/spec/vocabulary.ts';

// ERROR and TIMEOUT are generation failures Cohere reports inside a 200 answer; they stay visible as
// `error` (with the raw reason) instead of passing for a normal stop.
const UNIFIED: Record<string, UnifiedFinishReason> = {
  COMPLETE: 'stop',
  STOP_SEQUENCE: 'stop',
  MAX_TOKENS: 'length',
  TOOL_CALL: 'tool-calls',
  ERROR: 'error',
  TIMEOUT: 'error',
};

export function mapCohereFinishReason(raw: string | null | undefined): FinishReason {
  if (raw === null || raw === undefined) return { unified: 'other', raw: undefined };
  // Cohere says a stop sequence ended the output, but not which one.
  if (raw === 'STOP_SEQUENCE') return { unified: 'stop', raw, stopSequence: null };
  return { unified: UNIFIED[raw] ?? 'other', raw };
}
