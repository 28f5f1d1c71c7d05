// Checks the OpenAI simulator's stream framing and every fault kind, with plain fetch.

import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import type { Fault } from './common.ts';
import { startOpenAISimulator } from './openai.ts';
import { dataChunks, fetchFailure, postJson, readEvents, readUntilFailure, splitEvents } from './openai-test-helpers.ts';

const simulator = startOpenAISimulator();
const auth = { authorization: 'Bearer openai-test-key' };
const chatUrl = `${simulator.url}/v1/chat/completions`;
const user = (content: string) => ({ role: 'user', content });
const chat = (body: Record<string, unknown> = {}) => postJson(chatUrl, { model: 'gpt-4o', messages: [user('stream this reply please')], ...body }, auth);
const stream = (body: Record<string, unknown> = {}) => chat({ stream: true, ...body });
const tool = (name: string) => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
});

beforeEach(() => simulator.reset());
afterAll(() => simulator.stop());

describe('streaming', () => {
  test('text: role chunk, content fragments, closing chunk, [DONE], no usage key', async () => {
    const response = await stream();
    expect(response.headers.get('content-type')).toStartWith('text/event-stream');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    const events = await readEvents(response);
    expect(events.every((event) => event.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = dataChunks(events);
    const first = chunks[0]!;
    expect(Object.keys(first).sort()).toEqual(['choices', 'created', 'id', 'model', 'object', 'service_tier', 'system_fingerprint']);
    expect(first.object).toBe('chat.completion.chunk');
    expect(first.choices).toEqual([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    const middle = chunks.slice(1, -1);
    expect(middle.length).toBeGreaterThan(2);
    expect(middle.map((chunk) => chunk.choices[0].delta.content).join('')).toBe('Echo: stream this reply please');
    expect(middle.every((chunk) => chunk.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1)!.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  });

  test('include_usage: every chunk has usage null, then a choices:[] usage chunk before [DONE]', async () => {
    const events = await readEvents(await stream({ stream_options: { include_usage: true } }));
    const chunks = dataChunks(events);
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.prompt_tokens).toBeGreaterThan(0);
    expect(usageChunk.usage.completion_tokens).toBeGreaterThan(0);
    expect(usageChunk.usage.total_tokens).toBe(usageChunk.usage.prompt_tokens + usageChunk.usage.completion_tokens);
    expect(chunks.slice(0, -1).every((chunk) => 'usage' in chunk && chunk.usage === null)).toBe(true);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe('stop');
    expect(events.at(-1)).toBe('data: [DONE]');
  });

  test('omitDone: a server that closes after its last chunk, the usage chunk included, without [DONE]', async () => {
    const withoutDone = startOpenAISimulator({ omitDone: true });
    try {
      const response = await postJson(
        `${withoutDone.url}/v1/chat/completions`,
        { model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, messages: [user('no terminator')] },
        auth,
      );
      const events = await readEvents(response);
      expect(events).not.toContain('data: [DONE]');
      const chunks = dataChunks(events);
      expect(chunks.at(-1)!.choices).toEqual([]);
      expect(chunks.at(-2)!.choices[0].finish_reason).toBe('stop');
    } finally {
      await withoutDone.stop();
    }
  });

  test('include_usage:false sends no usage chunk', async () => {
    const chunks = dataChunks(await readEvents(await stream({ stream_options: { include_usage: false } })));
    expect(chunks.some((chunk) => 'usage' in chunk)).toBe(false);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('stop');
  });

  test('tool calls: header fragment then argument pieces, keyed by index', async () => {
    const events = await readEvents(await stream({ messages: [user('call all tools')], tools: [tool('first_tool'), tool('second_tool')] }));
    const chunks = dataChunks(events);
    const deltas = chunks.flatMap((chunk) => chunk.choices.flatMap((choice: any) => choice.delta.tool_calls ?? []));
    const headers = deltas.filter((delta: any) => delta.id !== undefined);
    expect(headers.map((delta: any) => [delta.index, delta.type, delta.function.name, delta.function.arguments])).toEqual([
      [0, 'function', 'first_tool', ''],
      [1, 'function', 'second_tool', ''],
    ]);
    for (const index of [0, 1]) {
      const pieces = deltas.filter((delta: any) => delta.index === index && delta.id === undefined);
      expect(pieces.length).toBeGreaterThan(1);
      expect(pieces.every((delta: any) => Object.keys(delta).sort().join() === 'function,index')).toBe(true);
      expect(JSON.parse(pieces.map((delta: any) => delta.function.arguments).join(''))).toEqual({ city: 'sample' });
    }
    expect(chunks.at(-1)!.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' });
  });

  test('truncated streams close with finish_reason length', async () => {
    const chunks = dataChunks(await readEvents(await stream({ max_tokens: 3 })));
    expect(
      chunks
        .slice(1, -1)
        .map((chunk) => chunk.choices[0].delta.content)
        .join(''),
    ).toBe('Echo: stream');
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('length');
  });
});

describe('faults', () => {
  async function errorOf(response: Response): Promise<Record<string, unknown>> {
    return ((await response.json()) as { error: Record<string, unknown> }).error;
  }

  test('rate_limit: 429 rate_limit_exceeded with retry-after and x-ratelimit headers', async () => {
    simulator.inject({ kind: 'rate_limit', retryAfterSeconds: 2 });
    const response = await chat();
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(response.headers.get('x-ratelimit-reset-requests')).toBe('2s');
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('2000000');
    const error = await errorOf(response);
    expect(error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests', param: null });
    expect(String(error.message)).toStartWith('Rate limit reached for gpt-4o in organization');
    expect((await chat()).status).toBe(200);
  });

  test('rate_limit defaults to one second', async () => {
    simulator.inject({ kind: 'rate_limit' });
    const response = await chat();
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.headers.get('x-ratelimit-reset-requests')).toBe('1s');
  });

  const statusFaults: Array<[Fault, number, Record<string, unknown>]> = [
    [{ kind: 'quota' }, 429, { type: 'insufficient_quota', code: 'insufficient_quota' }],
    [{ kind: 'server_error' }, 500, { type: 'server_error', code: null }],
    [{ kind: 'overloaded' }, 503, { type: 'server_error' }],
    [{ kind: 'auth' }, 401, { type: 'invalid_request_error', code: 'invalid_api_key' }],
    [{ kind: 'model_not_found' }, 404, { code: 'model_not_found', message: 'The model `gpt-4o` does not exist or you do not have access to it.' }],
    [{ kind: 'context_length' }, 400, { code: 'context_length_exceeded', param: 'messages' }],
  ];
  for (const [fault, status, expected] of statusFaults) {
    test(`${fault.kind}: ${status}`, async () => {
      simulator.inject(fault);
      const response = await chat();
      expect(response.status).toBe(status);
      expect(response.headers.get('retry-after')).toBeNull();
      const error = await errorOf(response);
      expect(error).toMatchObject(expected);
      if (fault.kind === 'context_length') expect(String(error.message)).toStartWith("This model's maximum context length is");
    });
  }

  test('status: any status, body and headers', async () => {
    simulator.inject({ kind: 'status', status: 418, body: { custom: true }, headers: { 'x-custom': 'yes' } });
    const response = await chat();
    expect(response.status).toBe(418);
    expect(response.headers.get('x-custom')).toBe('yes');
    expect(await response.json()).toEqual({ custom: true });
    simulator.inject({ kind: 'status', status: 502, body: '<html>bad gateway</html>' });
    expect(await (await chat()).text()).toBe('<html>bad gateway</html>');
  });

  test('delay: waits, then answers normally', async () => {
    simulator.inject({ kind: 'delay', delayMs: 150 });
    const started = performance.now();
    const response = await chat();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(response.status).toBe(200);
  });

  test('reset: the fetch itself fails with a connection error', async () => {
    simulator.inject({ kind: 'reset' });
    const failure = await fetchFailure(chat());
    expect(failure).toBeDefined();
    expect((failure as { code?: string }).code).toBe('ECONNRESET');
    expect((await chat()).status).toBe(200);
  });

  test('mid_stream_error: N content chunks, the error data line, no [DONE]', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const response = await stream();
    expect(response.status).toBe(200);
    const events = await readEvents(response);
    expect(events).toHaveLength(4);
    expect(dataChunks(events.slice(0, 3)).map((chunk) => chunk.choices[0].delta.content)).toEqual(['', 'Echo: st', 'ream thi']);
    expect(JSON.parse(events[3]!.slice('data: '.length))).toEqual({
      error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null },
    });
  });

  test('mid_stream_reset: N content chunks, then the body read fails', async () => {
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 2 });
    const response = await stream();
    expect(response.status).toBe(200);
    const { text, failure } = await readUntilFailure(response);
    expect(failure).toBeDefined();
    const events = splitEvents(text);
    expect(events).toHaveLength(3);
    expect(text).not.toContain('[DONE]');
    expect(text).not.toContain('finish_reason":"stop"');
  });

  test('mid_stream_reset after zero chunks still delivers the headers and role chunk', async () => {
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 0 });
    const response = await stream();
    const { text, failure } = await readUntilFailure(response);
    expect(failure).toBeDefined();
    expect(dataChunks(splitEvents(text)).map((chunk) => chunk.choices[0].delta)).toEqual([{ role: 'assistant', content: '' }]);
  });

  test('slow_stream: delay between chunks, full stream delivered', async () => {
    simulator.inject({ kind: 'slow_stream', delayMs: 20 });
    const started = performance.now();
    const events = await readEvents(await stream());
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(performance.now() - started).toBeGreaterThanOrEqual(20 * (events.length - 1));
  });

  test('stream faults are consumed by non-stream requests, which answer normally', async () => {
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 0 }, { kind: 'mid_stream_reset', afterChunks: 0 }, { kind: 'slow_stream', delayMs: 1 });
    for (let attempt = 0; attempt < 3; attempt++) expect((await chat()).status).toBe(200);
    expect(simulator.state.queue).toHaveLength(0);
  });

  test('faults apply to embeddings too', async () => {
    simulator.inject({ kind: 'server_error' }, { kind: 'reset' });
    const embed = () => postJson(`${simulator.url}/v1/embeddings`, { model: 'text-embedding-3-small', input: 'x' }, auth);
    expect((await embed()).status).toBe(500);
    expect(await fetchFailure(embed())).toBeDefined();
    expect((await embed()).status).toBe(200);
  });

  test('sticky faults apply until cleared; bad keys are refused before faults are taken', async () => {
    simulator.setSticky({ kind: 'overloaded' });
    expect((await chat()).status).toBe(503);
    expect((await chat()).status).toBe(503);
    simulator.setSticky(undefined);
    simulator.inject({ kind: 'server_error' });
    expect((await postJson(chatUrl, { model: 'gpt-4o', messages: [user('x')] }, { authorization: 'Bearer wrong-key-1234' })).status).toBe(401);
    expect((await chat()).status).toBe(500);
  });

  test('faults can be queued through the control API', async () => {
    await postJson(`${simulator.url}/__sim/faults`, { faults: [{ kind: 'quota' }] });
    expect((await chat()).status).toBe(429);
  });
});
