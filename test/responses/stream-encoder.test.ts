// The Responses stream encoder's hot path writes text deltas by concatenation (a quoted delta when no
// character needs escaping, sequence numbers from a cache): every delta must still read back exactly,
// and sequence numbers count on past the cache.

import { expect, test } from 'bun:test';
import type { ChatResult, FinishReason, StreamPart } from '../../core/spec/vocabulary.ts';
import { echoOf, responsesBodyFromResult, ResponsesStreamEncoder } from '../../plugins/responses/index.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

function encoder(): { stream: ResponsesStreamEncoder; opening: string } {
  const stream = new ResponsesStreamEncoder({ responseId: 'resp_test', model: 'm', echo: echoOf({}) });
  return { stream, opening: stream.encode({ type: 'start', id: 'x', model: 'm', created: 1 }) };
}

test('deltas that need escaping and deltas that do not read back unchanged', () => {
  const deltas = [
    ' plain',
    'a "quote"',
    'back\\slash',
    'new\nline\ttab',
    '\u0000\u001f',
    'emoji 😀',
    'lone \ud800 surrogate',
    'line\u2028separator',
    'é ü ß 漢字',
    '',
  ];
  const { stream } = encoder();
  let text = '';
  for (const delta of deltas) text += stream.encode({ type: 'text-delta', index: 0, text: delta });
  const read = parseResponsesSse(text)
    .filter((event) => event.data.type === 'response.output_text.delta')
    .map((event) => event.data.delta);
  expect(read).toEqual(deltas.filter((delta) => delta !== '').map((delta) => JSON.parse(JSON.stringify(delta))));
});

test('sequence numbers count on without a gap past the cached ones', () => {
  const { stream, opening } = encoder();
  let text = opening;
  for (let index = 0; index < 5000; index++) text += stream.encode({ type: 'text-delta', index: 0, text: 'x' });
  text += stream.end();
  const numbers = parseResponsesSse(text).map((event) => event.data.sequence_number);
  expect(numbers).toEqual(numbers.map((_, index) => index));
  expect(numbers.length).toBeGreaterThan(5000);
});

const USAGE = { inputTokens: 7, outputTokens: 0, totalTokens: 7, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };

/** The output a stream of these parts ends with, and the one the same answer gets not streamed. */
function bothOutputs(parts: StreamPart[], message: ChatResult['choices'][number]['message'], finishReason: FinishReason) {
  const stream = new ResponsesStreamEncoder({ responseId: 'resp_test', model: 'm', echo: echoOf({}) });
  const text = parts.map((part) => stream.encode(part)).join('') + stream.end();
  const checked = checkResponsesStream(parseResponsesSse(text));
  const result: ChatResult = { id: 'x', model: 'm', created: 1, choices: [{ index: 0, message, finishReason }], usage: USAGE };
  const body = responsesBodyFromResult(result, echoOf({}), 'resp_test');
  return { checked, streamed: checked.response.output, answered: body.output, status: [checked.response.status, body.status] };
}

test('a blocked prompt (no content at all) has the same output streamed as not: one empty message, incomplete for content_filter', () => {
  const blocked: FinishReason = { unified: 'content-filter', raw: 'SAFETY' };
  const { checked, streamed, answered, status } = bothOutputs(
    [
      { type: 'start', id: 'x', model: 'm', created: 1 },
      { type: 'finish', index: 0, finishReason: blocked },
      { type: 'usage', usage: USAGE },
    ],
    { role: 'assistant', content: null },
    blocked,
  );
  expect(checked.terminal).toBe('response.incomplete');
  expect(status).toEqual(['incomplete', 'incomplete']);
  expect(streamed).toEqual(answered);
  expect(checked.items).toEqual(answered as typeof checked.items);
  // The filter stopped the message: incomplete, as OpenAI marks the item of an incomplete response.
  expect(streamed).toMatchObject([{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: '' }] }]);
});

test('an answer of tool calls only gets no empty message, streamed or not', () => {
  const toolCalls: FinishReason = { unified: 'tool-calls', raw: 'STOP' };
  const { streamed, answered } = bothOutputs(
    [
      { type: 'start', id: 'x', model: 'm', created: 1 },
      { type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_1', name: 'f' },
      { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '{}' },
      { type: 'finish', index: 0, finishReason: toolCalls },
    ],
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    toolCalls,
  );
  expect(streamed).toEqual(answered);
  expect((streamed as Array<{ type: string }>).map((item) => item.type)).toEqual(['function_call']);
});
