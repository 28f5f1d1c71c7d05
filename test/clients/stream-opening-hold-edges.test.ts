// The opening hold's edges (docs/routing.md, "The opening hold"), found by the QA19 wire review:
// - a client that leaves while its stream's opening is held left a stream its provider had begun: the
//   row books that provider, key and the prompt's estimate, as a client leaving after the first byte
//   does, never "no provider, $0" (it was booked so: the hold made the disconnect look like one before
//   any answer);
// - on the Responses API, OpenAI's empty item and content-part starts (`response.output_item.added`
//   with nothing in it, `response.content_part.added` with empty text) come before any content, as
//   Anthropic's empty block start does: they are held too, so a failure right after them still falls back.

import { describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { rowOf } from '../accounting/booking.ts';
import { eventTypesUntilFailure, openingHoldWorld } from './opening-hold-gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

const OPENAI_KEY = 'sk-proj-OpeningHoldEdgesUpstreamKey00001';
const ANTHROPIC_KEY = 'sk-ant-api03-OpeningHoldEdgesUpstream01';
/** Long enough that a client leaving a moment after the opening arrived is still inside the window. */
const LONG_HOLD_MS = 10_000;

const { simulators, gateways } = openingHoldWorld({ openai: OPENAI_KEY, anthropic: ANTHROPIC_KEY }, { standard: undefined, longHold: String(LONG_HOLD_MS) });
const { openai, anthropic } = simulators;

let sequence = 0;
const requestId = (name: string): string => `opening-hold-edges-${name}-${process.pid}-${++sequence}`;

async function untilUpstreamCalled(simulator: SimulatorHandle): Promise<void> {
  for (let waited = 0; waited < 10_000 && simulator.inferenceRequests().length === 0; waited += 10) await Bun.sleep(10);
}

describe('a client that leaves inside the hold', () => {
  test.each([
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'leave while held' }] }],
    ['/v1/messages', { max_tokens: 100, messages: [{ role: 'user', content: 'leave while held' }] }],
  ])('%s: booked 499 to the provider and key that had begun the stream, at the prompt estimate', async (path, body) => {
    // Anthropic sends its opening (message_start, ping, an empty block start) at once and its content
    // only later: a reasoning model thinking. The client gives up first.
    let release: () => void = () => undefined;
    anthropic.inject({ kind: 'opening_pause', until: new Promise<void>((resolve) => (release = resolve)), maxMs: LONG_HOLD_MS });
    const id = requestId('leave');
    const leaving = new AbortController();
    const answer = fetch(`${gateways.longHold.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateways.longHold.defaultAdminKey}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: 'claude-haiku-4-5', stream: true, ...body }),
      signal: leaving.signal,
    }).catch((error: unknown) => error);
    await untilUpstreamCalled(anthropic);
    // The opening is on its way at once; the hold keeps it from the client for LONG_HOLD_MS.
    await Bun.sleep(500);
    leaving.abort();
    await answer;
    const row = await rowOf(gateways.longHold, id);
    release();
    const keys = (await gateways.longHold.runtime.store.listUsage('default')).filter((candidate) => candidate.requestId === id);
    expect(keys).toHaveLength(1);
    expect(row).toMatchObject({ status: 499, errorCode: 'client_closed', provider: 'anthropic', byok: true, usageEstimated: true, fallbackAttempts: 0 });
    expect(row.providerKeyId).toStartWith('pk_');
    expect(row.model).toStartWith('claude-haiku-4-5');
    expect(row.inputTokens).toBeGreaterThan(0);
    expect(row.outputTokens).toBe(0);
    expect(row.costUsd ?? 0).toBeGreaterThan(0);
  });
});

describe("the Responses API's empty item and part starts are held", () => {
  test.each([
    // created, in_progress, output_item.added (a message, nothing in it), content_part.added (empty text), then the error
    ['an empty message item and its empty text part', 'gpt-4o-mini', 2, {}],
    // created, in_progress, output_item.added (a reasoning item, no summary), then the error
    ['an empty reasoning item', 'o4-mini', 1, { reasoning: { effort: 'low' } }],
  ])('%s, then an error: falls back, and the OpenAI SDK sees one clean stream', async (_name, model, afterChunks, extra) => {
    openai.inject({ kind: 'mid_stream_error', afterChunks });
    const id = requestId('responses');
    const client = new OpenAI({ baseURL: `${gateways.standard.url}/v1`, apiKey: gateways.standard.defaultAdminKey, maxRetries: 0 });
    const { data: stream, response } = await client.responses
      .create(
        {
          model,
          input: 'held then served',
          stream: true,
          ...extra,
          routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] },
        } as never as OpenAI.Responses.ResponseCreateParamsStreaming,
        { headers: { 'x-request-id': id } },
      )
      .withResponse();
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-fallback-attempts')).toBe('1');
    expect(text).toBe('Echo: held then served');
    expect(types.filter((type) => type === 'response.created')).toHaveLength(1);
    expect(types).not.toContain('error');
    expect(types.at(-1)).toBe('response.completed');
    expect(openai.inferenceRequests()).toHaveLength(1);
    expect(anthropic.inferenceRequests()).toHaveLength(1);
    expect(await rowOf(gateways.standard, id)).toMatchObject({ status: 200, provider: 'anthropic', fallbackAttempts: 1 });
  });

  test('a function call item is content: it is not held, and an error after it ends the stream', async () => {
    // A tool call's item start names the function: generated, as Anthropic's tool_use block start is.
    openai.inject({ kind: 'mid_stream_error', afterChunks: 1 });
    const client = new OpenAI({ baseURL: `${gateways.standard.url}/v1`, apiKey: gateways.standard.defaultAdminKey, maxRetries: 0 });
    const stream = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'weather in Paris?',
      stream: true,
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }],
      tool_choice: 'required',
      routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] },
    } as never as OpenAI.Responses.ResponseCreateParamsStreaming);
    const { types, failure } = await eventTypesUntilFailure(stream);
    expect(types).toContain('response.output_item.added');
    expect(failure).toBeDefined();
    expect(anthropic.inferenceRequests()).toHaveLength(0);
  });
});
