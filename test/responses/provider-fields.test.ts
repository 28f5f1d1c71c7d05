// QA20: a provider's own answer fields (Perplexity's `citations` and `search_results`) reach a chat
// client as top-level fields, but /v1/responses dropped them: a Sonar answer through the Responses API
// lost its sources. They ride on the response object now, in the JSON answer, in the streamed
// `response.completed` and in the stored response, never replacing a field of the response's own.

import { describe, expect, test } from 'bun:test';
import { perplexityDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from '../clients/client-fixtures.ts';

const world = useClientWorld([perplexityDescriptor]);

interface Sourced {
  id: string;
  object: string;
  citations?: string[];
  search_results?: Array<{ url: string; title: string }>;
}

async function chatSources(): Promise<Sourced> {
  const { openai } = sdkClients(world());
  return (await openai.chat.completions.create({
    model: perplexityDescriptor.model,
    messages: [{ role: 'user', content: 'Latest news?' }],
  })) as unknown as Sourced;
}

describe("Perplexity's sources on /v1/responses", () => {
  test('the JSON answer carries citations and search_results as chat does, and the stored response keeps them', async () => {
    const { openai } = sdkClients(world());
    const expected = await chatSources();
    expect(expected.citations?.length).toBeGreaterThan(0);
    const response = (await openai.responses.create({ model: perplexityDescriptor.model, input: 'Latest news?' })) as unknown as Sourced;
    expect(response.object).toBe('response');
    expect(response.citations).toEqual(expected.citations);
    expect(response.search_results).toEqual(expected.search_results);
    const stored = (await openai.responses.retrieve(response.id)) as unknown as Sourced;
    expect(stored.citations).toEqual(expected.citations);
  });

  test('a stream carries them on response.completed, and the SDK hands them on in the final response', async () => {
    const { openai } = sdkClients(world());
    const expected = await chatSources();
    const stream = openai.responses.stream({ model: perplexityDescriptor.model, input: 'Latest news?' });
    let completed: Sourced | undefined;
    for await (const event of stream) if (event.type === 'response.completed') completed = event.response as unknown as Sourced;
    expect(completed?.object).toBe('response');
    expect(completed?.citations).toEqual(expected.citations);
    expect(completed?.search_results).toEqual(expected.search_results);
    expect(((await stream.finalResponse()) as unknown as Sourced).citations).toEqual(expected.citations);
  });
});
