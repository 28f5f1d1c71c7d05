// An Anthropic stream that ends with message_stop but no message_delta (a proxy in front of Anthropic
// that drops it, a compatible server that never sends it) still ended cleanly: each dialect's client
// gets the closing a normal stream has, a finish reason (`stop`: nothing said the turn ended
// otherwise) and usage (the booked estimate of the output, which the provider did not count).

import { describe, expect, test } from 'bun:test';
import type OpenAI from 'openai';
import { PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { flushUsage } from '../helpers/gateway.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { sdkClients, useClientWorld } from './client-fixtures.ts';

const anthropic = PROVIDER_DESCRIPTORS.filter((descriptor) => descriptor.name === 'anthropic');
const world = useClientWorld(anthropic);
const MODEL = 'claude-3-opus-20240229';
/** A model that takes Anthropic's server tools, which only its own Messages API runs. */
const SEARCH_MODEL = 'claude-opus-4-5-20251101';

function dropMessageDelta(): void {
  world().simulator('anthropic').inject({ kind: 'omit_stream_event', event: 'message_delta' });
}

describe('an Anthropic stream without message_delta', () => {
  test('the openai client: the last choice chunk says stop, and the usage chunk follows', async () => {
    dropMessageDelta();
    const { openai } = sdkClients(world());
    const stream = await openai.chat.completions.create({
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream without a delta' }],
    });
    let text = '';
    const finishReasons: string[] = [];
    let lastChoiceFinish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        lastChoiceFinish = choice.finish_reason;
        if (choice.finish_reason !== null) finishReasons.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Echo: Stream without a delta');
    expect(finishReasons).toEqual(['stop']);
    expect(lastChoiceFinish).toBe('stop');
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  test("the openai client's stream helper assembles a finished completion", async () => {
    dropMessageDelta();
    const { openai } = sdkClients(world());
    const final = await openai.chat.completions.stream({ model: MODEL, messages: [{ role: 'user', content: 'Assemble me' }] }).finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe('Echo: Assemble me');
    expect(final.choices[0]?.finish_reason).toBe('stop');
  });

  test('the usage row: served, the prompt as Anthropic counted it, the output estimated and flagged', async () => {
    const { openai } = sdkClients(world());
    const rows = async (): Promise<UsageRecord[]> => {
      await flushUsage(world().gateway);
      return world().gateway.runtime.store.listUsage('default');
    };
    /** The row of one more stream: the one that was not there before it. */
    const rowOf = async (): Promise<UsageRecord | undefined> => {
      const before = new Set((await rows()).map((row) => row.requestId));
      const stream = await openai.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Book me' }] });
      for await (const _chunk of stream) {
        // Read to the end.
      }
      return (await rows()).find((row) => !before.has(row.requestId));
    };
    const normal = await rowOf();
    dropMessageDelta();
    const row = await rowOf();
    expect(row?.status).toBe(200);
    // message_start stated the prompt's count: kept, as a normal stream's message_delta would have repeated it.
    expect(row?.inputTokens).toBe(normal?.inputTokens as number);
    expect(row?.outputTokens).toBeGreaterThan(0);
    expect(row?.usageEstimated).toBe(true);
    expect(normal?.usageEstimated).toBe(false);
  });

  test('the Responses API: response.completed with its usage', async () => {
    dropMessageDelta();
    const { openai } = sdkClients(world());
    const stream = await openai.responses.create({ model: MODEL, input: 'Respond without a delta', stream: true });
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types.at(-1)).toBe('response.completed');
    expect(completed?.status).toBe('completed');
    const message = completed?.output[0];
    expect(message?.type === 'message' ? message.content[0] : undefined).toMatchObject({ type: 'output_text', text: 'Echo: Respond without a delta' });
    expect(completed?.usage?.output_tokens).toBeGreaterThan(0);
    expect(completed?.usage?.total_tokens).toBe((completed?.usage?.input_tokens ?? 0) + (completed?.usage?.output_tokens ?? 0));
  });

  test('the Anthropic client, translated: a message_delta with end_turn and usage before message_stop', async () => {
    dropMessageDelta();
    const { anthropic: client } = sdkClients(world());
    const stream = client.messages.stream({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'Messages without a delta' }] });
    const types: string[] = [];
    stream.on('streamEvent', (event) => void types.push(event.type));
    const message = await stream.finalMessage();
    expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect(message.content).toMatchObject([{ type: 'text', text: 'Echo: Messages without a delta' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(1);
  });

  test("the Anthropic client on Anthropic's own API (a server tool: its events pass as sent): the missing message_delta is written before message_stop", async () => {
    dropMessageDelta();
    const { anthropic: client } = sdkClients(world());
    const stream = client.messages.stream({
      model: SEARCH_MODEL,
      max_tokens: 300,
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 1 }],
      messages: [{ role: 'user', content: 'News without a delta?' }],
    });
    const types: string[] = [];
    stream.on('streamEvent', (event) => void types.push(event.type));
    const message = await stream.finalMessage();
    expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect(types.filter((type) => type === 'message_delta')).toHaveLength(1);
    expect(message.content.map((block) => block.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(1);
  });
});
