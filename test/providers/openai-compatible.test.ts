// The OpenAI-compatible base's stream reading (providers/openai-compatible/stream.ts), from fixtures:
// when a stream is whole and when it was cut.

import { describe, expect, test } from 'bun:test';
import type { StreamPart } from '../../core/spec/vocabulary.ts';
import { openAIStreamParts } from '../../providers/openai-compatible/stream.ts';

const FIXTURES = `${import.meta.dir}/../fixtures/openai-compatible`;

/** A body that arrives in pieces of `size` bytes, so events straddle reads. */
function chunkedBody(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const collected: StreamPart[] = [];
  for await (const part of parts) collected.push(part);
  return collected;
}

describe('stream endings (fixtures)', async () => {
  const cases = (await Bun.file(`${FIXTURES}/stream-cases.json`).json()) as Array<{ name: string; file: string; expected: unknown[] }>;
  for (const testCase of cases) {
    test(testCase.name, async () => {
      const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/${testCase.file}`).arrayBuffer());
      for (const size of [1, 9, bytes.length]) {
        const parts = await collect(openAIStreamParts('openai', chunkedBody(bytes, size), new AbortController().signal));
        expect(parts).toMatchObject(testCase.expected);
        expect(parts).toHaveLength(testCase.expected.length);
      }
    });
  }

  test('a stream the client cancelled ends quietly, whole or not', async () => {
    const bytes = new Uint8Array(await Bun.file(`${FIXTURES}/stream-cut-before-finish.sse`).arrayBuffer());
    const controller = new AbortController();
    controller.abort();
    const parts = await collect(openAIStreamParts('openai', chunkedBody(bytes, bytes.length), controller.signal));
    expect(parts.filter((part) => part.type === 'error')).toEqual([]);
  });
});
