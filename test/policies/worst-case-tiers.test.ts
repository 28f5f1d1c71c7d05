import { describe, expect, test } from 'bun:test';
import type { PricingService } from '../../core/spec/services.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';

// A model billed at dearer rates once the prompt exceeds 200k tokens (Gemini 2.5 Pro, Claude Sonnet 4).
const pricing: PricingService = {
  estimatePromptTokens: () => 0,
  promptTokenBound: () => 0,
  countPromptTokens: async () => undefined,
  countedPromptTokens: () => undefined,
  price: () => ({
    inputPerToken: 1e-6,
    outputPerToken: 10e-6,
    maxOutputTokens: 1000,
    maxInputTokens: 1_000_000,
    worstInputPerToken: 1.25e-6,
    worstOutputPerToken: 10e-6,
    tiers: [{ aboveInputTokens: 200_000, worstInputPerToken: 2.5e-6, worstOutputPerToken: 15e-6 }],
  }),
};
const request = { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 } as ChatRequest;

describe('worst case across long-context tiers', () => {
  test('a prompt that cannot exceed the threshold is reserved at the base rates', () => {
    expect(worstCaseNanos(pricing, request, 'p', 'm', 200_000)).toBe(Math.ceil((200_000 * 1.25e-6 + 1000 * 10e-6) * 1e9));
  });

  test('a prompt whose upper bound crosses the threshold is reserved at the tier rates, input and output', () => {
    expect(worstCaseNanos(pricing, request, 'p', 'm', 200_001)).toBe(Math.ceil((200_001 * 2.5e-6 + 1000 * 15e-6) * 1e9));
  });
});
