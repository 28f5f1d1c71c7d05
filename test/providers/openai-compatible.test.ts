// The OpenAI-compatible base's stream reading (providers/openai-compatible/stream.ts), from fixtures:
// when a stream is whole and when it was cut.

import { describe, expect, test } from 'bun:test';
import { openAIStreamParts } from '../../providers/openai-compatible/stream.ts';
import { bytesInPieces, collect } from './provider-test-kit.ts';

const FIXTURES = `${import.meta.dir}/../fixtures/openai-compatible`;

describe('stream endings (fixtures)', async () => {
  const cases = (await Bun.file(`${FIXTURES}/stream-cases.json`).json()) as Array<{ name: string; file: string; expected: unknown[] }>;
  for (const testCase of cases) {
    test(testCase.name, async () => {
      const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/${testCase.file}`).arrayBuffer());
      for (const size of [1, 9, bytes.length]) {
        const parts = await collect(openAIStreamParts('openai', bytesInPieces(bytes, size), new AbortController().signal));
        expect(parts).toMatchObject(testCase.expected);
        expect(parts).toHaveLength(testCase.expected.length);
      }
    });
  }

  test('a stream the client cancelled ends quietly, whole or not', async () => {
    const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/stream-cut-before-finish.sse`).arrayBuffer());
    const controller = new AbortController();
    controller.abort();
    const parts = await collect(openAIStreamParts('openai', bytesInPieces(bytes, bytes.length), controller.signal));
    expect(parts.filter((part) => part.type === 'error')).toEqual([]);
  });
});
