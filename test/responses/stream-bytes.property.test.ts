// Property: the bytes the Responses stream encoder writes straight to bytes (encodeBytes, what
// streamAnswer sends) are exactly the UTF-8 of the SSE text `encode` writes, for any sequence of parts
// and any text: escapes, control characters, non-ASCII, emoji, lone surrogates, long deltas.

import { afterAll, beforeAll, expect, setSystemTime, test } from 'bun:test';
import fc from 'fast-check';
import { frameBytes, utf8 } from '../../core/wire/frame-bytes.ts';
import type { StreamPart } from '../../core/spec/vocabulary.ts';
import { echoOf, ResponsesStreamEncoder } from '../../plugins/responses/index.ts';

const textEncoder = new TextEncoder();

/** Characters that take each branch of the byte writer, plus any UTF-16 code unit at all. */
const character = fc.oneof(
  fc.constantFrom('a', ' ', '~', '\u007f', '"', '\\', '\n', '\u0000', '\u001f', 'é', '\u0080', '\u2028', '漢', '😀', '\ud800', '\udfff', '\udc00\ud83d'),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
);
/** Short deltas (the usual ones) and some past the length copied character by character. */
const text = fc.oneof(fc.string({ unit: character, maxLength: 12 }), fc.string({ unit: character, maxLength: 200 }));

function concatenated(chunks: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}

test('frameBytes writes the UTF-8 of head, number, middle, the JSON string and tail', () => {
  const head = 'event: response.output_text.delta\ndata: {"sequence_number":';
  const middle = ',"item_id":"msg_é😀","delta":';
  const tail = '}\n\n';
  const pieces = [utf8(head), utf8(middle), utf8(tail)] as const;
  fc.assert(
    fc.property(fc.oneof(fc.nat(), fc.constantFrom(0, 9, 10, 99, 100, 4095, 4096, 2 ** 31, Number.MAX_SAFE_INTEGER)), text, (number, delta) => {
      const expected = textEncoder.encode(`${head}${number}${middle}${JSON.stringify(delta)}${tail}`);
      expect(frameBytes(pieces[0], number, pieces[1], delta, pieces[2])).toEqual(expected);
    }),
    { numRuns: 2000 },
  );
});

const part: fc.Arbitrary<StreamPart> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: fc.constant('text-delta' as const), index: fc.constantFrom(0, 0, 0, 1), text }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('reasoning-delta' as const), index: fc.constantFrom(0, 0, 1), text }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('tool-call-start' as const),
      index: fc.constant(0),
      toolIndex: fc.nat(2),
      id: fc.constantFrom('call_1', 'call_2'),
      name: fc.constantFrom('shell', 'custom_tool'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ type: fc.constant('tool-call-delta' as const), index: fc.constantFrom(0, 0, 1), toolIndex: fc.nat(2), argumentsDelta: text }),
  },
  { weight: 1, arbitrary: fc.constant<StreamPart>({ type: 'keepalive' }) },
);

const finish: StreamPart = { type: 'finish', index: 0, finishReason: { unified: 'stop', raw: 'stop' } };

function streamEncoder(): ResponsesStreamEncoder {
  return new ResponsesStreamEncoder({ responseId: 'resp_property', model: 'm', echo: echoOf({}), customTools: new Set(['custom_tool']) });
}

beforeAll(() => setSystemTime(new Date('2026-12-06T00:00:00Z')));
afterAll(() => setSystemTime());

test('a stream written through encodeBytes is byte for byte the UTF-8 of the same stream through encode', () => {
  fc.assert(
    fc.property(fc.array(part, { maxLength: 40 }), fc.boolean(), (parts, finished) => {
      const all: StreamPart[] = [{ type: 'start', id: 'x', model: 'm', created: 1 }, ...parts, ...(finished ? [finish] : [])];
      const asText = streamEncoder();
      const asBytes = streamEncoder();
      const text = all.map((each) => asText.encode(each)).join('') + asText.end();
      const bytes = concatenated([...all.map((each) => asBytes.encodeBytes(each)), textEncoder.encode(asBytes.end())]);
      expect(bytes).toEqual(textEncoder.encode(text));
    }),
    { numRuns: 500 },
  );
});

test('a delta into the open item is written straight to bytes, not through encode', () => {
  const stream = streamEncoder();
  stream.encodeBytes({ type: 'start', id: 'x', model: 'm', created: 1 });
  stream.encodeBytes({ type: 'text-delta', index: 0, text: 'first' });
  const encode = stream.encode.bind(stream);
  let encoded = 0;
  stream.encode = (each) => {
    encoded++;
    return encode(each);
  };
  const bytes = stream.encodeBytes({ type: 'text-delta', index: 0, text: ' second "quoted" 😀' });
  expect(encoded).toBe(0);
  expect(new TextDecoder().decode(bytes)).toContain('"delta":" second \\"quoted\\" 😀"}\n\n');
});
