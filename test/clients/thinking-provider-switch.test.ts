// A thinking tool loop that moves to Claude: the official `@anthropic-ai/sdk` with thinking enabled
// gets turn 1 from Gemini or a Cohere reasoning model (a thinking block with an empty signature, then
// a tool_use), replays that turn unchanged to a Claude model with thinking still enabled, and gets an
// answer: Keyway leaves out the unsigned thinking block it wrote (Anthropic refuses it), and with no
// thinking left to replay before the tool call, leaves thinking off with a warning, as the chat route
// does for `reasoning_effort`.

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { anthropicDescriptor, cohereDescriptor, googleDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([anthropicDescriptor, googleDescriptor, cohereDescriptor]);
let anthropic: Anthropic;

beforeAll(() => {
  anthropic = sdkClients(world()).anthropic;
});

type Json = Record<string, unknown>;

const TOOLS: Anthropic.Tool[] = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
const QUESTION: Anthropic.MessageParam = { role: 'user', content: 'Weather in Paris?' };
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };

function lastAnthropicBody(): Json {
  return (world().simulator('anthropic').inferenceRequests().at(-1)?.body ?? {}) as Json;
}

/** The next turn: the first answer replayed as it came, and a result for each of its tool calls. */
function replay(first: Anthropic.Message): Anthropic.MessageParam[] {
  const uses = first.content.filter((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
  return [
    QUESTION,
    { role: 'assistant', content: first.content },
    { role: 'user', content: uses.map((use) => ({ type: 'tool_result' as const, tool_use_id: use.id, content: '21C' })) },
  ];
}

describe('a thinking tool loop moved from another provider to Claude', () => {
  for (const [first, streamed] of [
    ['gemini-2.5-flash', false],
    ['gemini-2.5-flash', true],
    ['command-a-reasoning-08-2025', false],
  ] as const) {
    test(`turn 1 on ${first}${streamed ? ' (streamed)' : ''}, turn 2 on claude-haiku-4-5 with thinking: answered, unsigned thinking left out, thinking off with a warning`, async () => {
      const request = { model: first, max_tokens: 4000, thinking: THINKING, tools: TOOLS, messages: [QUESTION] };
      const answer = streamed ? await anthropic.messages.stream(request).finalMessage() : await anthropic.messages.create(request);
      expect(answer.content.map((block) => block.type)).toEqual(['thinking', 'tool_use']);
      expect((answer.content[0] as Anthropic.ThinkingBlock).signature).toBe('');

      const { data, response } = await anthropic.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 4000, thinking: THINKING, tools: TOOLS, messages: replay(answer) })
        .withResponse();
      expect((data.content.at(-1) as Anthropic.TextBlock).text).toBe('Tool results: 21C');
      const warnings = response.headers.get('x-keyway-warnings') ?? '';
      expect(warnings).toContain('anthropic: left out thinking blocks without a signature');
      expect(warnings).toContain("anthropic: ignored 'thinking' (the last assistant tool call has no thinking blocks to replay)");
      const sent = lastAnthropicBody();
      expect(sent.thinking).toBeUndefined();
      const replayed = (sent.messages as Json[])[1] as { content: Json[] };
      expect(replayed.content.map((block) => block.type)).toEqual(['tool_use']);
    });
  }

  test("Claude's own signed thinking is still replayed, with thinking on, and no warning", async () => {
    const request = { model: 'claude-haiku-4-5', max_tokens: 4000, thinking: THINKING, tools: TOOLS, messages: [QUESTION] };
    const first = await anthropic.messages.create(request);
    expect((first.content[0] as Anthropic.ThinkingBlock).signature).not.toBe('');
    const { data, response } = await anthropic.messages.create({ ...request, messages: replay(first) }).withResponse();
    expect((data.content.at(-1) as Anthropic.TextBlock).text).toBe('Tool results: 21C');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    const sent = lastAnthropicBody();
    expect(sent.thinking).toEqual(THINKING);
    expect(((sent.messages as Json[])[1] as { content: Json[] }).content.map((block) => block.type)).toEqual(['thinking', 'tool_use']);
  });
});
