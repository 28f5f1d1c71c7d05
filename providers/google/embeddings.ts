import type { EmbeddingsRequest, EmbeddingsResult } from '../../core/spec/plugin.ts';
import { emptyUsage } from '../../core/spec/vocabulary.ts';
import { buildGeminiEmbeddingsRequest } from './request.ts';
import { parseGeminiEmbeddings } from './response.ts';

/**
 * Gemini's `batchEmbedContents` limit on requests per call ("at most 100 requests can be in one
 * batch"); longer inputs are sent in batches. OpenAI takes 2048 inputs, and clients send hundreds at
 * once (LangChain's OpenAIEmbeddings: 1000): every such call was Gemini's 400 until QA20.
 */
export const MAX_EMBEDDINGS_PER_CALL = 100;

export type PostBatch = (body: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** The batches' vectors as one list, indexed in input order, with the usage of every batch. */
export async function embedWithGemini(request: EmbeddingsRequest, model: string, post: PostBatch): Promise<EmbeddingsResult> {
  const { body, inputs } = buildGeminiEmbeddingsRequest(request, model);
  const requests = body.requests as unknown[];
  const data: EmbeddingsResult['data'] = [];
  const usage = emptyUsage();
  for (let offset = 0; offset < requests.length; offset += MAX_EMBEDDINGS_PER_CALL) {
    const answer = parseGeminiEmbeddings(
      await post({ requests: requests.slice(offset, offset + MAX_EMBEDDINGS_PER_CALL) }),
      inputs.slice(offset, offset + MAX_EMBEDDINGS_PER_CALL),
      model,
      request.encoding_format,
    );
    for (const item of answer.data) data.push({ ...item, index: offset + item.index });
    usage.inputTokens += answer.usage.inputTokens;
    usage.totalTokens += answer.usage.totalTokens;
  }
  return { model, data, usage };
}
