// Parallel tool calls on Gemini, the way an agent loop sends their results: Gemini pairs the results
// of same-name calls with the calls by position (reference §7.2), so the functionResponse parts go in
// the calls' order whatever order the client's tool messages (or tool_result blocks) came in; the ids
// Gemini gave its calls go back on both parts (reference §7.3); and a history another provider wrote
// reaches Gemini 3 with Google's placeholder thought signature, which Gemini 3 accepts.

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([googleDescriptor, openAIDescriptor]);
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(() => {
  ({ anthropic, openai } = sdkClients(world()));
});

type Json = Record<string, unknown>;

const WEATHER: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const RESULTS: Record<string, string> = { Paris: 'Paris: 21C', London: 'London: 12C' };

/** The contents Gemini received on its last call, after the opening user turn. */
function lastTurns(): Json[] {
  const body = world().simulator('google').inferenceRequests().at(-1)?.body as { contents?: Json[] } | undefined;
  return (body?.contents ?? []).slice(1);
}

function partsOf(turn: Json | undefined): Json[] {
  return (turn?.parts as Json[] | undefined) ?? [];
}

/** Gemini's answer with two get_weather calls, Paris then London, with the ids Gemini 3 gives its calls. */
function answerWithCallIds(): Json {
  const call = (id: string, city: string) => ({ functionCall: { id, name: 'get_weather', args: { city } } });
  return {
    candidates: [{ content: { role: 'model', parts: [call('fc-paris-1', 'Paris'), call('fc-london-2', 'London')] }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 4, totalTokenCount: 9 },
  };
}

describe('parallel tool results reach Gemini in the order of the calls', () => {
  const assistant: OpenAI.ChatCompletionAssistantMessageParam = {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'call_P', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_L', type: 'function', function: { name: 'get_weather', arguments: '{"city":"London"}' } },
    ],
  };

  test('chat: tool messages sent London first go back Paris first, each answering its own call', async () => {
    await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      tools: [WEATHER],
      messages: [
        { role: 'user', content: 'Weather in Paris and London?' },
        assistant,
        { role: 'tool', tool_call_id: 'call_L', content: RESULTS.London as string },
        { role: 'tool', tool_call_id: 'call_P', content: RESULTS.Paris as string },
      ],
    });
    const [calls, results] = lastTurns();
    expect(partsOf(calls).map((part) => (part.functionCall as Json).args)).toEqual([{ city: 'Paris' }, { city: 'London' }]);
    expect(partsOf(results).map((part) => (part.functionResponse as Json).response)).toEqual([{ output: RESULTS.Paris }, { output: RESULTS.London }]);
  });

  test('/v1/messages: tool_result blocks sent London first go back Paris first, before the user text that follows them', async () => {
    await anthropic.messages.create({
      model: 'gemini-2.5-flash',
      max_tokens: 200,
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
      messages: [
        { role: 'user', content: 'Weather in Paris and London?' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'toolu_P', name: 'get_weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'toolu_L', name: 'get_weather', input: { city: 'London' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_L', content: RESULTS.London as string },
            { type: 'tool_result', tool_use_id: 'toolu_P', content: RESULTS.Paris as string },
            { type: 'text', text: 'Which is warmer?' },
          ],
        },
      ],
    });
    const results = partsOf(lastTurns()[1]);
    expect(results.map((part) => (part.functionResponse as Json | undefined)?.response ?? part.text)).toEqual([
      { output: RESULTS.Paris },
      { output: RESULTS.London },
      'Which is warmer?',
    ]);
  });
});

describe('the ids Gemini gives its calls go back with the calls and the results (reference §7.3)', () => {
  test('the client gets them as tool-call ids, and the next turn echoes them in functionCall and functionResponse', async () => {
    world().simulator('google').inject({ kind: 'status', status: 200, body: answerWithCallIds() });
    const question: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'Weather in Paris and London?' };
    const first = await openai.chat.completions.create({ model: 'gemini-2.5-flash', tools: [WEATHER], messages: [question] });
    const message = first.choices[0]?.message as OpenAI.ChatCompletionMessage;
    const calls = (message.tool_calls ?? []) as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((call) => call.id)).toEqual(['fc-paris-1', 'fc-london-2']);
    const toolMessages = calls
      .map((call) => ({
        role: 'tool' as const,
        tool_call_id: call.id,
        content: RESULTS[(JSON.parse(call.function.arguments) as { city: string }).city] as string,
      }))
      .reverse();
    await openai.chat.completions.create({ model: 'gemini-2.5-flash', tools: [WEATHER], messages: [question, message, ...toolMessages] });
    const [callTurn, resultTurn] = lastTurns();
    expect(partsOf(callTurn)).toEqual([
      { functionCall: { id: 'fc-paris-1', name: 'get_weather', args: { city: 'Paris' } } },
      { functionCall: { id: 'fc-london-2', name: 'get_weather', args: { city: 'London' } } },
    ]);
    expect(partsOf(resultTurn)).toEqual([
      { functionResponse: { id: 'fc-paris-1', name: 'get_weather', response: { output: RESULTS.Paris } } },
      { functionResponse: { id: 'fc-london-2', name: 'get_weather', response: { output: RESULTS.London } } },
    ]);
  });

  test('ids Keyway made up for calls Gemini sent without one stay Keyway’s: Gemini never saw them', async () => {
    const question: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'Weather in Paris?' };
    const first = await openai.chat.completions.create({ model: 'gemini-2.5-flash', tools: [WEATHER], tool_choice: 'required', messages: [question] });
    const message = first.choices[0]?.message as OpenAI.ChatCompletionMessage;
    const call = message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.id).toMatch(/^call_[0-9a-f]{8}_0$/);
    await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      tools: [WEATHER],
      messages: [question, message, { role: 'tool', tool_call_id: call.id, content: '21C' }],
    });
    const [callTurn, resultTurn] = lastTurns();
    expect((partsOf(callTurn)[0]?.functionCall as Json).id).toBeUndefined();
    expect((partsOf(resultTurn)[0]?.functionResponse as Json).id).toBeUndefined();
  });
});

describe('a tool loop another provider started continues on Gemini 3', () => {
  test("OpenAI's tool calls reach gemini-3-pro-preview with Google's placeholder signature, and Gemini 3 answers", async () => {
    const question: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'Weather in Paris?' };
    const first = await openai.chat.completions.create({ model: 'gpt-4o-mini', tools: [WEATHER], tool_choice: 'required', messages: [question] });
    const message = first.choices[0]?.message as OpenAI.ChatCompletionMessage;
    const call = message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    const answer = await openai.chat.completions.create({
      model: 'gemini-3-pro-preview',
      tools: [WEATHER],
      messages: [question, message, { role: 'tool', tool_call_id: call.id, content: '21C' }],
    });
    expect(answer.choices[0]?.message.content).toBe('Tool results: 21C');
    expect(partsOf(lastTurns()[0])[0]?.thoughtSignature).toBe('skip_thought_signature_validator');
  });
});
