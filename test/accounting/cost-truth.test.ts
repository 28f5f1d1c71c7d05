// Over HTTP, against the five providers' simulators: the usage row of a streamed call equals the row
// of the same call not streamed (cache reads, Anthropic's 5-minute and 1-hour cache writes, reasoning
// tokens included), in both inbound dialects, and its cost is the list price computed here by hand
// from core/catalog/model-prices.json; an unpriced model is booked unpriced; Perplexity's search fee
// is charged whether or not Perplexity reports a cost.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import { addProviderKeys, call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { accounted, book, keyedGatewayPerFile, nextRequestId, price, rowOf, user } from './booking.ts';

const KEYS = {
  openai: 'sk-proj-CostTruthOpenAIKey000000000000001',
  anthropic: 'sk-ant-api03-CostTruthAnthropicKey00000001',
  google: 'AIzaSyCostTruthGoogleKey00000000000000001',
  cohere: 'co-CostTruthCohereKey0000000000000000001',
  perplexity: 'pplx-CostTruthPerplexityKey000000000001',
};
const UNPRICED_MODEL = 'acme-ft-unpriced-1';

const gatewayOfFile = keyedGatewayPerFile(() => {
  const openai = startOpenAISimulator({
    apiKeys: [KEYS.openai],
    models: [...OPENAI_DEFAULT_MODELS, UNPRICED_MODEL, 'gpt-4o-mini-2024-07-18', 'gpt-4o-search-preview'],
  });
  const anthropic = startAnthropicSimulator({ apiKeys: [KEYS.anthropic] });
  const google = startGoogleSimulator({ apiKeys: [KEYS.google] });
  const cohere = startCohereSimulator({ apiKeys: [KEYS.cohere] });
  const perplexity = startPerplexitySimulator({ apiKeys: [KEYS.perplexity] });
  return {
    simulators: [openai, anthropic, google, cohere, perplexity],
    options: {
      env: {
        KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
        KEYWAY_ANTHROPIC_BASE_URL: anthropic.url,
        KEYWAY_GOOGLE_BASE_URL: google.url,
        KEYWAY_COHERE_BASE_URL: cohere.url,
        KEYWAY_PERPLEXITY_BASE_URL: perplexity.url,
      },
      logLevel: 'info',
    },
  };
}, KEYS);
let gateway: TestGateway;
beforeAll(() => {
  gateway = gatewayOfFile();
});

/** The same body, not streamed then streamed: the two rows, checked equal. */
async function bothWays(body: Record<string, unknown>, path = '/v1/chat/completions'): Promise<UsageRecord> {
  const plain = await book(gateway, { ...body, stream: false }, path);
  const streamed = await book(gateway, { ...body, stream: true }, path);
  expect(plain.row.streamed).toBe(false);
  expect(streamed.row.streamed).toBe(true);
  expect(accounted(streamed.row)).toEqual(accounted(plain.row));
  // The non-streamed answer says what it cost; the header is the booked figure.
  expect(Number(plain.costHeader)).toBeCloseTo(plain.row.costUsd as number, 9);
  return plain.row;
}

const LONG_DOCUMENT = 'Keyway books every token at its own list price, cached or not, streamed or not. '.repeat(80);

describe('OpenAI', () => {
  test('cache reads at the cache-read rate, the rest at the input rate; streamed equals not streamed', async () => {
    const body = { model: 'gpt-4o', prompt_cache_key: 'cost-truth-openai', messages: [user(`Summarise: ${LONG_DOCUMENT}`)] };
    await book(gateway, body);
    const row = await bothWays(body);
    const rates = price('gpt-4o');
    expect(row.cachedInputTokens).toBeGreaterThan(0);
    expect(row.costUsd as number).toBeCloseTo(
      (row.inputTokens - row.cachedInputTokens) * rates.input_cost_per_token +
        row.cachedInputTokens * (rates.cache_read_input_token_cost as number) +
        row.outputTokens * rates.output_cost_per_token,
      12,
    );
  });

  test('reasoning tokens are part of completion_tokens: priced once, at the output rate', async () => {
    const row = await bothWays({ model: 'o4-mini', reasoning_effort: 'low', messages: [user('Think about the price of cached tokens.')] });
    const rates = price('o4-mini');
    expect(row.reasoningTokens).toBeGreaterThan(0);
    expect(row.reasoningTokens).toBeLessThan(row.outputTokens);
    expect(rates.output_cost_per_reasoning_token).toBeUndefined();
    expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token, 12);
  });
});

describe('OpenAI web search', () => {
  test('a search fee the table lists beside a model is charged only when the request searched, at the size it asked for', async () => {
    const dated = price('gpt-4o-mini-2024-07-18');
    expect(dated.search_context_cost_per_query).toBeDefined();
    const plain = await bothWays({ model: 'gpt-4o-mini-2024-07-18', messages: [user('No search here.')] });
    expect(plain.costUsd as number).toBeCloseTo(plain.inputTokens * dated.input_cost_per_token + plain.outputTokens * dated.output_cost_per_token, 12);

    const search = price('gpt-4o-search-preview');
    const fees = search.search_context_cost_per_query as Record<string, number>;
    const tokens = (row: UsageRecord) => row.inputTokens * search.input_cost_per_token + row.outputTokens * search.output_cost_per_token;
    const high = await bothWays({ model: 'gpt-4o-search-preview', web_search_options: { search_context_size: 'high' }, messages: [user('Search deeply.')] });
    expect(high.costUsd as number).toBeCloseTo(tokens(high) + (fees.search_context_size_high as number), 12);
    const unnamed = await bothWays({ model: 'gpt-4o-search-preview', web_search_options: {}, messages: [user('Search.')] });
    expect(unnamed.costUsd as number).toBeCloseTo(tokens(unnamed) + (fees.search_context_size_medium as number), 12);
  });
});

/** An Anthropic request whose system prompt is cached for `ttl`; `tag` makes the cache entry its own (same length, other key). */
function cachedClaude(tag: string, ttl: '5m' | '1h' | undefined): Record<string, unknown> {
  const cacheControl = ttl === undefined ? { type: 'ephemeral' } : { type: 'ephemeral', ttl };
  return {
    model: 'claude-sonnet-4-5-20250929',
    max_tokens: 200,
    messages: [
      { role: 'system', content: [{ type: 'text', text: `Document ${tag}: ${LONG_DOCUMENT}`, cache_control: cacheControl }] },
      user('What does Keyway book?'),
    ],
  };
}

function claudeCost(row: UsageRecord): number {
  const rates = price('claude-sonnet-4-5-20250929');
  const oneHour = row.cacheWrite1hTokens ?? 0;
  return (
    (row.inputTokens - row.cachedInputTokens - row.cacheWriteTokens) * rates.input_cost_per_token +
    row.cachedInputTokens * (rates.cache_read_input_token_cost as number) +
    (row.cacheWriteTokens - oneHour) * (rates.cache_creation_input_token_cost as number) +
    oneHour * (rates.cache_creation_input_token_cost_above_1hr as number) +
    row.outputTokens * rates.output_cost_per_token
  );
}

/** Two fresh cache entries of the same size, one per way of calling: both calls write the cache. */
async function writesBothWays(ttl: '5m' | '1h' | undefined, tags: [string, string]): Promise<UsageRecord> {
  const plain = await book(gateway, { ...cachedClaude(tags[0], ttl), stream: false });
  const streamed = await book(gateway, { ...cachedClaude(tags[1], ttl), stream: true });
  expect(accounted(streamed.row)).toEqual(accounted(plain.row));
  return plain.row;
}

describe('Anthropic', () => {
  test('5-minute cache writes at the 5-minute write rate', async () => {
    const row = await writesBothWays(undefined, ['A', 'B']);
    expect(row.cacheWriteTokens).toBeGreaterThan(0);
    expect(row.cacheWrite1hTokens).toBe(0);
    expect(row.costUsd as number).toBeCloseTo(claudeCost(row), 12);
  });

  test('1-hour cache writes at the 1-hour rate, booked in cache_write_1h_tokens', async () => {
    const row = await writesBothWays('1h', ['C', 'D']);
    expect(row.cacheWriteTokens).toBeGreaterThan(0);
    expect(row.cacheWrite1hTokens).toBe(row.cacheWriteTokens);
    const rates = price('claude-sonnet-4-5-20250929');
    expect(rates.cache_creation_input_token_cost_above_1hr as number).toBeGreaterThan(rates.cache_creation_input_token_cost as number);
    expect(row.costUsd as number).toBeCloseTo(claudeCost(row), 12);
  });

  test('cache reads at the cache-read rate', async () => {
    await book(gateway, cachedClaude('E', undefined));
    const row = await bothWays(cachedClaude('E', undefined));
    expect(row.cachedInputTokens).toBeGreaterThan(0);
    expect(row.cacheWriteTokens).toBe(0);
    expect(row.costUsd as number).toBeCloseTo(claudeCost(row), 12);
  });

  test('thinking is part of output_tokens: priced once, at the output rate', async () => {
    const plain = await bothWays({ model: 'claude-sonnet-4-5-20250929', max_tokens: 2048, reasoning_effort: 'low', messages: [user('Think first.')] });
    const without = await book(gateway, { model: 'claude-sonnet-4-5-20250929', max_tokens: 2048, messages: [user('Think first.')] });
    expect(plain.outputTokens).toBeGreaterThan(without.row.outputTokens);
    expect(plain.costUsd as number).toBeCloseTo(claudeCost(plain), 12);
  });
});

describe('Google', () => {
  test('implicit cache reads and thoughts (candidatesTokenCount excludes them; booked inside the output, once)', async () => {
    const body = { model: 'gemini-2.5-flash', reasoning_effort: 'low', messages: [{ role: 'system', content: LONG_DOCUMENT }, user('What does Keyway book?')] };
    await book(gateway, body);
    const row = await bothWays(body);
    const rates = price('gemini/gemini-2.5-flash');
    expect(row.cachedInputTokens).toBeGreaterThan(0);
    expect(row.reasoningTokens).toBeGreaterThan(0);
    expect(row.reasoningTokens).toBeLessThan(row.outputTokens);
    expect(row.costUsd as number).toBeCloseTo(
      (row.inputTokens - row.cachedInputTokens) * rates.input_cost_per_token +
        row.cachedInputTokens * (rates.cache_read_input_token_cost as number) +
        (row.outputTokens - row.reasoningTokens) * rates.output_cost_per_token +
        row.reasoningTokens * (rates.output_cost_per_reasoning_token as number),
      12,
    );
  });
});

describe('Cohere', () => {
  test('billed units; cached tokens at the input rate when the model has no cache-read rate', async () => {
    const body = { model: 'command-r-plus', messages: [user(`Summarise: ${LONG_DOCUMENT}`)] };
    await book(gateway, body);
    const row = await bothWays(body);
    const rates = price('command-r-plus');
    expect(row.cachedInputTokens).toBeGreaterThan(0);
    expect(rates.cache_read_input_token_cost).toBeUndefined();
    expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token, 12);
  });
});

describe('Perplexity, reporting its own cost', () => {
  test("the provider's total_cost (request fee included) is booked as is", async () => {
    const row = await bothWays({ model: 'sonar', messages: [user('What is new in cost tracking?')] });
    const rates = price('perplexity/sonar');
    const fee = (rates.search_context_cost_per_query as Record<string, number>).search_context_size_low as number;
    // The simulator rounds its cost block to micro-dollars, as Perplexity does.
    expect(row.costUsd as number).toBeCloseTo(row.inputTokens * rates.input_cost_per_token + row.outputTokens * rates.output_cost_per_token + fee, 6);
  });
});

describe('the two inbound dialects book the same row', () => {
  test('Anthropic upstream: /v1/messages equals /v1/chat/completions, cache writes included', async () => {
    const chat = await book(gateway, { ...cachedClaude('F', undefined), stream: false });
    const messages = await book(
      gateway,
      {
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 200,
        system: [{ type: 'text', text: `Document G: ${LONG_DOCUMENT}`, cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: 'What does Keyway book?' }],
      },
      '/v1/messages',
    );
    expect(accounted(messages.row)).toEqual(accounted(chat.row));
    expect(messages.row.cacheWriteTokens).toBeGreaterThan(0);
    // The Messages client sees the writes by lifetime, as Anthropic reports them.
    expect((JSON.parse(messages.text) as { usage: Record<string, unknown> }).usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: messages.row.cacheWriteTokens,
      ephemeral_1h_input_tokens: 0,
    });
    const streamed = await book(
      gateway,
      {
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 200,
        stream: true,
        system: [{ type: 'text', text: `Document H: ${LONG_DOCUMENT}`, cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: 'What does Keyway book?' }],
      },
      '/v1/messages',
    );
    expect(accounted(streamed.row)).toEqual(accounted(chat.row));
  });

  test('OpenAI upstream: /v1/messages equals /v1/chat/completions', async () => {
    const question = 'How are cached tokens priced?';
    const chat = await book(gateway, { model: 'gpt-4o-mini', max_tokens: 100, messages: [user(question)] });
    const messages = await book(gateway, { model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: question }] }, '/v1/messages');
    const streamed = await book(
      gateway,
      { model: 'gpt-4o-mini', max_tokens: 100, stream: true, messages: [{ role: 'user', content: question }] },
      '/v1/messages',
    );
    expect(accounted(messages.row)).toEqual(accounted(chat.row));
    expect(accounted(streamed.row)).toEqual(accounted(chat.row));
    const rates = price('gpt-4o-mini');
    expect(chat.row.costUsd as number).toBeCloseTo(chat.row.inputTokens * rates.input_cost_per_token + chat.row.outputTokens * rates.output_cost_per_token, 12);
  });
});

describe('the two inbound dialects book the same row for the other providers', () => {
  for (const model of ['gemini-2.5-flash', 'command-r-plus', 'sonar']) {
    test(`${model}: /v1/messages equals /v1/chat/completions, streamed or not`, async () => {
      const question = `How is ${model} priced?`;
      // The first call fills any prompt cache, so the three compared calls see the same cache state.
      await book(gateway, { model, max_tokens: 100, messages: [user(question)] });
      const chat = await book(gateway, { model, max_tokens: 100, messages: [user(question)] });
      const messages = await book(gateway, { model, max_tokens: 100, messages: [{ role: 'user', content: question }] }, '/v1/messages');
      const streamed = await book(gateway, { model, max_tokens: 100, stream: true, messages: [{ role: 'user', content: question }] }, '/v1/messages');
      expect(chat.row.costUsd as number).toBeGreaterThan(0);
      expect(accounted(messages.row)).toEqual(accounted(chat.row));
      expect(accounted(streamed.row)).toEqual(accounted(chat.row));
    });
  }
});

describe('an unpriced model', () => {
  test('is booked with costUsd null, never $0, and the answer carries no cost header', async () => {
    const plain = await book(gateway, { model: UNPRICED_MODEL, provider: 'openai', messages: [user('hello')] });
    expect(plain.row.inputTokens).toBeGreaterThan(0);
    expect(plain.row.costUsd).toBeNull();
    expect(plain.costHeader).toBeNull();
    const streamed = await book(gateway, { model: UNPRICED_MODEL, provider: 'openai', stream: true, messages: [user('hello')] });
    expect(streamed.row.costUsd).toBeNull();
  });

  test('a request that used nothing cost $0 (known), not unpriced', async () => {
    const requestId = nextRequestId();
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: 'not a list' },
      { headers: { 'x-request-id': requestId } },
    );
    expect(response.status).toBe(400);
    expect((await rowOf(gateway, requestId)).costUsd).toBe(0);
  });

  test('GET /v1/usage/me counts unpriced requests instead of folding them into $0', async () => {
    const response = await call(gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: OPERATOR_KEY });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      totals: { requests: number; unpriced_requests: number; cost_usd: number | null };
      by_model: Array<{ model: string | null; requests: number; unpriced_requests: number; cost_usd: number | null }>;
    };
    const unpriced = body.by_model.find((entry) => entry.model === UNPRICED_MODEL);
    expect(unpriced).toMatchObject({ requests: 2, unpriced_requests: 2, cost_usd: null });
    expect(body.totals.unpriced_requests).toBe(2);
    expect(body.totals.cost_usd as number).toBeGreaterThan(0);
    expect(body.by_model.find((entry) => entry.model === 'gpt-4o')).toMatchObject({ unpriced_requests: 0 });
  });
});
