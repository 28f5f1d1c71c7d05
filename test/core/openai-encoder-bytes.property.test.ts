// Property: the chat stream encoder's bytes (encodeBytes, what streamAnswer sends) are exactly the
// UTF-8 of the SSE text `encode` writes, for any sequence of parts and any text.

import { afterAll, beforeAll, expect, setSystemTime, test } from 'bun:test';
import fc from 'fast-check';
import type { StreamPart } from '../../core/spec/vocabulary.ts';
import { OpenAIStreamEncoder } from '../../core/wire/openai-encoder.ts';

const textEncoder = new TextEncoder();
const character = fc.oneof(
  fc.constantFrom('a', ' ', '"', '\\', '\n', '\u0000', '\u007f', 'é', '\u2028', '漢', '😀', '\ud800', '\udfff'),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
);
const text = fc.oneof(fc.string({ unit: character, maxLength: 12 }), fc.string({ unit: character, maxLength: 200 }));

const part: fc.Arbitrary<StreamPart> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ type: fc.constant('text-delta' as const), index: fc.constantFrom(0, 0, 1, 12), text }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('reasoning-delta' as const), index: fc.constant(0), text }) },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('start' as const), id: fc.constantFrom('', 'msg_é'), model: fc.constantFrom('', 'm😀'), created: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.constant<StreamPart>({ type: 'extra-fields', fields: { citations: ['https://a.example'] } }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('finish' as const),
      index: fc.constantFrom(0, 1, 12),
      finishReason: fc.constant({ unified: 'stop' as const, raw: 'stop' }),
    }),
  },
);

// Both encoders read the clock for `created`: the same second for both.
beforeAll(() => setSystemTime(new Date('2026-12-06T00:00:00Z')));
afterAll(() => setSystemTime());

test('a chat stream written through encodeBytes is byte for byte the UTF-8 of the same stream through encode', () => {
  fc.assert(
    fc.property(fc.array(part, { maxLength: 30 }), fc.boolean(), (parts, includeUsage) => {
      const asText = new OpenAIStreamEncoder(includeUsage, 'req_property', 'model');
      const asBytes = new OpenAIStreamEncoder(includeUsage, 'req_property', 'model');
      for (const each of parts) expect(asBytes.encodeBytes(each)).toEqual(textEncoder.encode(asText.encode(each)));
    }),
    { numRuns: 500 },
  );
});
