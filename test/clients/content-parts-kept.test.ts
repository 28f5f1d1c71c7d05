// What a message of several content parts keeps on its way to a provider. Text parts never run into
// each other: where one string must hold them (Cohere's system message, Gemini's functionResponse,
// a tool_result on /v1/messages for any provider but Anthropic) they are a blank line apart, and a chat
// tool message's several texts reach Cohere as its list of text items. And an image's `detail`
// level, which Anthropic's and Gemini's image parts cannot carry, is dropped with a warning, never
// silently (providers.md: nothing is dropped silently but null and false fields).

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { anthropicDescriptor, cohereDescriptor, googleDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([anthropicDescriptor, googleDescriptor, cohereDescriptor]);
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(() => {
  ({ anthropic, openai } = sdkClients(world()));
});

type Json = Record<string, unknown>;

function lastBody(provider: string): Json {
  return (world().simulator(provider).inferenceRequests().at(-1)?.body ?? {}) as Json;
}

const PING: Anthropic.Tool = { name: 'ping', input_schema: { type: 'object', properties: {} } };

/** A tool loop whose tool result has two text blocks, as the Anthropic SDK sends it. */
function pingLoop(model: string): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model,
    max_tokens: 100,
    system: [
      { type: 'text', text: 'SysA' },
      { type: 'text', text: 'SysB' },
    ],
    tools: [PING],
    messages: [
      { role: 'user', content: 'Ping twice.' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_ping', name: 'ping', input: {} }] },
      {
        role: 'user',
        content: [
          {
            type: 'tool_result',
            tool_use_id: 'toolu_ping',
            content: [
              { type: 'text', text: 'pong-a' },
              { type: 'text', text: 'pong-b' },
            ],
          },
        ],
      },
    ],
  };
}

describe('several text parts are never run together', () => {
  test('/v1/messages to Cohere: the system prompt and the tool result a blank line apart', async () => {
    const message = await anthropic.messages.create(pingLoop('command-r-plus'));
    expect(message.content[0]?.type).toBe('text');
    const messages = lastBody('cohere').messages as Json[];
    expect(messages[0]).toEqual({ role: 'system', content: 'SysA\n\nSysB' });
    expect(messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'toolu_ping', content: 'pong-a\n\npong-b' });
  });

  test("chat to Cohere: a tool message's text parts as Cohere's list of text items, as the client sent them", async () => {
    await openai.chat.completions.create({
      model: 'command-r-plus',
      messages: [
        {
          role: 'system',
          content: [
            { type: 'text', text: 'SysA' },
            { type: 'text', text: 'SysB' },
          ],
        },
        { role: 'user', content: 'Ping twice.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_ping', type: 'function', function: { name: 'ping', arguments: '{}' } }] },
        {
          role: 'tool',
          tool_call_id: 'call_ping',
          content: [
            { type: 'text', text: 'pong-a' },
            { type: 'text', text: 'pong-b' },
          ],
        },
      ],
      tools: [{ type: 'function', function: { name: 'ping', parameters: { type: 'object', properties: {} } } }],
    });
    const messages = lastBody('cohere').messages as Json[];
    expect(messages[0]).toEqual({ role: 'system', content: 'SysA\n\nSysB' });
    expect(messages.at(-1)).toEqual({
      role: 'tool',
      tool_call_id: 'call_ping',
      content: [
        { type: 'text', text: 'pong-a' },
        { type: 'text', text: 'pong-b' },
      ],
    });
  });

  test("Gemini: the tool result's output a blank line apart (the system prompt stays two parts)", async () => {
    await anthropic.messages.create(pingLoop('gemini-2.5-flash'));
    const body = lastBody('google') as { systemInstruction: Json; contents: Array<{ parts: Json[] }> };
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'SysA' }, { text: 'SysB' }] });
    expect(body.contents.at(-1)?.parts).toEqual([{ functionResponse: { id: 'toolu_ping', name: 'ping', response: { output: 'pong-a\n\npong-b' } } }]);
  });
});

describe("an image's detail level is dropped with a warning where the provider has no place for it", () => {
  const PNG = 'data:image/png;base64,iVBORw0KGgo=';

  for (const [provider, model, warning] of [
    ['anthropic', 'claude-haiku-4-5', "anthropic: ignored 'image_url.detail' (Anthropic's image blocks take no detail level)"],
    ['google', 'gemini-2.5-flash', "google: ignored 'image_url.detail' (Gemini's image parts take no detail level)"],
  ] as const) {
    test(`${provider}: detail high is named in X-Keyway-Warnings; detail auto, the default, is not`, async () => {
      const ask = (detail: 'high' | 'auto') =>
        openai.chat.completions
          .create({
            model,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'What is this?' },
                  { type: 'image_url', image_url: { url: PNG, detail } },
                  { type: 'image_url', image_url: { url: PNG, detail } },
                ],
              },
            ],
          })
          .withResponse();
      const high = await ask('high');
      expect(high.response.headers.get('x-keyway-warnings')).toBe(warning);
      expect(JSON.stringify(lastBody(provider))).not.toContain('"detail"');
      const auto = await ask('auto');
      expect(auto.response.headers.get('x-keyway-warnings')).toBeNull();
    });
  }
});
