import { describe, expect, test } from 'bun:test';
import type { StreamPart } from '../../core/spec/vocabulary.ts';
import { OpenAIStreamEncoder } from '../../core/wire/openai-encoder.ts';
import { ssePayloads } from '../helpers/sse.ts';

function decode(frame: string): Record<string, unknown> {
  expect(frame.startsWith('data: ')).toBe(true);
  expect(frame.endsWith('\n\n')).toBe(true);
  return JSON.parse(frame.slice(6, -2)) as Record<string, unknown>;
}

describe('OpenAIStreamEncoder', () => {
  test('a signature closes its thinking block as delta.thinking_blocks with the whole text; an empty reasoning piece sends nothing', () => {
    const encoder = new OpenAIStreamEncoder(false, 'req_1', 'claude-x');
    encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-x', created: 7 });
    const deltaOf = (part: StreamPart) => {
      const frame = encoder.encode(part);
      return frame === '' ? undefined : (decode(frame).choices as Array<{ delta: unknown }>)[0]?.delta;
    };
    expect(deltaOf({ type: 'reasoning-delta', index: 0, text: 'Let me ' })).toEqual({ reasoning_content: 'Let me ' });
    expect(deltaOf({ type: 'reasoning-delta', index: 0, text: 'think.' })).toEqual({ reasoning_content: 'think.' });
    expect(deltaOf({ type: 'reasoning-delta', index: 0, text: '', signature: 'sig_1' })).toEqual({
      thinking_blocks: [{ type: 'thinking', thinking: 'Let me think.', signature: 'sig_1' }],
    });
    expect(deltaOf({ type: 'reasoning-delta', index: 0, text: '' })).toBeUndefined();
    // A second block (interleaved thinking) carries only its own text.
    deltaOf({ type: 'reasoning-delta', index: 0, text: 'Again.' });
    expect(deltaOf({ type: 'reasoning-delta', index: 0, text: '', signature: 'sig_2' })).toEqual({
      thinking_blocks: [{ type: 'thinking', thinking: 'Again.', signature: 'sig_2' }],
    });
  });

  test('text deltas are valid chat.completion.chunk frames, escaping included', () => {
    const encoder = new OpenAIStreamEncoder(true, 'req_1', 'fallback-model');
    decode(encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-x', created: 7 }));
    const text = 'quote " backslash \\ newline \n unicode é → 世界';
    const chunk = decode(encoder.encode({ type: 'text-delta', index: 0, text }));
    expect(chunk).toEqual({
      id: 'msg_1',
      object: 'chat.completion.chunk',
      created: 7,
      model: 'claude-x',
      choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }],
      usage: null,
    });
  });

  test('with include_usage every chunk but the usage chunk carries usage: null, as OpenAI sends; without it none has the key', () => {
    const usage = { inputTokens: 3, outputTokens: 2, totalTokens: 5, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
    const parts: StreamPart[] = [
      { type: 'start', id: 'msg_1', model: 'claude-x', created: 7 },
      { type: 'text-delta', index: 0, text: 'a' },
      { type: 'extra-fields', fields: { citations: ['https://a.example'] } },
      { type: 'text-delta', index: 0, text: 'b' },
      { type: 'reasoning-delta', index: 0, text: 'r' },
      { type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_1', name: 'f' },
      { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '{}' },
      { type: 'text-delta', index: 1, text: 'c' },
      { type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'stop' } },
      { type: 'usage', usage },
    ];
    for (const includeUsage of [true, false]) {
      for (const asBytes of [false, true]) {
        const encoder = new OpenAIStreamEncoder(includeUsage, 'req_5', 'm');
        const text = parts.map((part) => (asBytes ? new TextDecoder().decode(encoder.encodeBytes(part)) : encoder.encode(part))).join('') + encoder.end();
        const chunks = ssePayloads(text)
          .filter((payload) => payload !== '[DONE]')
          .map((payload) => JSON.parse(payload) as Record<string, unknown>);
        expect(chunks.length).toBeGreaterThan(8);
        if (!includeUsage) {
          expect(chunks.filter((chunk) => 'usage' in chunk)).toEqual([]);
          continue;
        }
        expect(chunks.slice(0, -1).map((chunk) => chunk.usage)).toEqual(chunks.slice(0, -1).map(() => null));
        expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: 5 } });
      }
    }
  });

  test("every choice's first chunk carries the role, whichever part opens it, and only its first", () => {
    const encoder = new OpenAIStreamEncoder(false, 'req_4', 'm');
    const frames = [
      encoder.encode({ type: 'start', id: 'resp_1', model: 'gemini-x', created: 7 }),
      encoder.encode({ type: 'text-delta', index: 0, text: 'a' }),
      encoder.encode({ type: 'text-delta', index: 1, text: 'b' }),
      encoder.encode({ type: 'text-delta', index: 1, text: 'c' }),
      encoder.encode({ type: 'tool-call-start', index: 2, toolIndex: 0, id: 'call_1', name: 'f' }),
      encoder.encode({ type: 'finish', index: 3, finishReason: { unified: 'stop', raw: 'STOP' } }),
    ]
      .join('')
      .split('\n\n')
      .filter((frame) => frame.length > 0)
      .map((frame) => decode(`${frame}\n\n`) as { choices: Array<{ index: number; delta: Record<string, unknown> }> });
    const firstDeltaOf = new Map<number, Record<string, unknown>>();
    for (const frame of frames) for (const choice of frame.choices) if (!firstDeltaOf.has(choice.index)) firstDeltaOf.set(choice.index, choice.delta);
    expect([...firstDeltaOf.values()]).toEqual([0, 1, 2, 3].map(() => ({ role: 'assistant', content: '' })));
    const roles = frames.flatMap((frame) => frame.choices).filter((choice) => choice.delta.role !== undefined);
    expect(roles.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    expect(frames.map((frame) => frame.choices[0]?.delta.content ?? null)).toEqual(['', 'a', '', 'b', 'c', '', null, '', null]);
  });

  test('extra fields still pending at the end ride on the usage chunk, and no chunk without choices reaches a client that did not ask for usage', () => {
    const usage = { inputTokens: 3, outputTokens: 2, totalTokens: 5, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
    const closing = (includeUsage: boolean) => {
      const encoder = new OpenAIStreamEncoder(includeUsage, 'req_6', 'm');
      encoder.encode({ type: 'start', id: 'r', model: 'sonar', created: 1 });
      encoder.encode({ type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'stop' } });
      encoder.encode({ type: 'extra-fields', fields: { usage_details: { cost: { total_cost: 0.005 } } } });
      encoder.encode({ type: 'usage', usage });
      return ssePayloads(encoder.end());
    };
    expect(closing(false)).toEqual(['[DONE]']);
    const [usageChunk, done, ...rest] = closing(true);
    expect(JSON.parse(usageChunk ?? '{}')).toMatchObject({ choices: [], usage: { total_tokens: 5 }, usage_details: { cost: { total_cost: 0.005 } } });
    expect([done, ...rest]).toEqual(['[DONE]']);
  });

  test('extra fields ride on the next chunk; usage comes last before [DONE], only when asked', () => {
    const encoder = new OpenAIStreamEncoder(true, 'req_2', 'm');
    expect(encoder.encode({ type: 'extra-fields', fields: { citations: ['https://a.example'] } })).toBe('');
    const withExtra = decode(encoder.encode({ type: 'text-delta', index: 0, text: 'a' }));
    expect(withExtra.citations).toEqual(['https://a.example']);
    const plain = decode(encoder.encode({ type: 'text-delta', index: 0, text: 'b' }));
    expect(plain.citations).toBeUndefined();
    encoder.encode({
      type: 'usage',
      usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    });
    const end = encoder
      .end()
      .split('\n\n')
      .filter((frame) => frame.length > 0);
    expect(end.at(-1)).toBe('data: [DONE]');
    expect((JSON.parse((end[0] as string).slice(6)) as { usage: { total_tokens: number } }).usage.total_tokens).toBe(5);
    const silent = new OpenAIStreamEncoder(false, 'req_3', 'm');
    silent.encode({
      type: 'usage',
      usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    });
    expect(silent.end()).toBe('data: [DONE]\n\n');
  });
});
