// Each provider's usage reader names an input or output count it could not read (absent where the
// provider always sends it, text, null, not finite) in `Usage.unreported`, keeps 0 in its place for the
// client's answer, reads digit strings, and leaves alone what a provider leaves out on purpose
// (Gemini's zero counts, Anthropic's null cache fields): core/wire/usage-count.ts.

import { describe, expect, test } from 'bun:test';
import type { OpenAIUsage } from '../../core/spec/vocabulary.ts';
import { usageFromOpenAI } from '../../core/wire/openai-shape.ts';
import { describeReported, reportedCount } from '../../core/wire/usage-count.ts';
import { mergeStreamUsage, usageFromAnthropic, type AnthropicUsage } from '../../providers/anthropic/usage.ts';
import { usageFromCohere, type CohereUsage } from '../../providers/cohere/usage.ts';
import { usageFromGemini, type GeminiUsageMetadata } from '../../providers/google/usage.ts';
import { usageFromResponses } from '../../providers/openai/responses.ts';
import { unreportedPerplexityUsage, usageFromPerplexity } from '../../providers/perplexity/usage.ts';

const loose = <T>(value: Record<string, unknown>): T => value as T;

describe('one count', () => {
  test("numbers as sent (range is the account stage's), digit strings parsed, anything else not a count", () => {
    expect([12, -3, 10.5, 1e15].map(reportedCount)).toEqual([12, -3, 10.5, 1e15]);
    expect(reportedCount('12')).toBe(12);
    for (const value of ['abc', '1e3', '-4', ' 12', '', null, undefined, true, {}, Number.POSITIVE_INFINITY, Number.NaN, '1234567890123456'])
      expect(reportedCount(value)).toBeUndefined();
  });

  test("what was sent is described without the upstream's text", () => {
    expect([undefined, null, -20, 'sk-secret-looking', true, []].map(describeReported)).toEqual([
      'absent',
      'null',
      '-20',
      'text of 17 characters',
      'boolean',
      'array',
    ]);
  });
});

describe('OpenAI and its family', () => {
  test('a normal usage is read as before, with nothing unreported', () => {
    const usage = usageFromOpenAI({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18, prompt_tokens_details: { cached_tokens: 4 } });
    expect(usage).toEqual({ inputTokens: 11, outputTokens: 7, totalTokens: 18, cachedInputTokens: 4, cacheWriteInputTokens: 0, reasoningTokens: 0 });
  });

  test('text, null and absent counts are 0 for the client and named; digit strings are counts', () => {
    expect(usageFromOpenAI(loose<OpenAIUsage>({ prompt_tokens: 'abc', completion_tokens: '12', total_tokens: 'x' }))).toMatchObject({
      inputTokens: 0,
      outputTokens: 12,
      unreported: { inputTokens: 'text of 3 characters' },
    });
    expect(usageFromOpenAI(loose<OpenAIUsage>({ prompt_tokens: null, completion_tokens: null }))?.unreported).toEqual({
      inputTokens: 'null',
      outputTokens: 'null',
    });
    expect(usageFromOpenAI(loose<OpenAIUsage>({ total_tokens: 9 }))?.unreported).toEqual({ inputTokens: 'absent', outputTokens: 'absent' });
  });

  test("the Responses API's usage reads the same way; an answer without any is unreported whole", () => {
    expect(usageFromResponses({ input_tokens: 5, output_tokens: 3, total_tokens: 8 })).toEqual({
      inputTokens: 5,
      outputTokens: 3,
      totalTokens: 8,
      cachedInputTokens: 0,
      cacheWriteInputTokens: 0,
      reasoningTokens: 0,
    });
    expect(usageFromResponses({ input_tokens: 'abc', output_tokens: 3 }).unreported).toEqual({ inputTokens: 'text of 3 characters' });
    expect(usageFromResponses(undefined).unreported).toEqual({ inputTokens: 'absent', outputTokens: 'absent' });
  });

  test('Perplexity: counts named as for OpenAI; an answer without usage still names its search depth', () => {
    expect(usageFromPerplexity(loose({ prompt_tokens: 'abc', completion_tokens: 4 }))?.unreported).toEqual({ inputTokens: 'text of 3 characters' });
    expect(unreportedPerplexityUsage()).toMatchObject({ searchContextSize: 'low', unreported: { inputTokens: 'absent', outputTokens: 'absent' } });
    expect(unreportedPerplexityUsage('high').searchContextSize).toBe('high');
  });
});

describe('Anthropic', () => {
  test('null cache fields are unused caches, not unreported counts; a stream merges as before', () => {
    const usage = usageFromAnthropic({ input_tokens: 20, output_tokens: 9, cache_creation_input_tokens: null, cache_read_input_tokens: null });
    expect(usage.unreported).toBeUndefined();
    expect(usage).toMatchObject({ inputTokens: 20, outputTokens: 9 });
    // Anthropic's message_delta sends its input counts as null: message_start's stand.
    const merged = usageFromAnthropic(
      mergeStreamUsage({ input_tokens: 20, output_tokens: 1, cache_read_input_tokens: 5 }, loose<AnthropicUsage>({ output_tokens: 30, input_tokens: null })),
    );
    expect(merged).toMatchObject({ inputTokens: 25, outputTokens: 30, cachedInputTokens: 5 });
    expect(merged.unreported).toBeUndefined();
  });

  test('input or output tokens missing or not counts are named, in a body and in a stream', () => {
    expect(usageFromAnthropic(undefined).unreported).toEqual({ inputTokens: 'absent', outputTokens: 'absent' });
    expect(usageFromAnthropic(loose<AnthropicUsage>({ input_tokens: 'abc', output_tokens: '12' }))).toMatchObject({
      outputTokens: 12,
      unreported: { inputTokens: 'text of 3 characters' },
    });
    expect(usageFromAnthropic(mergeStreamUsage(undefined, undefined)).unreported).toEqual({ inputTokens: 'absent', outputTokens: 'absent' });
    // A negative count is a count: the account stage judges its range (estimated there).
    expect(usageFromAnthropic(mergeStreamUsage({ input_tokens: -500, output_tokens: 1 }, { output_tokens: -20 }))).toMatchObject({
      inputTokens: -500,
      outputTokens: -20,
    });
  });
});

describe('Gemini', () => {
  test('a count left out is 0, as Gemini leaves out zeros: nothing unreported', () => {
    const usage = usageFromGemini({ promptTokenCount: 12, totalTokenCount: 12 });
    expect(usage).toMatchObject({ inputTokens: 12, outputTokens: 0 });
    expect(usage?.unreported).toBeUndefined();
  });

  test('a count sent as something else is named on its side: the prompt, or the output (candidates or thoughts)', () => {
    expect(usageFromGemini(loose<GeminiUsageMetadata>({ promptTokenCount: 'abc', candidatesTokenCount: 5 }))?.unreported).toEqual({
      inputTokens: 'text of 3 characters',
    });
    expect(usageFromGemini(loose<GeminiUsageMetadata>({ promptTokenCount: 5, candidatesTokenCount: 4, thoughtsTokenCount: null }))?.unreported).toEqual({
      outputTokens: 'null',
    });
    expect(usageFromGemini(loose<GeminiUsageMetadata>({ promptTokenCount: '5', candidatesTokenCount: '4' }))).toMatchObject({
      inputTokens: 5,
      outputTokens: 4,
    });
  });
});

describe('Cohere', () => {
  test('billed units, else tokens; a side neither reports is named; floats rounded up', () => {
    expect(usageFromCohere({ billed_units: { input_tokens: 18.0, output_tokens: 4.2 } })).toEqual({
      inputTokens: 18,
      outputTokens: 5,
      totalTokens: 23,
      cachedInputTokens: 0,
      cacheWriteInputTokens: 0,
      reasoningTokens: 0,
    });
    expect(usageFromCohere({ billed_units: { input_tokens: null }, tokens: { input_tokens: 70, output_tokens: 3 } })).toMatchObject({
      inputTokens: 70,
      outputTokens: 3,
    });
    expect(usageFromCohere(loose<CohereUsage>({ billed_units: { input_tokens: 'abc' } }))?.unreported).toEqual({
      inputTokens: 'text of 3 characters',
      outputTokens: 'absent',
    });
  });
});
