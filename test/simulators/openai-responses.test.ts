// The OpenAI simulator's own Responses API (`POST /v1/responses`): the official client reads its
// answers and streams, and it refuses what OpenAI refuses (openai-node's ResponseCreateParams shape,
// max_output_tokens below 16, reasoning parameters on other models, what store: false cannot serve).

import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { startOpenAISimulator } from './openai.ts';
import { postJson, readEvents } from './openai-test-helpers.ts';

const simulator = startOpenAISimulator();
const client = new OpenAI({ baseURL: `${simulator.url}/v1`, apiKey: 'openai-test-key', maxRetries: 0 });
const url = `${simulator.url}/v1/responses`;
const auth = { authorization: 'Bearer openai-test-key' };

beforeEach(() => simulator.reset());
afterAll(() => simulator.stop());

async function refusal(body: Record<string, unknown>): Promise<{ status: number; error: Record<string, unknown> }> {
  const response = await postJson(url, { model: 'gpt-4o', input: 'Hi', ...body }, auth);
  return { status: response.status, error: ((await response.json()) as { error: Record<string, unknown> }).error };
}

describe('answers', () => {
  test('responses.create: a response object with usage, the chat model behind it', async () => {
    const response = await client.responses.create({ model: 'gpt-4o', instructions: 'Be brief.', input: 'Hello there' });
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe('Echo: Hello there');
    expect(response.id).toMatch(/^resp_/);
    expect(response.usage?.total_tokens).toBe((response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0));
  });

  test('a stream: typed events, `event:` equal to the type, sequence numbers from 0 without gaps', async () => {
    const response = await postJson(url, { model: 'gpt-4o', input: 'Stream me', stream: true }, auth);
    const events = (await readEvents(response)).map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return { name: eventLine?.slice('event: '.length), data: JSON.parse(dataLine?.slice('data: '.length) ?? '{}') as Record<string, unknown> };
    });
    expect(events.map((event) => event.data.sequence_number)).toEqual(events.map((_, index) => index));
    expect(events.every((event) => event.name === event.data.type)).toBe(true);
    expect(events[0]?.name).toBe('response.created');
    expect(events.at(-1)?.name).toBe('response.completed');
    const final = await client.responses.stream({ model: 'gpt-4o', input: 'Stream me' }).finalResponse();
    expect(final.output_text).toBe('Echo: Stream me');
  });

  test('web_search: a search item, then the cited answer; reasoning sealed when included', async () => {
    const searched = await client.responses.create({ model: 'gpt-4o', tools: [{ type: 'web_search' }], input: 'Find it' });
    expect(searched.output.map((item) => item.type)).toEqual(['web_search_call', 'message']);
    const thought = await client.responses.create({ model: 'o4-mini', reasoning: { effort: 'low' }, include: ['reasoning.encrypted_content'], input: 'Think' });
    const reasoning = thought.output[0] as { type: string; encrypted_content?: string };
    expect(reasoning.type).toBe('reasoning');
    expect(reasoning.encrypted_content).toStartWith('gAAAAB');
    expect(thought.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });
});

describe('refusals, as OpenAI words them', () => {
  test.each([
    ['an unknown parameter', { routing: {} }, 'routing'],
    ['a Chat Completions tool shape', { tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools[0].name'],
    ['an unknown tool type', { tools: [{ type: 'web_browser' }] }, 'tools[0].type'],
    ['max_output_tokens below 16', { max_output_tokens: 8 }, 'max_output_tokens'],
    ['reasoning on a model without it', { reasoning: { effort: 'low' } }, 'reasoning.effort'],
    ['encrypted reasoning on a model without it', { include: ['reasoning.encrypted_content'] }, 'include'],
    ['an unknown include value', { include: ['everything'] }, 'include[0]'],
    ['a previous response it never stored', { previous_response_id: 'resp_123' }, 'previous_response_id'],
    ['an unknown input item type', { input: [{ type: 'chat_message', content: 'x' }] }, 'input[0].type'],
  ])('%s', async (_name, body, param) => {
    const { status, error } = await refusal(body);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(error.param).toBe(param);
    expect(error.type).toBe('invalid_request_error');
  });

  test('with store: false, reasoning without its encrypted content or an item reference cannot be found', async () => {
    for (const item of [
      { type: 'reasoning', id: 'rs_1', summary: [] },
      { type: 'item_reference', id: 'msg_1' },
    ]) {
      const { status, error } = await refusal({ model: 'o4-mini', store: false, input: [item, { role: 'user', content: 'Hi' }] });
      expect(status).toBe(404);
      expect(String(error.message)).toContain('Items are not persisted when `store` is set to false');
    }
    const tampered = await refusal({ model: 'o4-mini', store: false, input: [{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'forged' }] });
    expect(tampered.error.code).toBe('invalid_encrypted_content');
  });
});
