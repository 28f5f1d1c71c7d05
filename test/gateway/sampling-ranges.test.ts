// temperature and top_p outside the range of the API a client speaks are the client's mistake, said
// the same way whoever would serve: 400 invalid_field naming the parameter, before routing and before
// any upstream call. They used to get OpenAI's 400, Gemini's and Perplexity's 400 without a param,
// Anthropic's clamping (200) or Cohere's acceptance (200), depending on the provider. The OpenAI
// dialects (chat completions, responses) take OpenAI's ranges (temperature 0–2, top_p 0–1); the
// Anthropic Messages dialect takes Anthropic's (0–1 both). Inside them, a provider with a narrower
// range still clamps, with a warning.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { type ClientWorld, startClientWorld } from '../clients/client-fixtures.ts';
import { anthropicDescriptor, PROVIDER_DESCRIPTORS } from '../conformance/provider-descriptors.ts';
import { call, expectSpecError } from '../helpers/gateway.ts';

let world: ClientWorld;

beforeAll(async () => {
  world = await startClientWorld(PROVIDER_DESCRIPTORS);
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

function upstreamCalls(): number {
  return [...world.simulators.values()].reduce((sum, simulator) => sum + simulator.inferenceRequests().length, 0);
}

const OUT_OF_RANGE: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
  ['temperature 3', { temperature: 3 }, "Invalid value for 'temperature': must be a number from 0 to 2"],
  ['temperature -1', { temperature: -1 }, "Invalid value for 'temperature': must be a number from 0 to 2"],
  ['temperature 2.0001', { temperature: 2.0001 }, "Invalid value for 'temperature': must be a number from 0 to 2"],
  ['temperature "hot"', { temperature: 'hot' }, "Invalid value for 'temperature': must be a number from 0 to 2"],
  ['top_p 1.5', { top_p: 1.5 }, "Invalid value for 'top_p': must be a number from 0 to 1"],
  ['top_p -0.1', { top_p: -0.1 }, "Invalid value for 'top_p': must be a number from 0 to 1"],
];

describe('/v1/chat/completions: OpenAI ranges for every provider', () => {
  for (const descriptor of PROVIDER_DESCRIPTORS) {
    test.each(OUT_OF_RANGE)(`${descriptor.name}: %s is 400 invalid_field before any upstream call`, async (_name, sampling, message) => {
      const response = await call(world.gateway, 'POST', '/v1/chat/completions', {
        model: descriptor.model,
        messages: [{ role: 'user', content: 'hi' }],
        ...sampling,
      });
      const body = await expectSpecError(response, 400, 'invalid_field');
      expect(body.error.param).toBe(Object.keys(sampling)[0] as string);
      expect(body.error.message).toBe(message);
      expect(upstreamCalls()).toBe(0);
    });
  }

  test('the bounds themselves and null are taken', async () => {
    for (const sampling of [
      { temperature: 0, top_p: 0 },
      { temperature: 2, top_p: 1 },
      { temperature: null, top_p: null },
    ]) {
      const response = await call(world.gateway, 'POST', '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        ...sampling,
      });
      expect({ sampling, status: response.status }).toEqual({ sampling, status: 200 });
      await response.arrayBuffer();
    }
  });

  test('inside the range, Anthropic still clamps to its own 0–1 and says so', async () => {
    const response = await call(world.gateway, 'POST', '/v1/chat/completions', {
      model: anthropicDescriptor.model,
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 1.5,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-keyway-warnings')).toContain('anthropic: temperature 1.5 clamped to 1');
    await response.arrayBuffer();
  });
});

describe('/v1/responses: the same OpenAI ranges', () => {
  test.each(OUT_OF_RANGE)('%s is 400 invalid_field before any upstream call', async (_name, sampling, message) => {
    const response = await call(world.gateway, 'POST', '/v1/responses', { model: anthropicDescriptor.model, input: 'hi', ...sampling });
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.message).toBe(message);
    expect(upstreamCalls()).toBe(0);
  });
});

describe("/v1/messages: Anthropic's own range, 0–1, whoever serves", () => {
  const cases: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    ['temperature 1.5', { temperature: 1.5 }, "Invalid value for 'temperature': must be a number from 0 to 1"],
    ['temperature -1', { temperature: -1 }, "Invalid value for 'temperature': must be a number from 0 to 1"],
    ['top_p 1.2', { top_p: 1.2 }, "Invalid value for 'top_p': must be a number from 0 to 1"],
  ];
  for (const model of [anthropicDescriptor.model, 'gpt-4o-mini', 'command-r-plus']) {
    test.each(cases)(`${model}: %s is a 400 naming the parameter, before any upstream call`, async (_name, sampling, message) => {
      const response = await call(
        world.gateway,
        'POST',
        '/v1/messages',
        { model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], ...sampling },
        { headers: { 'anthropic-version': '2023-06-01' } },
      );
      expect(response.status).toBe(400);
      // Anthropic's error shape, as every answer on /v1/messages.
      const body = (await response.json()) as { type: string; error: { type: string; message: string } };
      expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message } });
      expect(upstreamCalls()).toBe(0);
    });
  }

  test('inside 0–1 it is served', async () => {
    const response = await call(
      world.gateway,
      'POST',
      '/v1/messages',
      { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], temperature: 1, top_p: 0.5 },
      { headers: { 'anthropic-version': '2023-06-01' } },
    );
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  });
});
