// The Responses stream encoder's hot path writes text deltas by concatenation (a quoted delta when no
// character needs escaping, sequence numbers from a cache): every delta must still read back exactly,
// and sequence numbers count on past the cache.

import { expect, test } from 'bun:test';
import { echoOf, ResponsesStreamEncoder } from '../../plugins/responses/index.ts';
import { parseResponsesSse } from './event-sequence.ts';

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
