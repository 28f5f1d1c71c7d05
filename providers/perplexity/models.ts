import { KeywayError } from '../../core/errors.ts';
import { getUpstreamJson } from '../../core/wire/provider-kit.ts';

/** Sonar's documented chat models, answered when the server has no models list. */
export const PERPLEXITY_DOCUMENTED_MODELS: readonly string[] = ['sonar', 'sonar-pro', 'sonar-reasoning-pro', 'sonar-deep-research'];

export interface ListPerplexityModelsInput {
  fetch: typeof fetch;
  baseUrl: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  classify: (status: number, body: string, headers: Headers) => KeywayError;
}

/**
 * Asks `GET /v1/models` first, since Perplexity serves an OpenAI-style list there; answers the
 * documented list when that route is missing (404/405) or lists nothing. A rejected key still
 * fails, so a key check through the models list stays honest. The list uses Agent API names
 * (`perplexity/sonar`): the prefix is removed, and other vendors' models, which
 * `/chat/completions` does not serve, are left out.
 */
export async function listPerplexityModels(input: ListPerplexityModelsInput): Promise<string[]> {
  let body: { data?: Array<{ id?: unknown }> };
  try {
    body = (await getUpstreamJson(input.fetch, `${input.baseUrl}/v1/models`, input.headers, input.signal, 'perplexity', input.classify)) as typeof body;
  } catch (error) {
    if (error instanceof KeywayError && (error.extra?.upstream_status === 404 || error.extra?.upstream_status === 405))
      return [...PERPLEXITY_DOCUMENTED_MODELS];
    throw error;
  }
  const names = (Array.isArray(body.data) ? body.data : [])
    .map((model) => model.id)
    .filter((id): id is string => typeof id === 'string')
    .map((id) => (id.startsWith('perplexity/') ? id.slice('perplexity/'.length) : id))
    .filter((id) => !id.includes('/'));
  return names.length > 0 ? names : [...PERPLEXITY_DOCUMENTED_MODELS];
}
