// /v1/messages keeps Anthropic's own parameters (thinking, top_k, context_management…)
// when Anthropic is to serve. When Anthropic fails and the chain's next provider is OpenAI, its class
// substitute (gpt-5) was sent them too, OpenAI refused them ("Unrecognized request argument"), the
// attempt was set aside and the request failed though OpenAI was up: every Claude Code request (it
// sends thinking and context_management) lost its fallback (QA20 seed F7). Through the Anthropic SDK.

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { addAccountKeys, createAccount, routingSuite } from './harness.ts';

const suite = routingSuite('substitute-anthropic-fields');
let anthropic: Anthropic;

beforeAll(async () => {
  const adminKey = await createAccount(suite.gateway, 'substitute-anthropic-fields');
  await addAccountKeys(suite.gateway, suite.fleet, ['openai', 'anthropic'], adminKey);
  anthropic = new Anthropic({ baseURL: suite.gateway.url, apiKey: adminKey, maxRetries: 0 });
});

const CLAUDE_CODE_LIKE = {
  model: 'claude-opus-4-5',
  max_tokens: 4_000,
  thinking: { type: 'enabled', budget_tokens: 1_024 },
  top_k: 5,
  context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
  messages: [{ role: 'user', content: 'hi' }],
  routing: { provider_order: ['anthropic', 'openai'] },
};

const ANTHROPIC_FIELDS = ['thinking', 'top_k', 'context_management'];

/** The body OpenAI's simulator received on its last call. */
function openAIBody(): Record<string, unknown> {
  return (suite.fleet.simulators.openai.inferenceRequests().at(-1)?.body ?? {}) as Record<string, unknown>;
}

describe("Anthropic's own parameters stay with Anthropic", () => {
  test('Anthropic fails: gpt-5 serves without them, each named in the warnings', async () => {
    suite.fleet.simulators.anthropic.setSticky({ kind: 'server_error' });
    const { data, response } = await anthropic.messages.create(CLAUDE_CODE_LIKE as unknown as Anthropic.MessageCreateParamsNonStreaming).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(data.content.map((block) => (block.type === 'text' ? block.text : block.type))).toEqual(['Echo: hi']);
    const sent = openAIBody();
    expect(ANTHROPIC_FIELDS.filter((name) => name in sent)).toEqual([]);
    const warnings = response.headers.get('x-keyway-warnings') ?? '';
    for (const name of ANTHROPIC_FIELDS) expect(warnings).toContain(`openai: ignored '${name}' (Anthropic's parameter, meant for claude-opus-4-5)`);
  });

  test('streamed, the same', async () => {
    suite.fleet.simulators.anthropic.setSticky({ kind: 'server_error' });
    const message = await anthropic.messages.stream(CLAUDE_CODE_LIKE as unknown as Anthropic.MessageStreamParams).finalMessage();
    expect(message.content.map((block) => (block.type === 'text' ? block.text : block.type))).toEqual(['Echo: hi']);
    expect(ANTHROPIC_FIELDS.filter((name) => name in openAIBody())).toEqual([]);
  });

  test('Anthropic up: it gets them, as sent', async () => {
    await anthropic.messages.create(CLAUDE_CODE_LIKE as unknown as Anthropic.MessageCreateParamsNonStreaming);
    const sent = (suite.fleet.simulators.anthropic.inferenceRequests().at(-1)?.body ?? {}) as Record<string, unknown>;
    // top_k is Keyway's to leave out there: Anthropic refuses it beside thinking.
    expect(sent).toMatchObject({ thinking: CLAUDE_CODE_LIKE.thinking, context_management: CLAUDE_CODE_LIKE.context_management });
    expect(suite.fleet.simulators.openai.inferenceRequests()).toHaveLength(0);
  });
});
