// The Vercel AI SDK against Keyway with only the base URL and the key changed: its default OpenAI
// model (`openai(model)`, the Responses API) and `openai.chat(model)` (Chat Completions), served by
// OpenAI, Anthropic, Gemini, Cohere and Perplexity through their simulators. Text, streams, a tool loop and structured
// output come back whole, and the usage the SDK reports is the usage Keyway booked.

import { upstreamTurns, type Turn } from '../responses/upstream-turns.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { createOpenAI, type OpenAIProvider } from '@ai-sdk/openai';
import { generateObject, generateText, Output, stepCountIs, streamText, tool, type LanguageModel, type ModelMessage } from 'ai';
import { z } from 'zod';
import type { UsageRecord } from '../../core/spec/store.ts';
import { accounted, rowOf } from '../accounting/booking.ts';
import { anthropicDescriptor, googleDescriptor, openAIDescriptor, PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from './client-fixtures.ts';

type Json = Record<string, unknown>;
type Api = 'responses' | 'chat';

/** All five providers; tool loops only where the provider calls tools (Perplexity's Sonar never does). */
const DESCRIPTORS = PROVIDER_DESCRIPTORS;

let world: ClientWorld;
let openai: OpenAIProvider;

beforeAll(async () => {
  world = await startClientWorld(DESCRIPTORS);
  openai = createOpenAI({ baseURL: `${world.gateway.url}/v1`, apiKey: world.gateway.defaultAdminKey });
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

function modelFor(api: Api, model: string): LanguageModel {
  return api === 'chat' ? openai.chat(model) : openai(model);
}

/** The Keyway endpoint each AI SDK model calls: the usage rows name it. */
const ENDPOINTS: Record<Api, string> = { responses: 'responses', chat: 'chat' };

interface ReportedUsage {
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  totalTokens: number | undefined;
}

/** The usage row of the call whose response carried these headers. */
async function rowFor(headers: Record<string, string> | undefined): Promise<UsageRecord> {
  const requestId = headers?.['x-request-id'];
  if (requestId === undefined) throw new Error('the answer carried no x-request-id');
  return rowOf(world.gateway, requestId);
}

/** What the SDK reported is what Keyway booked for that call, on the endpoint the SDK called. */
function expectBooked(row: UsageRecord, usage: ReportedUsage, api: Api, provider: string, streamed: boolean): void {
  expect(usage.inputTokens).toBeGreaterThan(0);
  expect(usage.outputTokens).toBeGreaterThan(0);
  expect(usage.totalTokens).toBe((usage.inputTokens ?? 0) + (usage.outputTokens ?? 0));
  expect({ endpoint: row.endpoint, provider: row.provider, status: row.status, streamed: row.streamed }).toEqual({
    endpoint: ENDPOINTS[api],
    provider,
    status: 200,
    streamed,
  });
  expect({ inputTokens: usage.inputTokens, outputTokens: usage.outputTokens }).toEqual({ inputTokens: row.inputTokens, outputTokens: row.outputTokens });
  expect(row.costUsd).toBeGreaterThan(0);
}

const weatherTools = {
  get_weather: tool({
    description: 'Weather in a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `18C in ${city}`,
  }),
  get_time: tool({
    description: 'Time in a zone',
    inputSchema: z.object({ zone: z.string() }),
    execute: async ({ zone }) => `09:30 in ${zone}`,
  }),
};

interface LoopStep {
  toolCalls: Array<{ toolName: string; input: unknown }>;
  toolResults: Array<{ toolName: string; output: unknown }>;
  usage: ReportedUsage;
  response: { headers?: Record<string, string> };
}

/** A two-step loop: both tools called with the simulated model's arguments, then the answer built from their results. */
async function expectToolLoop(steps: readonly LoopStep[], text: string, total: ReportedUsage, api: Api, provider: string, streamed: boolean): Promise<void> {
  expect(steps.length).toBe(2);
  expect(steps[0]?.toolCalls.map((call) => ({ toolName: call.toolName, input: call.input }))).toEqual([
    { toolName: 'get_weather', input: { city: 'sample' } },
    { toolName: 'get_time', input: { zone: 'sample' } },
  ]);
  expect(steps[0]?.toolResults.map((result) => result.output)).toEqual(['18C in sample', '09:30 in sample']);
  expect(steps[1]?.toolCalls).toEqual([]);
  expect(text).toBe('Tool results: 18C in sample | 09:30 in sample');
  let inputTokens = 0;
  let outputTokens = 0;
  for (const step of steps) {
    const row = await rowFor(step.response.headers);
    expectBooked(row, step.usage, api, provider, streamed);
    inputTokens += row.inputTokens;
    outputTokens += row.outputTokens;
  }
  expect({ inputTokens: total.inputTokens, outputTokens: total.outputTokens }).toEqual({ inputTokens, outputTokens });
}

/** What the OpenAI simulator received last, as turns: OpenAI serves /v1/responses natively (input items), chat through messages. */
function openAIUpstreamTurns(): Turn[] {
  return upstreamTurns(world.simulator('openai').inferenceRequests().at(-1)?.body as Json | undefined);
}

/** The OpenAI simulator's last request body. */
function openAIUpstreamBody(): Json {
  return (world.simulator('openai').inferenceRequests().at(-1)?.body ?? {}) as Json;
}

describe.each(DESCRIPTORS.map((descriptor) => [descriptor.name, descriptor.model, descriptor.tools] as const))('AI SDK → %s (%s)', (provider, model, tools) => {
  describe.each(['responses', 'chat'] as const)('through %s', (api) => {
    test('generateText: the text, the finish reason and the booked usage', async () => {
      const result = await generateText({ model: modelFor(api, model), system: 'Be brief.', prompt: 'Hello from the AI SDK' });
      expect(result.text).toBe('Echo: Hello from the AI SDK');
      expect(result.finishReason).toBe('stop');
      expect(result.warnings).toEqual([]);
      expect(result.response.headers?.['x-provider-used']).toBe(provider);
      expectBooked(await rowFor(result.response.headers), result.usage, api, provider, false);
    });

    test('streamText: the deltas assemble into the text; the streamed usage is booked', async () => {
      const result = streamText({ model: modelFor(api, model), prompt: 'Stream through the AI SDK' });
      let text = '';
      for await (const delta of result.textStream) text += delta;
      expect(text).toBe('Echo: Stream through the AI SDK');
      expect(await result.finishReason).toBe('stop');
      const response = await result.response;
      expectBooked(await rowFor(response.headers), await result.usage, api, provider, true);
    });

    test.skipIf(!tools)('a tool loop with generateText (tools with execute, stopWhen: stepCountIs(3))', async () => {
      const result = await generateText({
        model: modelFor(api, model),
        tools: weatherTools,
        stopWhen: stepCountIs(3),
        prompt: 'Please call all tools for Paris',
      });
      await expectToolLoop(result.steps, result.text, result.totalUsage, api, provider, false);
    });

    test.skipIf(!tools)('the same tool loop with streamText', async () => {
      const result = streamText({ model: modelFor(api, model), tools: weatherTools, stopWhen: stepCountIs(3), prompt: 'Please call all tools for Paris' });
      const text = await result.text;
      await expectToolLoop(await result.steps, text, await result.totalUsage, api, provider, true);
    });

    test('generateObject: a JSON schema answered with a valid object', async () => {
      const result = await generateObject({ model: modelFor(api, model), schema: z.object({ echo: z.string() }), prompt: 'Describe the weather' });
      expect(result.object).toEqual({ echo: 'Describe the weather' });
      expectBooked(await rowFor(result.response.headers), result.usage, api, provider, false);
    });

    test('structured output with generateText (Output.object)', async () => {
      const result = await generateText({
        model: modelFor(api, model),
        output: Output.object({ schema: z.object({ echo: z.string() }) }),
        prompt: 'Structured, please',
      });
      expect(result.output).toEqual({ echo: 'Structured, please' });
      expectBooked(await rowFor(result.response.headers), result.usage, api, provider, false);
    });
  });

  test('the same call costs the same through the Responses API and Chat Completions', async () => {
    const [viaResponses, viaChat] = await Promise.all(
      (['responses', 'chat'] as const).map((api) => generateText({ model: modelFor(api, model), system: 'Be brief.', prompt: 'Count my tokens' })),
    );
    expect(viaResponses?.usage.inputTokens).toBe(viaChat?.usage.inputTokens as number);
    const rows = [await rowFor(viaResponses?.response.headers), await rowFor(viaChat?.response.headers)];
    expect(rows.map((row) => row.endpoint)).toEqual(['responses', 'chat']);
    expect(accounted(rows[0] as UsageRecord)).toEqual(accounted(rows[1] as UsageRecord));
  });
});

describe('a conversation through the default (Responses) model, whose earlier answers travel as item references', () => {
  test.each([false, true])('Anthropic answers, OpenAI continues from the SDK messages (streamed: %p)', async (stream) => {
    const question: ModelMessage = { role: 'user', content: 'My name is Ada.' };
    const first = await generateText({ model: openai(anthropicDescriptor.model), messages: [question] });
    expect(first.text).toBe('Echo: My name is Ada.');
    // With the SDK's default store, this part goes back as {type:'item_reference', id} only.
    const earlier = first.response.messages[0]?.content;
    const part = Array.isArray(earlier) ? earlier[0] : undefined;
    expect(part?.type === 'text' ? String(part.providerOptions?.openai?.itemId) : '').toStartWith('msg_');
    const messages: ModelMessage[] = [question, ...first.response.messages, { role: 'user', content: 'What is my name?' }];
    let text: string;
    if (stream) {
      const result = streamText({ model: openai(openAIDescriptor.model), messages });
      text = await result.text;
    } else {
      text = (await generateText({ model: openai(openAIDescriptor.model), messages })).text;
    }
    expect(text).toBe('Echo: What is my name?');
    expect(openAIUpstreamTurns()).toEqual([
      { role: 'user', text: 'My name is Ada.' },
      { role: 'assistant', text: 'Echo: My name is Ada.' },
      { role: 'user', text: 'What is my name?' },
    ]);
    // OpenAI serves natively: the reference reached it as the item itself, never as a reference.
    expect(JSON.stringify(openAIUpstreamBody().input)).not.toContain('item_reference');
  });

  test('a tool loop followed by another turn: the earlier calls, results and answer all reach the provider', async () => {
    const loop = await generateText({
      model: openai(googleDescriptor.model),
      tools: weatherTools,
      stopWhen: stepCountIs(3),
      prompt: 'Please call all tools for Paris',
    });
    expect(loop.text).toBe('Tool results: 18C in sample | 09:30 in sample');
    const next = await generateText({
      model: openai(openAIDescriptor.model),
      tools: weatherTools,
      toolChoice: 'none',
      messages: [{ role: 'user', content: 'Please call all tools for Paris' }, ...loop.response.messages, { role: 'user', content: 'Thanks' }],
    });
    expect(next.text).toBe('Echo: Thanks');
    const upstream = openAIUpstreamTurns();
    expect(upstream.map((turn) => turn.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant', 'user']);
    expect(upstream[4]?.text).toBe('Tool results: 18C in sample | 09:30 in sample');
  });
});
