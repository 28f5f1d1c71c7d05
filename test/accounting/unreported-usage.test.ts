// Over HTTP, through an upstream that misreports usage (test/helpers/usage-rewriter.ts: the five
// providers' simulators' real answers with only their token counts broken): a served answer whose
// provider reported no usage, or counts that are text, negative, fractional or absurd, is never booked
// as free nor as billions. A missing or unusable count is booked at Keyway's estimate (the prompt by
// the provider's tokenizer where it has one, the output from the answer's text), an absurd output at
// what the request allowed, a fraction rounded up; the row is flagged and a warning names the request
// (QA14 findings 3, 4, 5, 9 and 10; docs/security.md, "The books").

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { estimateTextTokens } from '../../core/accounting/token-estimate.ts';
import { MAX_USAGE_TOKENS } from '../../core/accounting/usage-limits.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUsageRewriter, type UsageFault, type UsageRewriter } from '../helpers/usage-rewriter.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { book, price, user } from './booking.ts';

const KEYS = {
  openai: 'sk-proj-UnreportedUsageOpenAIKey00000001',
  anthropic: 'sk-ant-api03-UnreportedUsageAnthropicKey01',
  google: 'AIzaSyUnreportedUsageGoogleKey0000000001',
  cohere: 'co-UnreportedUsageCohereKey000000000001',
  perplexity: 'pplx-UnreportedUsagePerplexityKey00001',
};
type Provider = keyof typeof KEYS;
const MODELS: Record<Provider, string> = {
  openai: 'gpt-4o',
  anthropic: 'claude-haiku-4-5-20251001',
  google: 'gemini-2.5-flash',
  cohere: 'command-r-plus',
  perplexity: 'sonar',
};
const PROVIDERS = Object.keys(KEYS) as Provider[];

let gateway: TestGateway;
let simulators: SimulatorHandle[] = [];
const rewriters = {} as Record<Provider, UsageRewriter>;

beforeAll(async () => {
  const started = {
    openai: startOpenAISimulator({ apiKeys: [KEYS.openai] }),
    anthropic: startAnthropicSimulator({ apiKeys: [KEYS.anthropic] }),
    google: startGoogleSimulator({ apiKeys: [KEYS.google] }),
    cohere: startCohereSimulator({ apiKeys: [KEYS.cohere] }),
    perplexity: startPerplexitySimulator({ apiKeys: [KEYS.perplexity] }),
  };
  simulators = Object.values(started);
  for (const provider of PROVIDERS) rewriters[provider] = startUsageRewriter(started[provider].url);
  gateway = await startTestGateway({
    env: {
      KEYWAY_OPENAI_BASE_URL: `${rewriters.openai.url}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: rewriters.anthropic.url,
      KEYWAY_GOOGLE_BASE_URL: rewriters.google.url,
      KEYWAY_COHERE_BASE_URL: rewriters.cohere.url,
      KEYWAY_PERPLEXITY_BASE_URL: rewriters.perplexity.url,
    },
    logLevel: 'info',
  });
  await addProviderKeys(
    gateway,
    PROVIDERS.map((name) => ({ name, api_key: KEYS[name] })),
  );
});

afterAll(async () => {
  await gateway.stop();
  for (const rewriter of Object.values(rewriters)) await rewriter.stop();
  for (const simulator of simulators) await simulator.stop();
});

const QUESTION = 'Name three rivers of Europe and say in one line which sea each of them flows into.';

function bodyOf(provider: Provider, stream: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODELS[provider], stream, messages: [user(QUESTION)], ...extra };
}

/** One call through the rewriter of `provider` with `fault`, read to its end: its row and answer. */
async function bookWith(provider: Provider, fault: UsageFault, body: Record<string, unknown>, path = '/v1/chat/completions') {
  rewriters[provider].fault = fault;
  try {
    return await book(gateway, body, path);
  } finally {
    rewriters[provider].fault = 'none';
  }
}

/** The warning logged for a request, parsed. */
function warningFor(requestId: string): Record<string, unknown> | undefined {
  return gateway.output
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((line) => line.level === 'warn' && line.requestId === requestId);
}

function expectEstimated(row: UsageRecord, honest: UsageRecord): void {
  expect(row.status).toBe(200);
  expect(row.usageEstimated).toBe(true);
  expect(row.inputTokens).toBeGreaterThan(0);
  expect(row.outputTokens).toBeGreaterThan(0);
  expect(row.costUsd as number).toBeGreaterThan(0);
  // The estimate is built to sit above what the provider bills for ordinary text: never a fraction of it.
  expect(row.inputTokens).toBeGreaterThanOrEqual(honest.inputTokens);
  expect(row.outputTokens).toBeGreaterThanOrEqual(honest.outputTokens);
  expect(row.costUsd as number).toBeGreaterThanOrEqual(honest.costUsd as number);
}

describe('an answer whose provider reported no usable counts is booked at the estimate, flagged, never free', () => {
  for (const provider of PROVIDERS) {
    for (const stream of [false, true]) {
      const way = stream ? 'streamed' : 'not streamed';
      test(`${provider}, ${way}: no usage at all, counts as text, negative counts`, async () => {
        const honest = await bookWith(provider, 'none', bodyOf(provider, stream));
        expect(honest.row.usageEstimated).toBe(false);
        for (const fault of ['missing', 'text', 'negative'] as const) {
          const { row } = await bookWith(provider, fault, bodyOf(provider, stream));
          expectEstimated(row, honest.row);
          const warning = warningFor(row.requestId);
          expect(String(warning?.msg)).toContain('no usable token count');
          expect(warning?.provider).toBe(provider);
          expect(warning?.unreported).toHaveProperty('inputTokens');
          expect(warning?.unreported).toHaveProperty('outputTokens');
        }
      });
    }
  }

  // QA18: an OpenAI-compatible server that does not count sends zeros; booked as sent, the answer was free.
  for (const provider of PROVIDERS) {
    test(`${provider}: every count reported as 0, streamed and not, is estimated and flagged, never free`, async () => {
      for (const stream of [false, true]) {
        const honest = await bookWith(provider, 'none', bodyOf(provider, stream));
        const { row } = await bookWith(provider, 'zero', bodyOf(provider, stream));
        expectEstimated(row, honest.row);
        const warning = warningFor(row.requestId);
        expect(warning?.unreported).toMatchObject({ inputTokens: '0', outputTokens: '0' });
      }
    });
  }

  // QA19 L2: a negative or text cost was dropped by the provider's reader, so the list price was booked unflagged.
  const COST_FAULTS = { 'zero-cost': '0', 'negative-cost': '-', 'text-cost': 'NaN' } as const;
  for (const [fault, reported] of Object.entries(COST_FAULTS) as [keyof typeof COST_FAULTS, string][]) {
    test(`Perplexity: a reported cost broken (${fault}) for an answer that used tokens is not believed; the list price and fee are booked, flagged`, async () => {
      for (const stream of [false, true]) {
        const honest = await bookWith('perplexity', 'none', bodyOf('perplexity', stream));
        const { row, costHeader } = await bookWith('perplexity', fault, bodyOf('perplexity', stream));
        expect(row.inputTokens).toBe(honest.row.inputTokens);
        expect(row.outputTokens).toBe(honest.row.outputTokens);
        expect(row.usageEstimated).toBe(true);
        const rates = price('perplexity/sonar');
        const fee = (rates.search_context_cost_per_query as Record<string, number>).search_context_size_low as number;
        expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token + fee, 9);
        // Perplexity's own figure rounds each part to micro-dollars.
        expect(row.costUsd as number).toBeCloseTo(honest.row.costUsd as number, 5);
        if (!stream) expect(Number(costHeader)).toBeCloseTo(row.costUsd as number, 9);
        expect(String((warningFor(row.requestId)?.reported as Record<string, unknown> | undefined)?.providerCostUsd)).toStartWith(reported);
      }
    });
  }

  test("Anthropic's own dialect (/v1/messages), streamed and not: the same", async () => {
    for (const stream of [false, true]) {
      const body = { model: MODELS.anthropic, max_tokens: 300, stream, messages: [{ role: 'user', content: QUESTION }] };
      const honest = await bookWith('anthropic', 'none', body, '/v1/messages');
      const { row } = await bookWith('anthropic', 'missing', body, '/v1/messages');
      expectEstimated(row, honest.row);
    }
  });

  test("OpenAI: the prompt is counted by OpenAI's tokenizer, the output estimated from the answer's text; the header says the booked cost", async () => {
    const body = bodyOf('openai', false);
    const { row, text, costHeader } = await bookWith('openai', 'missing', body);
    const counted = await gateway.runtime.services.pricing.countPromptTokens('openai', 'gpt-4o', body as unknown as ChatRequest);
    expect(counted).toBeNumber();
    expect(row.inputTokens).toBe(counted as number);
    const answer = (JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content ?? '';
    expect(row.outputTokens).toBe(estimateTextTokens(answer));
    const rates = price('gpt-4o');
    expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token, 12);
    expect(Number(costHeader)).toBeCloseTo(row.costUsd as number, 9);
    // The warning names what was sent, never the answer.
    const warning = JSON.stringify(warningFor(row.requestId));
    expect(warning).not.toContain(answer);
    expect(warning).toContain('absent');
  });

  test('the same prompt streamed is counted by the tokenizer too', async () => {
    const body = bodyOf('openai', true);
    const { row } = await bookWith('openai', 'missing', body);
    const counted = await gateway.runtime.services.pricing.countPromptTokens('openai', 'gpt-4o', body as unknown as ChatRequest);
    expect(row.inputTokens).toBe(counted as number);
    expect(row.usageEstimated).toBe(true);
  });
});

describe('counts a provider plausibly sends otherwise are read as its own', () => {
  for (const provider of ['openai', 'anthropic', 'cohere'] as const) {
    test(`${provider}: counts sent as digit strings (protobuf's JSON for 64-bit integers) are the provider's figures, not flagged`, async () => {
      for (const stream of [false, true]) {
        const honest = await bookWith(provider, 'none', bodyOf(provider, stream));
        const { row } = await bookWith(provider, 'digit-strings', bodyOf(provider, stream));
        expect(row.usageEstimated).toBe(false);
        expect({ input: row.inputTokens, output: row.outputTokens, cost: row.costUsd }).toEqual({
          input: honest.row.inputTokens,
          output: honest.row.outputTokens,
          cost: honest.row.costUsd,
        });
      }
    });
  }

  test('fractional counts are rounded up, not flagged: money is never under-counted', async () => {
    for (const stream of [false, true]) {
      const honest = await bookWith('openai', 'none', bodyOf('openai', stream));
      const { row } = await bookWith('openai', 'fractional', bodyOf('openai', stream));
      expect(row.usageEstimated).toBe(false);
      // Each count sent as n + 0.5.
      expect(row.inputTokens).toBe(honest.row.inputTokens + 1);
      expect(row.outputTokens).toBe(honest.row.outputTokens + 1);
      expect(Number.isInteger(row.cachedInputTokens)).toBe(true);
      expect(row.costUsd as number).toBeGreaterThan(honest.row.costUsd as number);
    }
  });
});

// QA19 L1: the cost clamped a part to its whole, but the row kept the provider's parts, unflagged, so a bill
// checked line by line (and the export, and analytics' token sums) showed a negative uncached input.
describe('parts reported above their whole are booked clamped to it, flagged, and priced as the row reads', () => {
  const CASES = [
    { provider: 'openai', path: '/v1/chat/completions', body: (stream: boolean) => bodyOf('openai', stream), price: 'gpt-4o', reasoning: true },
    {
      provider: 'openai',
      path: '/v1/responses',
      body: (stream: boolean) => ({ model: MODELS.openai, stream, input: QUESTION }),
      price: 'gpt-4o',
      reasoning: true,
    },
    {
      provider: 'google',
      path: '/v1/chat/completions',
      body: (stream: boolean) => bodyOf('google', stream),
      price: 'gemini/gemini-2.5-flash',
      reasoning: false,
    },
  ] as const;
  for (const { provider, path, body, price: priceKey, reasoning } of CASES) {
    test(`${provider} ${path}, streamed and not`, async () => {
      const rates = price(priceKey);
      for (const stream of [false, true]) {
        const honest = await bookWith(provider, 'none', body(stream), path);
        expect(honest.row.usageEstimated).toBe(false);
        expect(honest.row.cachedInputTokens).toBeLessThan(honest.row.inputTokens);
        const { row, costHeader } = await bookWith(provider, 'inflated-subsets', body(stream), path);
        expect(row.usageEstimated).toBe(true);
        expect({ input: row.inputTokens, output: row.outputTokens }).toEqual({ input: honest.row.inputTokens, output: honest.row.outputTokens });
        expect(row.cachedInputTokens).toBe(row.inputTokens);
        expect(row.reasoningTokens).toBe(reasoning ? row.outputTokens : honest.row.reasoningTokens);
        const reasoningRate = rates.output_cost_per_reasoning_token ?? rates.output_cost_per_token;
        const expected =
          row.cachedInputTokens * (rates.cache_read_input_token_cost as number) +
          (row.outputTokens - row.reasoningTokens) * rates.output_cost_per_token +
          row.reasoningTokens * reasoningRate;
        expect(row.costUsd as number).toBeCloseTo(expected, 12);
        if (!stream) expect(Number(costHeader)).toBeCloseTo(row.costUsd as number, 9);
        expect(warningFor(row.requestId)?.reported).toMatchObject({ cachedInputTokens: String(row.inputTokens + (provider === 'google' ? 900 : 993)) });
      }
    });
  }
});

describe('absurd output is capped at what the request allowed, not at 10 million', () => {
  const rates = price('gpt-4o');

  test('max_tokens: 50 books 50 output tokens (times n), streamed or not; input keeps the 10 million cap', async () => {
    for (const stream of [false, true]) {
      const { row } = await bookWith('openai', 'huge', bodyOf('openai', stream, { max_tokens: 50 }));
      expect(row.usageEstimated).toBe(true);
      expect(row.outputTokens).toBe(50);
      expect(row.inputTokens).toBe(MAX_USAGE_TOKENS);
      expect(row.costUsd as number).toBeCloseTo(MAX_USAGE_TOKENS * rates.input_cost_per_token + 50 * rates.output_cost_per_token, 9);
      const warning = warningFor(row.requestId);
      expect(String(warning?.msg)).toContain('absurd usage');
      expect(warning?.outputBound).toBe(50);
    }
    const { row } = await bookWith('openai', 'huge', bodyOf('openai', false, { max_completion_tokens: 40, n: 2 }));
    expect(row.outputTokens).toBe(80);
  });

  test("reasoning reported on top (as Gemini and Perplexity report it) adds at most the model's output limit", async () => {
    const { row } = await bookWith('openai', 'huge-everywhere', bodyOf('openai', false, { max_tokens: 50 }));
    expect(row.outputTokens).toBe(50 + 16_384);
    expect(row.usageEstimated).toBe(true);
  });

  test("without max_tokens, the model's output limit from the price data", async () => {
    const { row } = await bookWith('openai', 'huge', bodyOf('openai', false));
    expect(row.outputTokens).toBe(16_384);
    expect(row.usageEstimated).toBe(true);
  });

  test('an honest answer within its allowance is booked exactly as reported', async () => {
    const honest = await bookWith('openai', 'none', bodyOf('openai', false, { max_tokens: 400 }));
    expect(honest.row.usageEstimated).toBe(false);
    expect(honest.row.outputTokens).toBeLessThanOrEqual(400);
  });
});
