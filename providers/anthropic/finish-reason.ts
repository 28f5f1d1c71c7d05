import type { FinishReason, UnifiedFinishReason } from '../../core/spec/vocabulary.ts';

/**
 * Anthropic `stop_reason` → unified finish reason (reference §7.5). `pause_turn` means a long
 * server-tool turn was paused; Keyway does not loop on it, so the client sees a normal stop and the
 * raw value tells it to send the turn back.
 */
const UNIFIED: Record<string, UnifiedFinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool-calls',
  refusal: 'content-filter',
};

/** `stopSequence`: the answer's `stop_sequence`, the matched string, kept when the reason is `stop_sequence`. */
export function mapAnthropicStopReason(raw: string | null | undefined, stopSequence?: unknown): FinishReason {
  if (raw === null || raw === undefined) return { unified: 'other', raw: undefined };
  const reason: FinishReason = { unified: UNIFIED[raw] ?? 'other', raw };
  if (raw === 'stop_sequence') reason.stopSequence = typeof stopSequence === 'string' ? stopSequence : null;
  return reason;
}

/** Whether a raw finish reason is already one of Anthropic's own stop reasons. */
export function isAnthropicStopReason(raw: string | undefined): boolean {
  return raw !== undefined && Object.hasOwn(UNIFIED, raw);
}
