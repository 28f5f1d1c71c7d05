// The edges of translation, through the gateway against the simulators: what a client reads at the
// edges of a stream (the first chunk of each choice, the last ones, a failure before any content),
// what the request is booked as, and requests a provider refuses unless translated with care.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, flushUsage, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { checkResponsesStream, parseResponsesSse } from '../responses/event-sequence.ts';

const GOOGLE_KEY = 'AIzaSyStreamEndingsGoogleKey0123456789ab';
const PERPLEXITY_KEY = 'pplx-StreamEndingsPerplexityKey000000001';
const OPENAI_KEY = 'sk-proj-StreamEndingsOpenAIKey0000000000001';
let google: SimulatorHandle;
let perplexity: SimulatorHandle;
/** An OpenAI-compatible server that closes its streams without [DONE]. */
let openai: SimulatorHandle;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  google = startGoogleSimulator({ apiKeys: [GOOGLE_KEY] });
  perplexity = startPerplexitySimulator({ apiKeys: [PERPLEXITY_KEY] });
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY], omitDone: true });
  gateway = await startTestGateway({
    env: { KEYWAY_GOOGLE_BASE_URL: google.url, KEYWAY_PERPLEXITY_BASE_URL: perplexity.url, KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` },
  });
  await addProviderKeys(gateway, [
    { name: 'google', api_key: GOOGLE_KEY },
    { name: 'perplexity', api_key: PERPLEXITY_KEY },
    { name: 'openai', api_key: OPENAI_KEY },
  ]);
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await google.stop();
  await perplexity.stop();
  await openai.stop();
});

beforeEach(() => {
  google.reset();
  perplexity.reset();
  openai.reset();
});

const weatherTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

/** The one usage row of a request, by the X-Request-Id it was answered with. */
async function rowOf(response: Response) {
  await flushUsage(gateway);
  const requestId = response.headers.get('x-request-id');
  const rows = (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
  expect(rows).toHaveLength(1);
  return rows[0];
}

/** SSE events as `{event, data}`, for dialects that name their events. */
function namedEvents(text: string): Array<{ event: string | undefined; data: Record<string, unknown> }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice(7);
      const data = lines.find((line) => line.startsWith('data: '))?.slice(6) ?? '{}';
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

// Gemini reports the failure in its first chunk, with no content: Keyway's opening hold keeps the
// stream's start back, so a stream fails before its first byte, answered and booked as the same
// answer not streamed is (it fell back where the request had another candidate). It was streamed, then
// ended by an error event, before the hold (QA18).
describe('a Gemini generation that failed (MALFORMED_FUNCTION_CALL) before any content', () => {
  const ask = { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'please trigger malformed function call' }], tools: [weatherTool] };

  test('not streamed: 502 upstream_error, as before', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', ask);
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('upstream_error');
  });

  test('chat stream: the same 502 before the first byte, no fake stop; booked once as the failure', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', { ...ask, stream: true, stream_options: { include_usage: true } });
    expect(response.status).toBe(502);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('upstream_error');
    expect(body.error.message).toContain('MALFORMED_FUNCTION_CALL');
    expect(response.headers.get('x-provider-used')).toBe('google');
    const row = await rowOf(response);
    expect(row).toMatchObject({ status: 502, errorCode: 'upstream_error', streamed: true, fallbackAttempts: 1, usageEstimated: false });
  });

  test("/v1/messages stream: Anthropic's error answer, no end_turn and no message_stop", async () => {
    const body = {
      model: 'gemini-2.5-flash',
      max_tokens: 200,
      stream: true,
      messages: [{ role: 'user', content: 'please trigger malformed function call' }],
      tools: [{ name: 'get_weather', input_schema: weatherTool.function.parameters }],
    };
    const response = await call(gateway, 'POST', '/v1/messages', body);
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(text).not.toContain('message_stop');
    expect(text).not.toContain('end_turn');
    expect(JSON.parse(text)).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect((await rowOf(response))?.status).toBe(502);
  });
});

describe('a Gemini stream with several candidates (n > 1)', () => {
  test("every choice opens with the role: the openai SDK's stream helper assembles both", async () => {
    const completion = await client.chat.completions
      .stream({ model: 'gemini-2.5-flash', n: 2, messages: [{ role: 'user', content: 'hi there' }] })
      .finalChatCompletion();
    expect(completion.choices.map((choice) => [choice.index, choice.message.role, choice.message.content, choice.finish_reason])).toEqual([
      [0, 'assistant', 'Echo: hi there', 'stop'],
      [1, 'assistant', 'Echo: hi there', 'stop'],
    ]);
  });
});

describe('a Perplexity stream (Sonar sends usage whether asked or not)', () => {
  test('without include_usage: every chunk has a choice, so the everyday loop over choices[0] works; usage_details rides on the finish chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'sonar', stream: true, messages: [{ role: 'user', content: 'hello there' }] });
    let text = '';
    const chunks: Array<Record<string, unknown>> = [];
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.delta.content ?? '';
      expect(chunk.choices).toHaveLength(1);
    }
    expect(text).toBe('Echo: hello there');
    expect(chunks.at(-1)).toMatchObject({ choices: [{ finish_reason: 'stop' }], usage_details: { cost: expect.any(Object) } });
    expect(chunks.filter((chunk) => 'usage' in chunk)).toEqual([]);
  });

  test('with include_usage: one usage chunk, last; usage_details still on the finish chunk', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'sonar',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hello there' }],
    });
    const chunks = (await readSse(response)).filter((payload) => payload !== '[DONE]').map((payload) => JSON.parse(payload) as { choices: unknown[] });
    expect(chunks.filter((chunk) => chunk.choices.length === 0)).toEqual([chunks.at(-1) as { choices: unknown[] }]);
    expect(chunks.at(-1)).toMatchObject({ usage: { total_tokens: expect.any(Number) } });
    expect(chunks.at(-2)).toMatchObject({ choices: [{ finish_reason: 'stop' }], usage: null, usage_details: { cost: expect.any(Object) } });
  });
});

describe('an OpenAI-compatible stream that closes without [DONE] after its finish and usage', () => {
  test('chat: whole, with its usage chunk and [DONE]; booked as a success with the usage reported', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'no terminator' }],
    });
    const payloads = await readSse(response);
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload) as Record<string, unknown>);
    expect(chunks.filter((chunk) => chunk.error !== undefined)).toEqual([]);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
    const row = await rowOf(response);
    expect(row).toMatchObject({ status: 200, errorCode: null, provider: 'openai' });
    expect(row?.outputTokens).toBeGreaterThan(0);
    expect(row?.usageEstimated ?? false).toBe(false);
  });

  test('/v1/messages: message_delta and message_stop, no error event', async () => {
    const response = await call(gateway, 'POST', '/v1/messages', {
      model: 'gpt-4o-mini',
      max_tokens: 100,
      stream: true,
      messages: [{ role: 'user', content: 'no terminator' }],
    });
    const events = namedEvents(await response.text()).map((event) => event.event);
    expect(events).not.toContain('error');
    expect(events.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect((await rowOf(response))?.status).toBe(200);
  });

  test('a stream cut before its finish_reason is still an error', async () => {
    openai.inject({ kind: 'mid_stream_reset', afterChunks: 1 });
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'cut me off please' }],
    });
    const payloads = await readSse(response);
    expect(payloads).not.toContain('[DONE]');
    expect(JSON.parse(payloads.at(-1) ?? '{}')).toMatchObject({ error: { code: 'upstream_error' } });
  });
});

describe('a Gemini request whose user message is empty', () => {
  test('is answered (a placeholder keeps the turn) instead of refused for empty contents', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', {
      model: 'gemini-2.5-flash',
      messages: [
        { role: 'developer', content: [{ type: 'text', text: 'Dev' }] },
        { role: 'user', content: '' },
      ],
    });
    expect(response.status).toBe(200);
    const sent = google.inferenceRequests()[0]?.body as { contents: unknown[] };
    expect(sent.contents).toEqual([{ role: 'user', parts: [{ text: '.' }] }]);
  });
});

// QA15 F3: an Anthropic client's explicit thinking budget used to be dropped for Gemini.
describe("/v1/messages: Anthropic's thinking reaches Gemini as its thinkingConfig", () => {
  const thinkingRequest = (model: string, thinking: Record<string, unknown>) =>
    call(gateway, 'POST', '/v1/messages', { model, max_tokens: 3000, thinking, messages: [{ role: 'user', content: 'think' }] });

  test('enabled: budget_tokens is the thinkingBudget, the thoughts asked for (Anthropic returns thinking blocks), with no warning', async () => {
    const response = await thinkingRequest('gemini-2.5-flash', { type: 'enabled', budget_tokens: 1024 });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    const sent = google.inferenceRequests()[0]?.body as { generationConfig: unknown };
    expect(sent.generationConfig).toEqual({ maxOutputTokens: 3000, thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } });
  });

  test('disabled: no thinking (budget 0)', async () => {
    expect((await thinkingRequest('gemini-2.5-flash', { type: 'disabled' })).status).toBe(200);
    const sent = google.inferenceRequests()[0]?.body as { generationConfig: unknown };
    expect(sent.generationConfig).toEqual({ maxOutputTokens: 3000, thinkingConfig: { thinkingBudget: 0 } });
  });

  test('OpenAI has no equivalent: dropped with a warning, never sent', async () => {
    const response = await thinkingRequest('gpt-4o', { type: 'enabled', budget_tokens: 1024 });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-keyway-warnings')).toContain("ignored 'thinking'");
    expect(openai.inferenceRequests()[0]?.body).not.toHaveProperty('thinking');
  });
});

describe('/v1/responses: a prompt Gemini blocked', () => {
  /** Output items without their ids, which differ from one response to the next. */
  const withoutIds = (output: unknown) => (output as Array<Record<string, unknown>>).map(({ id: _id, ...item }) => item);

  test('has the same output streamed as not: one empty message, incomplete for content_filter', async () => {
    const ask = { model: 'gemini-2.5-flash', input: 'please trigger safety block now' };
    const answered = (await (await call(gateway, 'POST', '/v1/responses', ask)).json()) as Record<string, unknown>;
    const checked = checkResponsesStream(parseResponsesSse(await (await call(gateway, 'POST', '/v1/responses', { ...ask, stream: true })).text()));
    expect(checked.terminal).toBe('response.incomplete');
    expect([checked.response.status, checked.response.incomplete_details]).toEqual([answered.status, answered.incomplete_details]);
    expect(answered.incomplete_details).toEqual({ reason: 'content_filter' });
    expect(withoutIds(checked.response.output)).toEqual(withoutIds(answered.output));
    // The message the filter stopped is incomplete, as OpenAI marks the item of an incomplete response.
    expect(withoutIds(checked.response.output)).toEqual([
      { type: 'message', status: 'incomplete', role: 'assistant', content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }] },
    ]);
  });
});
