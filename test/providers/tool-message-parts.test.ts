// A tool message whose content holds an image (kept for Anthropic by /v1/messages when Anthropic was
// to serve, then a fallback took over): every provider whose tool results carry text only keeps the
// text and drops the image with a warning, never a 400 from the provider.

import { describe, expect, test } from 'bun:test';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { buildCohereChatBody } from '../../providers/cohere/request.ts';
import { buildGeminiRequest } from '../../providers/google/request.ts';
import { buildOpenAIChatBody } from '../../providers/openai-compatible/request.ts';
import { buildPerplexityChatBody } from '../../providers/perplexity/request.ts';
import { LOUVRE_AS_TEXT, LOUVRE_RESULT } from '../fixtures/anthropic/search-results.ts';

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
    expect(contents.at(-1)).toEqual({ role: 'user', parts: [{ functionResponse: { id: 'toolu_01', name: 'Read', response: { output: 'shot.png, 1x1' } } }] });
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

describe('a failed tool result and Anthropic breakpoints, after a fallback from Anthropic', () => {
  function requestWithFailedTool(model: string): ChatRequest {
    const request = requestWithToolImage(model);
    request.messages[2] = {
      role: 'tool',
      tool_call_id: 'toolu_01',
      is_error: true,
      cache_control: { type: 'ephemeral' },
      content: [{ type: 'text', text: 'file not found' }],
    };
    request.tools = [{ type: 'function', function: { name: 'Read', parameters: { type: 'object' } }, cache_control: { type: 'ephemeral' } }];
    return request;
  }

  test("OpenAI and Perplexity get the Messages dialect's 'Error: ' prefix, and no is_error or cache_control on the message or the tool", () => {
    const openai = buildOpenAIChatBody(requestWithFailedTool('gpt-4o'), 'gpt-4o', {}, { provider: 'openai', warnings: [] });
    expect((openai.messages as ChatRequest['messages'])[2]).toEqual({
      role: 'tool',
      tool_call_id: 'toolu_01',
      content: [{ type: 'text', text: 'Error: file not found' }],
    });
    expect(openai.tools).toEqual([{ type: 'function', function: { name: 'Read', parameters: { type: 'object' } } }]);
    const perplexity = JSON.stringify(buildPerplexityChatBody(requestWithFailedTool('sonar'), 'sonar', {}, []));
    expect(perplexity).toContain('Error: file not found');
    expect(perplexity).not.toContain('is_error');
    expect(perplexity).not.toContain('cache_control');
  });

  test("Gemini's functionResponse and Cohere's tool message say the call failed", () => {
    const gemini = JSON.stringify(buildGeminiRequest(requestWithFailedTool('gemini-2.5-flash'), 'gemini-2.5-flash', {}, []));
    expect(gemini).toContain('Error: file not found');
    expect(gemini).not.toContain('is_error');
    const cohere = JSON.stringify(buildCohereChatBody(requestWithFailedTool('command-a-03-2025'), 'command-a-03-2025', {}, []));
    expect(cohere).toContain('Error: file not found');
    expect(cohere).not.toContain('is_error');
  });
});

describe('search results kept for Anthropic, after a fallback to a provider without them', () => {
  const result = { ...LOUVRE_RESULT, cache_control: { type: 'ephemeral' } };
  const asText = LOUVRE_AS_TEXT;

  function requestWithSearchResults(model: string): ChatRequest {
    return {
      model,
      messages: [
        { role: 'user', content: [result, { type: 'text', text: 'When can I go?' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'search', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'toolu_01', content: [result] },
      ],
    };
  }

  function searchWarning(provider: string, position: number): string {
    return `${provider}: the search results at messages[${position}] were sent as text (title, source, content): this provider takes no search_result blocks`;
  }

  /** Nothing only Anthropic reads reaches the provider: no block type, citations flag or breakpoint. */
  function expectPortable(body: Record<string, unknown>): void {
    const text = JSON.stringify(body);
    for (const field of ['search_result', 'citations', 'cache_control']) expect(text).not.toContain(field);
    expect(text).toContain(JSON.stringify(asText).slice(1, -1));
  }

  test('OpenAI gets the title, source and text as text parts in the user and tool messages, warned once per message', () => {
    const warnings: string[] = [];
    const body = buildOpenAIChatBody(requestWithSearchResults('gpt-4o'), 'gpt-4o', {}, { provider: 'openai', warnings });
    const messages = body.messages as ChatRequest['messages'];
    expect(messages[0]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: asText },
        { type: 'text', text: 'When can I go?' },
      ],
    });
    expect(messages[2]).toEqual({ role: 'tool', tool_call_id: 'toolu_01', content: [{ type: 'text', text: asText }] });
    expect(warnings).toEqual([searchWarning('openai', 0), searchWarning('openai', 2)]);
    expectPortable(body);
  });

  test('Gemini, Cohere and Perplexity get the same text, warned, and nothing of the block', () => {
    const google: string[] = [];
    expectPortable(buildGeminiRequest(requestWithSearchResults('gemini-2.5-flash'), 'gemini-2.5-flash', {}, google));
    expect(google).toEqual([searchWarning('google', 0), searchWarning('google', 2)]);
    const cohere: string[] = [];
    expectPortable(buildCohereChatBody(requestWithSearchResults('command-a-03-2025'), 'command-a-03-2025', {}, cohere));
    expect(cohere).toEqual([searchWarning('cohere', 0), searchWarning('cohere', 2)]);
    const perplexity: string[] = [];
    expectPortable(buildPerplexityChatBody(requestWithSearchResults('sonar'), 'sonar', {}, perplexity));
    expect(perplexity).toContain(searchWarning('perplexity', 0));
  });

  test('a search result without text blocks is refused, not sent empty', () => {
    const request = requestWithSearchResults('gpt-4o');
    request.messages[0] = { role: 'user', content: [{ ...result, content: [] }] };
    expect(() => buildOpenAIChatBody(request, 'gpt-4o', {}, { provider: 'openai', warnings: [] })).toThrow('messages[0].content[0].content');
  });
});
