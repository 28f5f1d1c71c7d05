// Deterministic embeddings: the same text always maps to the same unit vector, so tests can compare
// vectors across calls and between the float and base64 encodings.

import type { JsonObject } from './openai-behaviour.ts';
import { embeddingItems, itemTokens } from './openai-validation.ts';

/** Width returned when the request names no `dimensions`; small so test output stays readable. */
export const DEFAULT_EMBEDDING_WIDTH = 8;

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a tiny seeded generator, enough for stable pseudo-random components. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The vector for one input, normalised like OpenAI's. Components are rounded to float32 so the float
 * answer and the base64 answer decode to identical numbers.
 */
export function embeddingVector(item: string | number[], width = DEFAULT_EMBEDDING_WIDTH): number[] {
  const key = typeof item === 'string' ? `text:${item}` : `tokens:${item.join(',')}`;
  const random = seededRandom(fnv1a(key));
  const raw = Array.from({ length: width }, () => random() * 2 - 1);
  const norm = Math.sqrt(raw.reduce((sum, value) => sum + value * value, 0)) || 1;
  return raw.map((value) => Math.fround(value / norm));
}

/** Little-endian float32 bytes in base64, the `encoding_format: "base64"` answer. */
export function encodeBase64(vector: number[]): string {
  const view = new DataView(new ArrayBuffer(vector.length * 4));
  vector.forEach((value, index) => view.setFloat32(index * 4, value, true));
  return Buffer.from(view.buffer).toString('base64');
}

/** Builds the response for a request that already passed validation. */
export function embeddingResponse(body: JsonObject): { body: JsonObject; promptTokens: number } {
  const items = embeddingItems(body.input) ?? [];
  const width = typeof body.dimensions === 'number' ? body.dimensions : DEFAULT_EMBEDDING_WIDTH;
  const base64 = body.encoding_format === 'base64';
  const promptTokens = items.reduce((sum, item) => sum + itemTokens(item), 0);
  return {
    promptTokens,
    body: {
      object: 'list',
      data: items.map((item, index) => {
        const vector = embeddingVector(item, width);
        return { object: 'embedding', index, embedding: base64 ? encodeBase64(vector) : vector };
      }),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    },
  };
}
