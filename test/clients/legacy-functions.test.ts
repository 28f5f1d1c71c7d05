// OpenAI's deprecated function calling (`functions`, `function_call`), as older clients send it through
// the official `openai` SDK. A provider without it used to drop the functions with a warning (Perplexity
// forwarded them, and Sonar ignored them without a word): the client got text where it asked for a
// call. Like the deprecated `function` role, it is now refused before any call, naming the field and
// what to send instead, so a fallback chain skips that provider (QA20 seed F8).

import { beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { rejectionOf, sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld();
let client: OpenAI;

beforeAll(() => {
  client = sdkClients(world()).openai;
});

const LEGACY = {
  messages: [{ role: 'user' as const, content: 'weather in Paris?' }],
  functions: [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
  function_call: 'auto' as const,
};

describe('legacy function calling on providers without it', () => {
  for (const [provider, model] of [
    ['anthropic', 'claude-sonnet-4-20250514'],
    ['google', 'gemini-2.5-flash'],
    ['cohere', 'command-r-plus'],
    ['perplexity', 'sonar'],
  ] as const) {
    test(`${provider}: 400 unsupported_feature naming functions, no upstream call`, async () => {
      const failure = await rejectionOf(client.chat.completions.create({ model, ...LEGACY }));
      expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
      const { code, param, message } = failure as InstanceType<typeof OpenAI.BadRequestError>;
      expect({ code, param }).toEqual({ code: 'unsupported_feature', param: 'functions' });
      expect(message).toContain('send tools');
      expect(world().simulator(provider).inferenceRequests()).toHaveLength(0);
    });
  }

  test('an empty functions list asks for nothing: served, as before', async () => {
    const completion = await client.chat.completions.create({ model: 'claude-sonnet-4-20250514', messages: LEGACY.messages, functions: [] });
    expect(completion.choices[0]?.message.content).toBe('Echo: weather in Paris?');
  });
});
