import { invalidField, KeywayError } from '../../core/errors.ts';
import type { EmbeddingsRequest, EmbeddingsResult } from '../../core/spec/plugin.ts';
import { upstreamFailure } from '../../core/wire/provider-kit.ts';

/** Cohere's `/v2/embed` limit on texts per call; longer inputs are sent in batches. */
export const MAX_TEXTS_PER_CALL = 96;

interface CohereEmbedResponse {
  embeddings?: { float?: number[][] | null } | null;
  meta?: { billed_units?: { input_tokens?: number | null } | null } | null;
}

export type PostEmbedBody = (body: Record<string, unknown>) => Promise<Record<string, unknown>>;

/**
 * Serves an OpenAI embeddings request through `/v2/embed`. `input_type` defaults to
 * `search_document` (OpenAI has no such notion and documents are the common case); a client may
 * send Cohere's own `input_type` and `truncate`. Usage is Cohere's billed input tokens.
 */
export async function embedWithCohere(request: EmbeddingsRequest, model: string, post: PostEmbedBody): Promise<EmbeddingsResult> {
  const texts = textsOf(request.input);
  const data: EmbeddingsResult['data'] = [];
  let inputTokens = 0;
  for (let offset = 0; offset < texts.length; offset += MAX_TEXTS_PER_CALL) {
    const batch = texts.slice(offset, offset + MAX_TEXTS_PER_CALL);
    const answer = readEmbedResponse(await post(buildCohereEmbedBody(request, model, batch)), batch.length);
    answer.vectors.forEach((vector, position) => data.push({ index: offset + position, embedding: encodeEmbedding(vector, request.encoding_format) }));
    inputTokens += answer.inputTokens;
  }
  return {
    model,
    data,
    usage: { inputTokens, outputTokens: 0, totalTokens: inputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
  };
}

function textsOf(input: EmbeddingsRequest['input']): string[] {
  const texts = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(texts) || !texts.every((item): item is string => typeof item === 'string')) {
    throw new KeywayError('unsupported_feature', { detail: 'cohere embeds text; token-id input is not supported' }, { param: 'input' });
  }
  if (texts.length === 0) throw invalidField('input', 'must hold at least one text');
  return texts;
}

export function buildCohereEmbedBody(request: EmbeddingsRequest, model: string, texts: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    texts,
    input_type: typeof request.input_type === 'string' ? request.input_type : 'search_document',
    // Always floats: OpenAI's base64 is little-endian float32, which Keyway encodes itself below.
    embedding_types: ['float'],
  };
  if (typeof request.dimensions === 'number') body.output_dimension = request.dimensions;
  if (typeof request.truncate === 'string') body.truncate = request.truncate;
  return body;
}

function readEmbedResponse(body: Record<string, unknown>, expected: number): { vectors: number[][]; inputTokens: number } {
  const response = body as CohereEmbedResponse;
  const vectors = response.embeddings?.float;
  if (!Array.isArray(vectors) || vectors.length !== expected) {
    throw upstreamFailure({ provider: 'cohere', status: 200, reason: 'server_error', message: 'the embed response has no float embeddings for every text' });
  }
  const billed = response.meta?.billed_units?.input_tokens;
  return { vectors, inputTokens: typeof billed === 'number' ? Math.round(billed) : 0 };
}

/** OpenAI's `encoding_format: base64` is the float32 little-endian bytes of the vector. */
export function encodeEmbedding(vector: number[], format: EmbeddingsRequest['encoding_format']): number[] | string {
  if (format !== 'base64') return vector;
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}
