// The prompt bound behind budget reservations and approval thresholds must never come in under what a
// provider bills. Checked here against OpenAI's own tokenizers (cl100k_base and o200k_base, from the
// gpt-tokenizer package) on random text of every kind, including the kinds the estimate under-counts,
// and on whole chats in OpenAI's chat format.

import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { countChatCompletionTokens } from 'gpt-tokenizer/model/gpt-4o';
import { promptTokenBound } from '../../core/accounting/prompt-bound.ts';
import { estimatePromptTokens, estimateTextTokens, IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMING_TOKENS } from '../../core/accounting/token-estimate.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { IMAGE_QUESTION, IMAGE_QUESTION_TEXT } from './chat-fixtures.ts';

if (countChatCompletionTokens === undefined) throw new Error('gpt-tokenizer no longer counts chat completions for gpt-4o');
const gpt4oChatTokens = countChatCompletionTokens;
const realTokens = (text: string): number => Math.max(cl100kTokens(text), o200kTokens(text));
const oneMessage = (content: string): ChatRequest => ({ model: 'm', messages: [{ role: 'user', content }] });
const OVERHEAD = REPLY_PRIMING_TOKENS + MESSAGE_OVERHEAD_TOKENS;

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const fromAlphabet = (alphabet: string, maxLength = 300) =>
  fc.array(fc.constantFrom(...Array.from(alphabet)), { minLength: 1, maxLength }).map((characters) => characters.join(''));
const fromCodePoints = (start: number, end: number, maxLength = 120) =>
  fc.array(fc.integer({ min: start, max: end }), { minLength: 1, maxLength }).map((points) => String.fromCodePoint(...points));

/** Every kind of text, random and ordinary; the ones marked * are where the estimate came in at half the real count. */
const KINDS: Record<string, fc.Arbitrary<string>> = {
  'base64 *': fromAlphabet(BASE64),
  'hex *': fromAlphabet('0123456789abcdef'),
  'lower-case letters *': fromAlphabet('abcdefghijklmnopqrstuvwxyz'),
  'mixed-case letters *': fromAlphabet(BASE64.slice(0, 52)),
  'random words *': fc.array(fromAlphabet(BASE64.slice(0, 62), 12), { minLength: 1, maxLength: 40 }).map((words) => words.join(' ')),
  'whitespace *': fromAlphabet(' \n\t\r'),
  'rare CJK *': fromCodePoints(0x4e00, 0x9fff),
  'printable ASCII': fromAlphabet(Array.from({ length: 95 }, (_, index) => String.fromCharCode(32 + index)).join('')),
  'accented Latin, Greek, Cyrillic': fromAlphabet('éèêàçôûüöäßñÉÀαβγδεζηθλμπσωабвгдежзийклмнопрст'),
  'emoji and symbols': fromCodePoints(0x1f300, 0x1faff, 60),
  'any Unicode': fc.string({ unit: 'grapheme', maxLength: 120 }),
  prose: fc
    .array(fc.constantFrom('the', 'gateway', 'keeps', 'budgets', 'exact', ',', '.', 'under', 'load', 'and', 'never', 'over', '\n'), {
      minLength: 1,
      maxLength: 120,
    })
    .map((words) => words.join(' ')),
};

describe('promptTokenBound', () => {
  for (const [kind, texts] of Object.entries(KINDS)) {
    test(`${kind}: never below cl100k_base or o200k_base`, () => {
      fc.assert(
        fc.property(texts, (text) => promptTokenBound(oneMessage(text)) - OVERHEAD >= realTokens(text)),
        { numRuns: 150 },
      );
    });
  }

  test('the estimate is below the real count on random text, which is why money no longer reads it', () => {
    const base64 = 'vGxTUJ2uE9iUwi6NKUQETFIjUcWjK1qrX6qwWM5ceuMfZBUSSlpsAmHYU8cQ';
    expect(estimateTextTokens(base64)).toBeLessThan(realTokens(base64));
    expect(promptTokenBound(oneMessage(base64)) - OVERHEAD).toBeGreaterThanOrEqual(realTokens(base64));
  });

  test('never below the estimate: money counts at least what rate limits count', () => {
    const request = fc.record({
      system: fc.string({ unit: 'grapheme', maxLength: 80 }),
      user: fc.oneof(...Object.values(KINDS)),
      name: fc.option(fromAlphabet('abcdefghij', 10), { nil: undefined }),
    });
    fc.assert(
      fc.property(request, ({ system, user, name }) => {
        const chat: ChatRequest = {
          model: 'm',
          messages: [
            { role: 'system', content: system },
            { role: 'user', content: [{ type: 'text', text: user }], ...(name === undefined ? {} : { name }) },
          ],
        };
        return promptTokenBound(chat) >= estimatePromptTokens(chat);
      }),
      { numRuns: 300 },
    );
  });

  test("whole chats: at least what OpenAI's chat format bills on gpt-4o", () => {
    const chats = fc.array(
      fc.record({
        role: fc.constantFrom('system', 'user', 'assistant') as fc.Arbitrary<'system' | 'user' | 'assistant'>,
        content: fc.oneof(...Object.values(KINDS)),
      }),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(chats, (messages) => promptTokenBound({ model: 'gpt-4o', messages }) >= gpt4oChatTokens({ messages })),
      { numRuns: 200 },
    );
  });

  test('counts images, tools, tool calls, names and the response schema', () => {
    const bare: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    expect(promptTokenBound(bare)).toBe(OVERHEAD + 2);
    expect(promptTokenBound(IMAGE_QUESTION)).toBe(OVERHEAD + IMAGE_QUESTION_TEXT.length + IMAGE_TOKENS);
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    expect(promptTokenBound({ ...bare, tools })).toBeGreaterThan(promptTokenBound(bare) + JSON.stringify(tools).length);
    const toolCall: ChatRequest = {
      model: 'm',
      messages: [
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', content: '18°C', tool_call_id: 'call_1' },
      ],
    };
    expect(promptTokenBound(toolCall)).toBe(
      REPLY_PRIMING_TOKENS +
        2 * MESSAGE_OVERHEAD_TOKENS +
        JSON.stringify(toolCall.messages[0]?.tool_calls).length +
        Buffer.byteLength('18°C') +
        'call_1'.length,
    );
    const schema = { name: 'answer', schema: { type: 'object' } };
    expect(promptTokenBound({ ...bare, response_format: { type: 'json_schema', json_schema: schema } })).toBe(
      promptTokenBound(bare) + JSON.stringify(schema).length,
    );
  });

  test("counts what else a request carries that a provider may read as prompt (Cohere's documents, an unknown field), not its parameters", () => {
    const bare: ChatRequest = { model: 'command-r-plus', messages: [{ role: 'user', content: 'hi' }] };
    const documents = [{ id: 'd1', data: { title: 'Tall penguins', snippet: 'Emperor penguins are the tallest.' } }];
    expect(promptTokenBound({ ...bare, documents })).toBe(promptTokenBound(bare) + JSON.stringify(documents).length);
    expect(promptTokenBound({ ...bare, some_future_context: 'abc' })).toBe(promptTokenBound(bare) + 3);
    const parameters: ChatRequest = {
      ...bare,
      stream: true,
      temperature: 0.2,
      max_tokens: 100,
      stop: ['\n'],
      user: 'u1',
      metadata: { a: 'b' },
      tool_choice: 'auto',
      provider: 'cohere',
    };
    expect(promptTokenBound(parameters)).toBe(promptTokenBound(bare));
  });

  test('tolerates the shapes a dialect may leave (null content, no messages)', () => {
    expect(promptTokenBound({ model: 'm', messages: [{ role: 'assistant', content: null }] })).toBe(OVERHEAD);
    expect(promptTokenBound({ model: 'm', messages: [] })).toBe(REPLY_PRIMING_TOKENS);
  });
});
