// The output allowance a substitute is sent. A substitute (a chain's next provider, a cheaper one, a
// class's model) is routing's choice, not the client's: the client set its `max_tokens` for the model
// it named (gpt-5 takes 128 000), and the substitute may take fewer (claude-opus-4-5: 64 000), which
// its provider refuses with a 400. Sent as is, that refusal was set aside and the fallback never
// served (QA20 seed F1). So a substitute gets the allowance held to its model's output limit from the
// catalog, with a warning; the client's own model keeps what the client sent, whose refusal is the
// client's to read.

import type { RequestContext } from '../spec/lifecycle.ts';
import type { CallContext } from '../spec/provider.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';
import { isSubstitute } from './attempts.ts';

/** The output allowance fields of Keyway's chat vocabulary. */
const CHAT_FIELDS = ['max_tokens', 'max_completion_tokens'] as const;
/** The same in the native bodies a dialect sends as is (Anthropic Messages, OpenAI Responses). */
const NATIVE_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/** What the substitute's call needs to know: its provider, and its model's output limit (undefined: none known). */
export interface SubstituteTarget {
  provider: string;
  outputLimit: number | undefined;
}

/** The chat request a candidate is sent: the client's, or a copy whose allowance fits the substitute. */
export function requestForCandidate(context: RequestContext, call: CallContext, target: SubstituteTarget): ChatRequest {
  return heldToLimit(context.request, CHAT_FIELDS, context, call, target);
}

/** A native body (the dialect's own, sent as is) with its allowance fitted the same way. */
export function nativeBodyForCandidate(
  body: Record<string, unknown>,
  context: RequestContext,
  call: CallContext,
  target: SubstituteTarget,
): Record<string, unknown> {
  return heldToLimit(body, NATIVE_FIELDS, context, call, target);
}

function heldToLimit<Body extends object>(body: Body, fields: readonly string[], context: RequestContext, call: CallContext, target: SubstituteTarget): Body {
  const limit = target.outputLimit;
  if (limit === undefined || !isSubstitute({ provider: target.provider, model: call.model }, context.resolution)) return body;
  const values = body as Record<string, unknown>;
  const above = fields.filter((field) => typeof values[field] === 'number' && (values[field] as number) > limit);
  if (above.length === 0) return body;
  const held: Record<string, unknown> = { ...values };
  for (const field of above) held[field] = limit;
  // Named without a field: the client wrote max_tokens, max_completion_tokens or max_output_tokens, by dialect.
  const asked = Math.max(...above.map((field) => values[field] as number));
  const warning = `${target.provider}: the output allowance of ${asked} tokens is above ${call.model}'s output limit; sent ${limit} (the request named ${call.requestedModel ?? context.request.model})`;
  if (!call.warnings.includes(warning)) call.warnings.push(warning);
  return held as Body;
}
