// /v1/responses sent by a strategy to a reasoning model the client did not name (cost_optimized's
// class substitute, gpt-5 for claude-3-opus-20240229): the sampling meant for the named model is left
// out, with a warning, as on the chat path; the Responses API refuses it on reasoning models (QA18).

import { afterAll, beforeAll, beforeEach, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { anthropicDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';

let world: ClientWorld;
let client: OpenAI;

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor, anthropicDescriptor]);
  client = new OpenAI({ baseURL: `${world.gateway.url}/v1`, apiKey: world.gateway.defaultAdminKey, maxRetries: 0 });
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

const sentToOpenAI = (): Record<string, unknown> => (world.simulator('openai').inferenceRequests().at(-1)?.body ?? {}) as Record<string, unknown>;

test("a substitute reasoning model gets no temperature or top_p, and the answer's warnings name them", async () => {
  for (const stream of [false, true] as const) {
    world.simulator('openai').reset();
    const body = { model: 'claude-3-opus-20240229', input: 'hi', temperature: 0.1, top_p: 0.2, routing: { strategy: 'cost_optimized' } };
    const { data, response } = await client.responses.create({ ...body, stream } as never).withResponse();
    if (stream) for await (const _event of data as unknown as AsyncIterable<unknown>);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    const sent = sentToOpenAI();
    expect(String(sent.model)).toMatch(/^(o\d|gpt-5)/);
    expect({ stream, temperature: sent.temperature, top_p: sent.top_p }).toEqual({ stream, temperature: undefined, top_p: undefined });
    const warnings = response.headers.get('x-keyway-warnings') ?? '';
    expect(warnings).toContain("openai: ignored 'temperature'");
    expect(warnings).toContain("openai: ignored 'top_p'");
  }
});

test('a client that names the reasoning model itself has its temperature forwarded, as calling OpenAI', async () => {
  await client.responses.create({ model: 'gpt-5', input: 'hi', temperature: 0.1, routing: { strategy: 'direct' } } as never).catch(() => undefined);
  expect(sentToOpenAI().temperature).toBe(0.1);
});
