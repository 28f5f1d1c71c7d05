import type { FinishReason, UnifiedFinishReason } from '../../core/spec/vocabulary.ts';

// Gemini's finishReason → the unified reason (reference §7.5). Gemini has no tool-call reason: a
// candidate that stops normally with functionCall parts is a tool call.
const UNIFIED: Record<string, UnifiedFinishReason> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  // OTHER and LANGUAGE end a turn without anything the client could act on, like a plain stop.
  OTHER: 'stop',
  LANGUAGE: 'stop',
  SAFETY: 'content-filter',
  RECITATION: 'content-filter',
  BLOCKLIST: 'content-filter',
  PROHIBITED_CONTENT: 'content-filter',
  SPII: 'content-filter',
  IMAGE_SAFETY: 'content-filter',
  IMAGE_PROHIBITED_CONTENT: 'content-filter',
  IMAGE_RECITATION: 'content-filter',
  MALFORMED_FUNCTION_CALL: 'error',
  UNEXPECTED_TOOL_CALL: 'error',
  TOO_MANY_TOOL_CALLS: 'error',
};

export function mapGeminiFinishReason(raw: string | null | undefined, hasFunctionCall: boolean): FinishReason {
  if (raw === null || raw === undefined) return { unified: 'other', raw: undefined };
  if (raw === 'STOP' && hasFunctionCall) return { unified: 'tool-calls', raw };
  return { unified: UNIFIED[raw] ?? 'other', raw };
}

/** A prompt Gemini refused to answer (`promptFeedback.blockReason`) reads as a content filter. */
export function blockedPromptFinishReason(blockReason: string): FinishReason {
  return { unified: 'content-filter', raw: blockReason };
}
