import type { ChatResult } from '../../core/spec/vocabulary.ts';
import { parseOpenAIChatResponse } from '../openai-compatible/response.ts';
import { unreportedPerplexityUsage, usageFromPerplexity, type PerplexityUsage } from './usage.ts';

/** Perplexity's top-level answer fields that OpenAI lacks, handed to the client as they are. */
export const PERPLEXITY_EXTRA_FIELDS = ['citations', 'search_results', 'images', 'related_questions', 'videos'] as const;

/**
 * Reads a Sonar answer with the OpenAI reader, then adds what is Perplexity's own: citations and the
 * other search fields as `extraFields`, usage with reasoning tokens, and Perplexity's usage object
 * (cost included) as `extraFields.usage_details`. The raw body is not kept as `openAIBody`: it is not
 * an OpenAI body, and the streamed path builds its answer the same way, so both agree.
 */
export function parsePerplexityChatResponse(body: Record<string, unknown>, requestedContextSize?: string): ChatResult {
  const { openAIBody: _notOpenAI, ...result } = parseOpenAIChatResponse('perplexity', body);
  const usage = body.usage as PerplexityUsage | undefined;
  result.usage = usageFromPerplexity(usage, requestedContextSize) ?? unreportedPerplexityUsage(requestedContextSize);
  const extraFields = searchFieldsOf(body);
  if (usage !== undefined && usage !== null) extraFields.usage_details = usage;
  if (Object.keys(extraFields).length > 0) result.extraFields = extraFields;
  return result;
}

export function searchFieldsOf(body: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const name of PERPLEXITY_EXTRA_FIELDS) if (body[name] !== undefined && body[name] !== null) fields[name] = body[name];
  return fields;
}
