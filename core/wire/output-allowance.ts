// The output tokens a request allows each choice, for everything that bounds a request before its call
// (budgets, approvals, token rate limits). A client may send both `max_tokens` and
// `max_completion_tokens`. The translations send the upstream `max_completion_tokens` when both are
// there, and OpenAI-wire upstreams get both as sent (which one OpenAI obeys is unverified). So the
// only figure that is never below what the upstream may generate is the larger of the two. Before
// this helper the worst case read `max_tokens` first while the translations read
// `max_completion_tokens` first, so `max_tokens: 10` beside `max_completion_tokens: 4000` was judged
// on 10 output tokens and served with 4000.

import type { ChatRequest } from '../spec/vocabulary.ts';

function allowance(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The larger of `max_tokens` and `max_completion_tokens` per choice; undefined when neither is a number. */
export function requestedOutputTokens(request: Pick<ChatRequest, 'max_tokens' | 'max_completion_tokens'>): number | undefined {
  const tokens = allowance(request.max_tokens);
  const completionTokens = allowance(request.max_completion_tokens);
  if (tokens === undefined) return completionTokens;
  if (completionTokens === undefined) return tokens;
  return Math.max(tokens, completionTokens);
}

/** The choices a request asks for (`n`): 1 unless it names more. */
export function choicesOf(request: Pick<ChatRequest, 'n'>): number {
  const choices = request.n;
  return typeof choices === 'number' && Number.isFinite(choices) && choices > 1 ? Math.floor(choices) : 1;
}

/**
 * The output tokens a request allows in all: its own allowance per choice, else the model's output
 * limit, times `n`; undefined when neither bounds it. The worst case budgets reserve reads the same
 * figure (policies/cost-cap/worst-case.ts, maxOutputTokens, is this function).
 */
export function outputAllowance(request: Pick<ChatRequest, 'max_tokens' | 'max_completion_tokens' | 'n'>, modelLimit: number | undefined): number | undefined {
  const limit = requestedOutputTokens(request) ?? modelLimit;
  return limit === undefined ? undefined : limit * choicesOf(request);
}
