// A tool message whose content holds an image (kept for Anthropic by /v1/messages when Anthropic was
// to serve, then a fallback took over): every provider whose tool results carry text only keeps the
// text and drops the image with a warning, never a 400 from the provider.

import { describe, expect, test } from 'bun:test';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { buildCohereChatBody } from '../../providers/cohere/request.ts';
import { buildGeminiRequest } from '../../providers/google/request.ts';
import { buildOpenAIChatBody } from '../../providers/openai-compatible/request.ts';
import { buildPerplexityChatBody } from '../../providers/perplexity/request.ts';

const IMAGE_URL = 'data:image/png;base64,iVBORw0KGgo=';

function requestWithToolImage(model: string): ChatRequest {
  return {
    model,
    messages: [
      { role: 'user', content: 'Look at shot.png' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'Read', arguments: '{}' } }] },
      {
        role: 'tool',
        tool_call_id: 'toolu_01',
        content: [
          { type: 'text', text: 'shot.png, 1x1', cache_control: { type: 'ephemeral' } },
          { type: 'image_url', image_url: { url: IMAGE_URL }, cache_control: { type: 'ephemeral' } },
        ],
      },
    ],
  };
}

function warningFor(provider: string): string {
  return `${provider}: dropped non-text content of the tool message at messages[2]: tool messages carry text only`;
}

describe('a tool message with an image, to providers whose tool results carry text only', () => {
  test('OpenAI gets a text-only tool message, with a warning', () => {
    const warnings: string[] = [];
    const body = buildOpenAIChatBody(requestWithToolImage('gpt-4o'), 'gpt-4o', {}, { provider: 'openai', warnings });
    const messages = body.messages as ChatRequest['messages'];
    expect(messages[2]).toEqual({
      role: 'tool',
      tool_call_id: 'toolu_01',
      content: [{ type: 'text', text: 'shot.png, 1x1', cache_control: { type: 'ephemeral' } }],
    });
    expect(warnings).toEqual([warningFor('openai')]);
  });

  test('OpenAI gets a conversation without such parts as the same messages, with no warning', () => {
    const request = requestWithToolImage('gpt-4o');
    request.messages[2] = { role: 'tool', tool_call_id: 'toolu_01', content: [{ type: 'text', text: 'ok' }] };
    const warnings: string[] = [];
    const body = buildOpenAIChatBody(request, 'gpt-4o', {}, { provider: 'openai', warnings });
    expect(body.messages).toBe(request.messages);
    expect(warnings).toEqual([]);
  });

  test("Gemini's functionResponse gets the text, with a warning", () => {
    const warnings: string[] = [];
    const body = buildGeminiRequest(requestWithToolImage('gemini-2.5-flash'), 'gemini-2.5-flash', {}, warnings);
    const contents = body.contents as Array<{ role: string; parts: unknown[] }>;
    expect(contents.at(-1)).toEqual({ role: 'user', parts: [{ functionResponse: { name: 'Read', response: { output: 'shot.png, 1x1' } } }] });
    expect(warnings).toEqual([warningFor('google')]);
    expect(JSON.stringify(body)).not.toContain('iVBORw0KGgo');
  });

  test("Cohere's tool message gets the text, with a warning, not a refusal", () => {
    const warnings: string[] = [];
    const body = buildCohereChatBody(requestWithToolImage('command-a-03-2025'), 'command-a-03-2025', {}, warnings);
    const messages = body.messages as Array<Record<string, unknown>>;
    expect(messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'toolu_01', content: 'shot.png, 1x1' });
    expect(warnings).toEqual([warningFor('cohere')]);
  });

  test("Perplexity's tool message gets the text, with a warning", () => {
    const warnings: string[] = [];
    const body = buildPerplexityChatBody(requestWithToolImage('sonar'), 'sonar', {}, warnings);
    expect(JSON.stringify(body)).not.toContain('iVBORw0KGgo');
    expect(JSON.stringify(body)).toContain('shot.png, 1x1');
    expect(warnings).toContain(warningFor('perplexity'));
  });
});
