// Token usage and finish reasons, end to end: what the client is told and what the usage row says
// must equal what the provider itself answered. The provider's answer is obtained by replaying the
// adapter's recorded request straight to the simulator (see native-answers.ts for why that is the
// same answer) and reading it with the reference's mapping.

import { expect, test } from 'bun:test';
import {
  chatBody,
  firstChoice,
  lastNativeRequest,
  postChat,
  streamChat,
  usageRowFor,
  type Harness,
  type Message,
  type UsageRecord,
} from './conformance-harness.ts';
import { replayNative, type JsonObject, type NativeAnswer, type TokenCounts } from './native-answers.ts';
import type { ProviderDescriptor } from './provider-descriptors.ts';

interface UsageCase {
  name: string;
  messages: Message[];
  extra: JsonObject;
  finishReason: string;
  needsTools: boolean;
}

const TOOL = { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { term: { type: 'string' } }, required: ['term'] } } };

const USAGE_CASES: UsageCase[] = [
  {
    name: 'a text answer',
    messages: [
      { role: 'system', content: 'Count carefully.' },
      { role: 'user', content: 'How many tokens does this answer take?' },
    ],
    extra: {},
    finishReason: 'stop',
    needsTools: false,
  },
  {
    name: 'an answer cut by max_tokens',
    messages: [{ role: 'user', content: 'Say something long enough to be cut short by the limit' }],
    extra: { max_tokens: 3 },
    finishReason: 'length',
    needsTools: false,
  },
  {
    name: 'a tool call',
    messages: [{ role: 'user', content: 'Look that up, call all tools' }],
    extra: { tools: [TOOL] },
    finishReason: 'tool_calls',
    needsTools: true,
  },
];

function tokenCounts(usage: unknown): TokenCounts {
  const fields = (usage ?? {}) as Partial<TokenCounts>;
  return { prompt_tokens: Number(fields.prompt_tokens), completion_tokens: Number(fields.completion_tokens), total_tokens: Number(fields.total_tokens) };
}

/** The provider's own answer to the request the adapter just sent. */
async function nativeAnswerOf(harness: Harness): Promise<NativeAnswer> {
  return harness.descriptor.readNative(await replayNative(harness.simulator, lastNativeRequest(harness)));
}

function expectRowMatches(row: UsageRecord, harness: Harness, expected: TokenCounts, streamed: boolean): void {
  expect({
    status: row.status,
    provider: row.provider,
    model: row.model,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    totalTokens: row.inputTokens + row.outputTokens,
    streamed: row.streamed,
  }).toEqual({
    status: 200,
    provider: harness.descriptor.name,
    model: harness.descriptor.model,
    inputTokens: expected.prompt_tokens,
    outputTokens: expected.completion_tokens,
    totalTokens: expected.total_tokens,
    streamed,
  });
}

function withoutChoices(chunk: JsonObject): boolean {
  return Array.isArray(chunk.choices) && chunk.choices.length === 0;
}

export function describeUsageScenarios(harness: () => Harness, descriptor: ProviderDescriptor): void {
  for (const usageCase of USAGE_CASES) {
    const applies = !usageCase.needsTools || descriptor.tools;
    test.skipIf(!applies)(`usage and finish reason equal the provider's: ${usageCase.name}, not streamed`, async () => {
      const { response, body } = await postChat(harness(), chatBody(harness(), usageCase.messages, usageCase.extra));
      expect(response.status).toBe(200);
      const native = await nativeAnswerOf(harness());
      expect(native.finishReason).toBe(usageCase.finishReason);
      expect(firstChoice(body).finish_reason).toBe(native.finishReason);
      expect(tokenCounts(body.usage)).toEqual(native.usage);
      expectRowMatches(await usageRowFor(harness(), response), harness(), native.usage, false);
    });

    test.skipIf(!applies)(`usage and finish reason equal the provider's: ${usageCase.name}, streamed with include_usage`, async () => {
      const streamed = await streamChat(harness(), chatBody(harness(), usageCase.messages, { ...usageCase.extra, stream_options: { include_usage: true } }));
      expect(streamed.errors).toEqual([]);
      expect(streamed.done).toBe(true);
      const native = await nativeAnswerOf(harness());
      expect(native.finishReason).toBe(usageCase.finishReason);
      expect(streamed.finishReasons).toEqual([native.finishReason]);
      expect(tokenCounts(streamed.usage)).toEqual(native.usage);
      // OpenAI's contract: the usage chunk is the last before [DONE] and carries no choices; every
      // chunk before it carries `"usage": null`.
      const last = streamed.chunks.at(-1);
      expect(last?.usage).toEqual(streamed.usage);
      expect(last?.choices).toEqual([]);
      expect(streamed.chunks.slice(0, -1).filter((chunk) => chunk.usage !== null)).toEqual([]);
      expect(streamed.chunks.filter(withoutChoices)).toHaveLength(1);
      expectRowMatches(await usageRowFor(harness(), streamed.response), harness(), native.usage, true);
    });
  }

  test('usage: a stream without include_usage sends no usage chunk, and the row still has the tokens', async () => {
    const streamed = await streamChat(harness(), chatBody(harness(), [{ role: 'user', content: 'No usage chunk for me' }]));
    expect(streamed.errors).toEqual([]);
    expect(streamed.done).toBe(true);
    expect(streamed.usage).toBeUndefined();
    // A chunk without choices is OpenAI's usage chunk: clients that did not ask read choices[0] of every chunk.
    expect(streamed.chunks.filter(withoutChoices)).toEqual([]);
    const native = await nativeAnswerOf(harness());
    expectRowMatches(await usageRowFor(harness(), streamed.response), harness(), native.usage, true);
  });
}
