// A client that asks to see the model's reasoning gets it whichever provider thinks: the official
// `@anthropic-ai/sdk` with `thinking` enabled gets thinking blocks from Gemini (which returns its
// thoughts only with `includeThoughts`) and from a Cohere reasoning model, streamed or not; the
// `openai` client gets `reasoning_content` on chat and a reasoning summary on /v1/responses. A client
// that did not ask gets no thought text, and Gemini is not asked for any.

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { cohereDescriptor, googleDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([googleDescriptor, cohereDescriptor]);
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(() => {
  ({ anthropic, openai } = sdkClients(world()));
});

const GEMINI = 'gemini-2.5-flash';
const QUESTION = 'What is six times seven?';
/** What the simulators think, and Gemini's count of it (four characters a token). */
const THOUGHT = `Thinking about: ${QUESTION}`;
const THOUGHT_TOKENS = Math.ceil(THOUGHT.length / 4);

function blocksOfType<T extends Anthropic.ContentBlock['type']>(message: Anthropic.Message, type: T): Array<Extract<Anthropic.ContentBlock, { type: T }>> {
  return message.content.filter((block): block is Extract<Anthropic.ContentBlock, { type: T }> => block.type === type);
}

/** The thinkingConfig Gemini was sent on the last call. */
function lastThinkingConfig(): unknown {
  const body = world().simulator('google').inferenceRequests().at(-1)?.body as { generationConfig?: { thinkingConfig?: unknown } } | undefined;
  return body?.generationConfig?.thinkingConfig;
}

describe('Anthropic SDK with thinking enabled → Gemini', () => {
  const request = {
    model: GEMINI,
    max_tokens: 2048,
    thinking: { type: 'enabled' as const, budget_tokens: 1024 },
    messages: [{ role: 'user' as const, content: QUESTION }],
  };

  test('the answer opens with a thinking block holding the thoughts the output tokens pay for', async () => {
    const message = await anthropic.messages.create(request);
    expect(lastThinkingConfig()).toEqual({ thinkingBudget: 1024, includeThoughts: true });
    expect(message.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(blocksOfType(message, 'thinking')).toEqual([{ type: 'thinking', thinking: THOUGHT, signature: '' }]);
    expect(blocksOfType(message, 'text')[0]?.text).toBe(`Echo: ${QUESTION}`);
    expect(message.usage.output_tokens).toBe(Math.ceil(`Echo: ${QUESTION}`.length / 4) + THOUGHT_TOKENS);
  });

  test('streamed, the thinking arrives as thinking deltas and assembles into the same blocks', async () => {
    const stream = anthropic.messages.stream(request);
    let thinking = '';
    stream.on('thinking', (delta) => {
      thinking += delta;
    });
    const final = await stream.finalMessage();
    expect(thinking).toBe(THOUGHT);
    expect(final.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(blocksOfType(final, 'thinking')).toEqual([{ type: 'thinking', thinking: THOUGHT, signature: '' }]);
    expect(final.usage.output_tokens).toBe(Math.ceil(`Echo: ${QUESTION}`.length / 4) + THOUGHT_TOKENS);
  });

  test('without thinking, or with its display omitted, Gemini is asked for no thoughts and none are shown', async () => {
    const plain = await anthropic.messages.create({ model: GEMINI, max_tokens: 256, messages: [{ role: 'user', content: QUESTION }] });
    expect(lastThinkingConfig()).toBeUndefined();
    expect(plain.content.map((block) => block.type)).toEqual(['text']);
    const omitted = await anthropic.messages.create({ ...request, thinking: { type: 'enabled', budget_tokens: 1024, display: 'omitted' } } as never);
    expect(lastThinkingConfig()).toEqual({ thinkingBudget: 1024 });
    expect((omitted as Anthropic.Message).content.map((block) => block.type)).toEqual(['text']);
  });

  test('a tool loop on Gemini 3 sends the thinking blocks back: they are left out quietly, the thought signatures ride in the tool ids', async () => {
    const tools: Anthropic.Tool[] = [
      { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    ];
    const question: Anthropic.MessageParam[] = [{ role: 'user', content: 'Please call all tools for Paris' }];
    const base = { model: 'gemini-3-pro-preview', max_tokens: 4096, thinking: { type: 'enabled' as const, budget_tokens: 2048 }, tools };
    for (const stream of [false, true]) {
      const first = stream
        ? await anthropic.messages.stream({ ...base, messages: question }).finalMessage()
        : await anthropic.messages.create({ ...base, messages: question });
      expect(first.content.map((block) => block.type)).toEqual(['thinking', 'tool_use']);
      const [use] = blocksOfType(first, 'tool_use');
      const followUp: Anthropic.MessageParam[] = [
        ...question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use?.id ?? '', content: '18C' }] },
      ];
      const { data: second, response } = await anthropic.messages.create({ ...base, messages: followUp }).withResponse();
      expect(blocksOfType(second, 'text')[0]?.text).toBe('Tool results: 18C');
      expect(response.headers.get('x-keyway-warnings') ?? '').not.toContain('thinking');
    }
  });
});

describe('Anthropic SDK with thinking enabled → a Cohere reasoning model', () => {
  const request = {
    model: 'command-a-reasoning-08-2025',
    max_tokens: 2048,
    thinking: { type: 'enabled' as const, budget_tokens: 1024 },
    messages: [{ role: 'user' as const, content: QUESTION }],
  };

  test('its thinking content blocks become thinking blocks, streamed or not', async () => {
    const message = await anthropic.messages.create(request);
    expect(world().simulator('cohere').inferenceRequests().at(-1)?.body).toMatchObject({ thinking: { type: 'enabled', token_budget: 1024 } });
    expect(message.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(blocksOfType(message, 'thinking')).toEqual([{ type: 'thinking', thinking: THOUGHT, signature: '' }]);
    const final = await anthropic.messages.stream(request).finalMessage();
    expect(final.content as unknown[]).toEqual(message.content);
    expect(final.usage.output_tokens).toBe(message.usage.output_tokens);
  });

  test('thinking disabled: no thinking block', async () => {
    const message = await anthropic.messages.create({ ...request, thinking: { type: 'disabled' } });
    expect(message.content.map((block) => block.type)).toEqual(['text']);
  });
});

describe('the openai client asking Gemini for reasoning', () => {
  test('chat: reasoning_effort shows the thoughts as reasoning_content, as LiteLLM does', async () => {
    const completion = await openai.chat.completions.create({ model: GEMINI, reasoning_effort: 'low', messages: [{ role: 'user', content: QUESTION }] });
    expect(lastThinkingConfig()).toEqual({ thinkingBudget: 1024, includeThoughts: true });
    expect((completion.choices[0]?.message as { reasoning_content?: string } | undefined)?.reasoning_content).toBe(THOUGHT);
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(THOUGHT_TOKENS);
  });

  test('responses: reasoning.summary gives a reasoning item with the thoughts; without it, none', async () => {
    const summarized = await openai.responses.create({ model: GEMINI, input: QUESTION, reasoning: { effort: 'low', summary: 'auto' } });
    expect(lastThinkingConfig()).toEqual({ thinkingBudget: 1024, includeThoughts: true });
    const reasoning = summarized.output.find((item) => item.type === 'reasoning');
    expect(reasoning?.type === 'reasoning' ? reasoning.summary : []).toEqual([{ type: 'summary_text', text: THOUGHT }]);
    const quiet = await openai.responses.create({ model: GEMINI, input: QUESTION, reasoning: { effort: 'low' } });
    expect(lastThinkingConfig()).toEqual({ thinkingBudget: 1024 });
    expect(quiet.output.map((item) => item.type)).toEqual(['message']);
    expect(quiet.usage?.output_tokens_details.reasoning_tokens).toBe(THOUGHT_TOKENS);
  });
});
