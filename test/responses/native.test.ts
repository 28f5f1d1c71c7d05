// /v1/responses served by OpenAI's own Responses API (the adapter's `native.responses`): the official
// `openai` client with a hosted web_search tool, encrypted reasoning round-tripping through `include`
// and replay, usage and cost identical to the chat path, fallback to Anthropic before the first byte,
// a stored conversation continued across providers, and what Keyway keeps to itself (store,
// previous_response_id, metadata). Policy and budget refusals are in team-policies.test.ts.

import { bookedRow as bookedRowOf } from '../accounting/booking.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { Response as OpenAIResponse, ResponseInputItem } from 'openai/resources/responses/responses';
import { anthropicDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { rejectionOf, startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, flushUsage } from '../helpers/gateway.ts';
import { costBreakdown, priceOf } from '../../core/catalog/pricing.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

type Json = Record<string, unknown>;

let world: ClientWorld;
let client: OpenAI;
let key: string;

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor, anthropicDescriptor]);
  key = world.gateway.defaultAdminKey;
  client = new OpenAI({ baseURL: `${world.gateway.url}/v1`, apiKey: key, maxRetries: 0 });
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

function upstream(provider: string): { path: string; body: Json } {
  const recorded = world.simulator(provider).inferenceRequests().at(-1);
  return { path: recorded?.path ?? '', body: (recorded?.body ?? {}) as Json };
}

function upstreamCalls(provider: string): number {
  return world.simulator(provider).inferenceRequests().length;
}

function responses(body: unknown): Promise<Response> {
  return call(world.gateway, 'POST', '/v1/responses', body, { key });
}

const REASONING_MODEL = 'o4-mini';
const FALLBACK = { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] };

describe("OpenAI's own Responses API when OpenAI serves", () => {
  test('a hosted web_search tool passes through: the search item and the cited answer come back', async () => {
    const { data: response, response: http } = await client.responses
      .create({ model: openAIDescriptor.model, tools: [{ type: 'web_search' }], input: 'Search for BYOK gateways' })
      .withResponse();
    expect(http.headers.get('x-provider-used')).toBe('openai');
    const sent = upstream('openai');
    expect(sent.path).toBe('/v1/responses');
    expect(sent.body.tools).toEqual([{ type: 'web_search' }]);
    expect(response.output.map((item) => item.type)).toEqual(['web_search_call', 'message']);
    expect(response.output_text).toBe('Searched: Echo: Search for BYOK gateways');
    const message = response.output[1];
    expect(message?.type === 'message' && message.content[0]?.type === 'output_text' ? message.content[0].annotations[0]?.type : undefined).toBe(
      'url_citation',
    );
  });

  test('streamed, the search events pass through in order with their sequence numbers', async () => {
    const answer = await responses({ model: openAIDescriptor.model, stream: true, tools: [{ type: 'web_search_preview' }], input: 'Search the news' });
    expect(answer.status).toBe(200);
    const events = parseResponsesSse(await answer.text());
    const checked = checkResponsesStream(events);
    expect(checked.terminal).toBe('response.completed');
    expect(checked.items.map((item) => item.type)).toEqual(['web_search_call', 'message']);
    expect(events.map((event) => event.data.type)).toContain('response.web_search_call.searching');
    expect(checked.text).toBe('Searched: Echo: Search the news');

    const stream = client.responses.stream({ model: openAIDescriptor.model, tools: [{ type: 'web_search' }], input: 'Search again' });
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('Searched: Echo: Search again');
  });

  test('encrypted reasoning round-trips: include returns it, a replay reaches OpenAI unchanged', async () => {
    const question: ResponseInputItem[] = [{ role: 'user', content: 'Think about the sky' }];
    const first = await client.responses.create({
      model: REASONING_MODEL,
      reasoning: { effort: 'low' },
      include: ['reasoning.encrypted_content'],
      store: false,
      input: question,
    });
    const reasoning = first.output.find((item) => item.type === 'reasoning');
    expect(typeof (reasoning as { encrypted_content?: unknown } | undefined)?.encrypted_content).toBe('string');
    expect(first.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(upstream('openai').body.include).toEqual(['reasoning.encrypted_content']);

    const replay: ResponseInputItem[] = [...question, ...(first.output as ResponseInputItem[]), { role: 'user', content: 'And now?' }];
    const stream = client.responses.stream({
      model: REASONING_MODEL,
      reasoning: { effort: 'low' },
      include: ['reasoning.encrypted_content'],
      store: false,
      input: replay,
    });
    const second = await stream.finalResponse();
    expect(second.output_text).toBe('Echo: And now?');
    const sent = (upstream('openai').body.input as Json[]).find((item) => item.type === 'reasoning');
    expect(sent?.encrypted_content).toBe((reasoning as unknown as Json).encrypted_content);

    // OpenAI checks what it sealed: a tampered replay is its 400, in the spec's error shape.
    const tampered = replay.map((item) => ((item as unknown as Json).type === 'reasoning' ? { ...item, encrypted_content: 'gAAAAB-not-ours' } : item));
    const refused = await rejectionOf(client.responses.create({ model: REASONING_MODEL, store: false, input: tampered as ResponseInputItem[] }));
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('could not be verified');
  });

  test('Keyway keeps what it owns: store stays Keyway side, metadata and routing never go upstream', async () => {
    const answer = await responses({
      model: openAIDescriptor.model,
      input: [
        { role: 'user', content: 'Hello' },
        // Reasoning OpenAI could not find (it stores nothing): dropped; sealed reasoning would pass.
        { type: 'reasoning', id: 'rs_unknown', summary: [] },
        { role: 'user', content: 'Still there?' },
      ],
      metadata: { ticket: 'T-7' },
      provider: 'openai',
      routing: { timeout_ms: 30_000 },
      top_logprobs: 2,
    });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as Json;
    const sent = upstream('openai').body;
    expect(sent.store).toBe(false);
    for (const field of ['metadata', 'provider', 'routing', 'previous_response_id']) expect(sent[field]).toBeUndefined();
    expect(sent.top_logprobs).toBe(2);
    expect((sent.input as Json[]).map((item) => item.type ?? 'message')).toEqual(['message', 'message']);
    expect(body.store).toBe(true);
    expect(body.metadata).toEqual({ ticket: 'T-7' });
    // OpenAI honours top_logprobs: the translation's warning about dropping it does not apply.
    expect(answer.headers.get('x-keyway-warnings')).toBeNull();
    // Stored under the id the client saw.
    const stored = await call(world.gateway, 'GET', `/v1/responses/${String(body.id)}`, undefined, { key });
    expect(((await stored.json()) as Json).id).toBe(body.id);
  });

  test("OpenAI's refusals come back in the spec's error shape, with its param", async () => {
    const answer = await responses({ model: openAIDescriptor.model, input: 'Hi', max_output_tokens: 4 });
    expect(answer.status).toBe(400);
    const error = ((await answer.json()) as { error: Json }).error;
    expect(error.type).toBe('invalid_request_error');
    expect(String(error.message)).toContain('max_output_tokens');
  });
});

describe('usage and cost identical to the chat path for the same tokens', () => {
  const bookedRow = (response: Response) => bookedRowOf(world.gateway, response);

  test.each([false, true])('reasoning and cached tokens (streamed: %p)', async (stream) => {
    const cacheKey = `cache-${String(stream)}`;
    const system = 'You think, then answer briefly.';
    const text = 'Why is the sky blue on a clear day, in a sentence or two?';
    const chatBody = {
      model: REASONING_MODEL,
      stream,
      reasoning_effort: 'medium',
      prompt_cache_key: cacheKey,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: text },
      ],
    };
    // The first call fills the prompt cache; both compared calls then read half the prompt from it.
    await (await call(world.gateway, 'POST', '/v1/chat/completions', chatBody, { key })).text();
    const chat = await call(world.gateway, 'POST', '/v1/chat/completions', chatBody, { key });
    const chatRow = await bookedRow(chat);
    const native = await responses({
      model: REASONING_MODEL,
      stream,
      reasoning: { effort: 'medium' },
      prompt_cache_key: cacheKey,
      instructions: system,
      input: text,
    });
    expect(upstream('openai').path).toBe('/v1/responses');
    const nativeRow = await bookedRow(native);
    expect(nativeRow).toEqual(chatRow);
    expect(chatRow.cachedInputTokens as number).toBeGreaterThan(0);
    expect(chatRow.reasoningTokens as number).toBeGreaterThan(0);
    expect(chatRow.costUsd as number).toBeGreaterThan(0);
  });
});

describe("hosted tools billed per call, at OpenAI's fees, beside the tokens", () => {
  /** The booked row and what the same tokens cost without any tool fee. */
  async function booked(answer: Response): Promise<{ row: Record<string, unknown>; tokensOnly: number }> {
    const row = await bookedRowOf(world.gateway, answer);
    const info = priceOf(world.gateway.runtime.catalog, 'openai', [String(row.model)]);
    if (info === undefined) throw new Error(`no price for ${String(row.model)}`);
    const usage = {
      inputTokens: row.inputTokens as number,
      outputTokens: row.outputTokens as number,
      totalTokens: (row.inputTokens as number) + (row.outputTokens as number),
      cachedInputTokens: row.cachedInputTokens as number,
      cacheWriteInputTokens: 0,
      reasoningTokens: row.reasoningTokens as number,
    };
    return { row, tokensOnly: costBreakdown(info, usage).total };
  }

  test.each([false, true])('one web_search call costs $0.01 more than its tokens (streamed: %p)', async (stream) => {
    const answer = await responses({ model: openAIDescriptor.model, stream, tools: [{ type: 'web_search' }], input: 'Search for BYOK gateways' });
    expect(answer.status).toBe(200);
    const { row, tokensOnly } = await booked(answer);
    expect(tokensOnly).toBeGreaterThan(0);
    expect(row.costUsd as number).toBeCloseTo(tokensOnly + 0.01, 9);
  });

  test('web_search_preview: $0.025 a call on a model that does not reason, $0.01 on one that does', async () => {
    const plain = await booked(await responses({ model: openAIDescriptor.model, tools: [{ type: 'web_search_preview' }], input: 'Search the news' }));
    expect(plain.row.costUsd as number).toBeCloseTo(plain.tokensOnly + 0.025, 9);
    const reasoning = await booked(
      await responses({ model: REASONING_MODEL, reasoning: { effort: 'low' }, tools: [{ type: 'web_search_preview' }], input: 'Search the news' }),
    );
    expect(reasoning.row.reasoningTokens as number).toBeGreaterThan(0);
    expect(reasoning.row.costUsd as number).toBeCloseTo(reasoning.tokensOnly + 0.01, 9);
  });

  test('an answer without a hosted tool call costs its tokens only; an operator override replaces the fee', async () => {
    const unsearched = await booked(await responses({ model: openAIDescriptor.model, input: 'No search here' }));
    expect(unsearched.row.costUsd as number).toBeCloseTo(unsearched.tokensOnly, 9);
    const put = await call(world.gateway, 'PUT', '/v1/platform/prices', {
      provider: 'openai',
      model: openAIDescriptor.model,
      tool_call_costs: { web_search: 0.5 },
    });
    expect(put.status).toBe(200);
    try {
      const listed = await call(world.gateway, 'GET', `/v1/platform/prices?provider=openai&model=${openAIDescriptor.model}`);
      const entry = ((await listed.json()) as { data: Json[] }).data[0];
      expect(entry?.tool_call_costs).toMatchObject({ web_search: 0.5, file_search: 0.0025 });
      const searched = await booked(await responses({ model: openAIDescriptor.model, tools: [{ type: 'web_search' }], input: 'Search, dearly' }));
      expect(searched.row.costUsd as number).toBeCloseTo(searched.tokensOnly + 0.5, 9);
    } finally {
      await call(world.gateway, 'DELETE', `/v1/platform/prices/openai/${openAIDescriptor.model}`);
    }
  });
});

describe('fallback and hosted tools on other providers', () => {
  test.each([false, true])('OpenAI failing before the first byte falls back to Anthropic (streamed: %p)', async (stream) => {
    world.simulator('openai').inject({ kind: 'server_error' });
    const answer = await responses({ model: openAIDescriptor.model, stream, routing: FALLBACK, input: 'Fall back please' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-provider-used')).toBe('anthropic');
    expect(answer.headers.get('x-fallback-attempts')).toBe('1');
    expect(upstream('openai').path).toBe('/v1/responses');
    const response = stream ? checkResponsesStream(parseResponsesSse(await answer.text())).response : ((await answer.json()) as Json);
    expect(response.status).toBe('completed');
    expect(JSON.stringify(response.output)).toContain('Echo: Fall back please');
  });

  test('a hosted tool skips the providers that cannot serve it: no fallback to Anthropic', async () => {
    world.simulator('openai').inject({ kind: 'server_error' });
    const before = upstreamCalls('anthropic');
    const answer = await responses({ model: openAIDescriptor.model, routing: FALLBACK, tools: [{ type: 'web_search' }], input: 'Search' });
    expect(answer.status).toBe(502);
    expect(answer.headers.get('x-fallback-attempts')).toBe('1');
    expect(upstreamCalls('anthropic')).toBe(before);
  });

  test('a hosted tool on a route with no provider that serves it is a 400 naming the tool, before any call', async () => {
    const before = upstreamCalls('anthropic');
    const answer = await responses({ model: anthropicDescriptor.model, tools: [{ type: 'web_search' }], input: 'Search' });
    expect(answer.status).toBe(400);
    const error = ((await answer.json()) as { error: Json }).error;
    expect(error).toMatchObject({ code: 'unsupported_feature', param: 'tools[0].type', type: 'invalid_request_error' });
    expect(upstreamCalls('anthropic')).toBe(before);
  });
});

// QA15 re-verification N4: a field the Responses API does not have (chat's `stop`) vanished silently
// when another provider served; chat and /v1/messages say what they drop.
describe('fields the Responses API does not have', () => {
  test('translated for another provider: dropped with a warning naming each', async () => {
    const answer = await responses({ model: anthropicDescriptor.model, input: 'Hi', stop: ['END'], foo_bar: 1, metadata: { ticket: 'T-8' } });
    expect(answer.status).toBe(200);
    const warnings = answer.headers.get('x-keyway-warnings') ?? '';
    expect(warnings).toContain("ignored 'stop': not a Responses API field");
    expect(warnings).toContain("ignored 'foo_bar': not a Responses API field");
    expect(warnings).not.toContain('metadata');
    expect(upstream('anthropic').body).not.toHaveProperty('stop_sequences');
  });
});

describe('a stored conversation across providers', () => {
  test('OpenAI searches natively, Anthropic continues it by id, OpenAI again gets every item back', async () => {
    const first = (await client.responses.create({
      model: openAIDescriptor.model,
      tools: [{ type: 'web_search' }],
      input: 'Search for tangerines',
    })) as OpenAIResponse;
    expect((first as unknown as Json).store).toBe(true);
    const second = await client.responses.create({ model: anthropicDescriptor.model, previous_response_id: first.id, input: 'Summarise that' });
    expect(second.output_text).toBe('Echo: Summarise that');
    expect(second.previous_response_id).toBe(first.id);
    // Anthropic reads the conversation without OpenAI's search item, whose answer carries what it found.
    expect(JSON.stringify(upstream('anthropic').body)).toContain('Searched: Echo: Search for tangerines');

    const third = await client.responses.stream({ model: openAIDescriptor.model, previous_response_id: second.id, input: 'Thanks' }).finalResponse();
    expect(third.output_text).toBe('Echo: Thanks');
    expect(third.previous_response_id).toBe(second.id);
    const sent = upstream('openai').body;
    expect(sent.previous_response_id).toBeUndefined();
    expect((sent.input as Json[]).map((item) => `${String(item.type)}:${String(item.role ?? '')}`)).toEqual([
      'message:user',
      'web_search_call:',
      'message:assistant',
      'message:user',
      'message:assistant',
      'message:user',
    ]);
  });
});
