import type { KeywayError } from '../../core/errors.ts';
import { getUpstreamJson } from '../../core/wire/provider-kit.ts';

const PAGE_SIZE = 1000;
/** A guard against a server that keeps answering a next page; Cohere lists far fewer models. */
const MAX_PAGES = 20;

interface CohereModelsPage {
  models?: Array<{ name?: unknown }>;
  next_page_token?: unknown;
}

export interface ListCohereModelsInput {
  fetch: typeof fetch;
  baseUrl: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  classify: (status: number, body: string, headers: Headers) => KeywayError;
}

/** Every model name from `GET /v1/models`, following `next_page_token`. */
export async function listCohereModels(input: ListCohereModelsInput): Promise<string[]> {
  const names: string[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
    if (pageToken !== undefined) query.set('page_token', pageToken);
    const body = (await getUpstreamJson(
      input.fetch,
      `${input.baseUrl}/v1/models?${query}`,
      input.headers,
      input.signal,
      'cohere',
      input.classify,
    )) as CohereModelsPage;
    for (const model of body.models ?? []) if (typeof model.name === 'string') names.push(model.name);
    if (typeof body.next_page_token !== 'string' || body.next_page_token.length === 0) break;
    pageToken = body.next_page_token;
  }
  return names;
}
