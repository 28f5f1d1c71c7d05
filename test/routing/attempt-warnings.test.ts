// X-Keyway-Warnings describes the attempt that served: a failed attempt's translation warnings (what
// Anthropic would have ignored) do not reach the answer another provider gave (QA18: after Anthropic's
// 500, OpenAI's answer said "anthropic: ignored 'seed'").

import { expect, test } from 'bun:test';
import { anthropicDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { sdkClients, useClientWorld } from '../clients/client-fixtures.ts';

const world = useClientWorld([anthropicDescriptor, openAIDescriptor]);

test("a fallback's answer carries only the serving attempt's warnings", async () => {
  world().simulator('anthropic').inject({ kind: 'server_error' });
  const { openai } = sdkClients(world());
  const body = {
    model: 'claude-3-opus-20240229',
    seed: 7,
    messages: [{ role: 'user' as const, content: 'hi' }],
    routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'], fallback_reasons: ['server_error'] },
  };
  const { response } = await openai.chat.completions.create(body as never).withResponse();
  expect(response.headers.get('x-provider-used')).toBe('openai');
  expect(response.headers.get('x-fallback-attempts')).toBe('1');
  expect(response.headers.get('x-keyway-warnings') ?? '').not.toContain('anthropic:');
});

test('the answer of the first attempt keeps its warnings', async () => {
  const { openai } = sdkClients(world());
  const { response } = await openai.chat.completions
    .create({ model: 'claude-3-opus-20240229', seed: 7, messages: [{ role: 'user', content: 'hi' }] } as never)
    .withResponse();
  expect(response.headers.get('x-provider-used')).toBe('anthropic');
  expect(response.headers.get('x-keyway-warnings')).toContain("anthropic: ignored 'seed'");
});
