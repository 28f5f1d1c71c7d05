// A streamed chat tool loop on Claude with reasoning, through the official `openai` client: the
// stream carries the thinking block's signature as `delta.thinking_blocks` (LiteLLM's field, the
// non-streamed answer's `thinking_blocks`), never an empty `reasoning_content`, so the message the
// SDK assembles (finalChatCompletion) replays its signed thinking on the next turn and Claude keeps
// thinking through the loop.

import { beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { anthropicDescriptor } from '../conformance/provider-descriptors.ts';
import { ssePayloads } from '../helpers/sse.ts';
import { useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([anthropicDescriptor]);
let openai: OpenAI;

beforeAll(() => {
  openai = new OpenAI({ baseURL: `${world().gateway.url}/v1`, apiKey: world().gateway.defaultAdminKey, maxRetries: 0 });
});

type Json = Record<string, unknown>;

const MODEL = 'claude-haiku-4-5';
const WEATHER: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const QUESTION: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'Weather in Paris?' };
/** What the Anthropic simulator thinks about the question. */
const THOUGHT = 'Thinking about: Weather in Paris?';
const REQUEST = { model: MODEL, reasoning_effort: 'low' as const, max_tokens: 4000, tools: [WEATHER], messages: [QUESTION] };

/** The first assistant turn the Anthropic simulator was sent on its last call. */
function replayedTurn(): { content: Json[] } {
  const body = world().simulator('anthropic').inferenceRequests().at(-1)?.body as { messages: Array<{ content: Json[] }> };
  return body.messages[1] as { content: Json[] };
}

describe('streamed chat from Claude with reasoning and tools', () => {
  test('the stream carries the signature as delta.thinking_blocks, with the whole block, and no empty reasoning_content', async () => {
    const response = await fetch(`${world().gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${world().gateway.defaultAdminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...REQUEST, stream: true }),
    });
    const deltas = ssePayloads(await response.text())
      .filter((payload) => payload !== '[DONE]')
      .map((payload) => ((JSON.parse(payload) as { choices: Array<{ delta: Json }> }).choices[0]?.delta ?? {}) as Json);
    const reasoning = deltas.filter((delta) => 'reasoning_content' in delta).map((delta) => delta.reasoning_content);
    expect(reasoning.join('')).toBe(THOUGHT);
    expect(reasoning).not.toContain('');
    const blocks = deltas.filter((delta) => 'thinking_blocks' in delta).map((delta) => delta.thinking_blocks);
    expect(blocks).toEqual([[{ type: 'thinking', thinking: THOUGHT, signature: expect.stringMatching(/^sig_/) }]]);
  });

  test("the SDK's assembled message replays its signed thinking: turn 2 keeps thinking on, with no warning", async () => {
    const first = await openai.chat.completions.stream({ ...REQUEST, stream: true }).finalChatCompletion();
    const message = first.choices[0]?.message as OpenAI.ChatCompletionMessage & { thinking_blocks?: Json[]; reasoning_content?: string };
    expect(message.thinking_blocks).toEqual([{ type: 'thinking', thinking: THOUGHT, signature: expect.stringMatching(/^sig_/) }]);
    expect(message.reasoning_content).not.toBe('');
    const call = message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    const { data, response } = await openai.chat.completions
      .create({ ...REQUEST, messages: [QUESTION, message, { role: 'tool', tool_call_id: call.id, content: '21C' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('Tool results: 21C');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    expect(replayedTurn().content.map((block) => block.type)).toEqual(['thinking', 'tool_use']);
  });
});
