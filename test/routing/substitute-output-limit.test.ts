// A substitute (the class's model of the chain's next provider, a cheaper one) is routing's choice,
// not the client's: the output allowance the client set for its own model (gpt-5 takes 128 000
// tokens) is held to the substitute's output limit (claude-opus-4-5 takes 64 000), with a warning,
// so the fallback serves. It was sent as is: Anthropic refused it with a 400, the attempt was set
// aside and the request failed though Anthropic was up (QA20 seed F1). The client's own model keeps
// what the client sent: that refusal is the client's to read. Through the official SDKs.

import { beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { addAccountKeys, createAccount, routingSuite, sdkFailureOf } from './harness.ts';

const suite = routingSuite('substitute-output');
let adminKey: string;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  adminKey = await createAccount(suite.gateway, 'substitute-output');
  await addAccountKeys(suite.gateway, suite.fleet, ['openai', 'anthropic'], adminKey);
  openai = new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey: adminKey, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: suite.gateway.url, apiKey: adminKey, maxRetries: 0 });
});

const OPUS_OUTPUT_LIMIT = 64_000;
const chain = { routing: { provider_order: ['openai', 'anthropic'] } };
const LIMIT_WARNING = "anthropic: the output allowance of 100000 tokens is above claude-opus-4-5's output limit; sent 64000 (the request named gpt-5)";

/** A Responses call for a Claude model with Anthropic first and OpenAI's own Responses API as its substitute. */
function responsesFromAnthropicFirst(model: string, maxOutputTokens: number) {
  return openai.responses
    .create({
      model,
      max_output_tokens: maxOutputTokens,
      input: 'hi',
      routing: { provider_order: ['anthropic', 'openai'] },
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
    .withResponse();
}

/** The max_tokens Anthropic's simulator received on its last call. */
function anthropicMaxTokens(): unknown {
  const body = suite.fleet.simulators.anthropic.inferenceRequests().at(-1)?.body as { max_tokens?: unknown } | undefined;
  return body?.max_tokens;
}

describe("a substitute's output allowance is held to its model's limit", () => {
  test('chat, non-streamed: OpenAI fails, Anthropic serves claude-opus-4-5 with 64000', async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    const { data, response } = await openai.chat.completions
      .create({
        model: 'gpt-5',
        max_completion_tokens: 100_000,
        messages: [{ role: 'user', content: 'hi' }],
        ...chain,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('Echo: hi');
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(anthropicMaxTokens()).toBe(OPUS_OUTPUT_LIMIT);
    expect(response.headers.get('x-keyway-warnings')).toContain(LIMIT_WARNING);
  });

  test('chat, streamed: the same', async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    const stream = await openai.chat.completions.create({
      model: 'gpt-5',
      max_tokens: 100_000,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
      ...chain,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Echo: hi');
    expect(anthropicMaxTokens()).toBe(OPUS_OUTPUT_LIMIT);
  });

  test('/v1/messages: the Anthropic SDK gets the fallback answer (streamed, as the SDK wants so large an allowance)', async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    const message = await anthropic.messages
      .stream({ model: 'gpt-5', max_tokens: 100_000, messages: [{ role: 'user', content: 'hi' }], ...chain } as Anthropic.MessageStreamParams)
      .finalMessage();
    expect(message.content.map((block) => (block.type === 'text' ? block.text : block.type))).toEqual(['Echo: hi']);
    expect(anthropicMaxTokens()).toBe(OPUS_OUTPUT_LIMIT);
  });

  test('/v1/responses: max_output_tokens is held the same way', async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    const { data, response } = await openai.responses
      .create({ model: 'gpt-5', max_output_tokens: 100_000, input: 'hi', ...chain } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
      .withResponse();
    expect(data.output_text).toBe('Echo: hi');
    expect(anthropicMaxTokens()).toBe(OPUS_OUTPUT_LIMIT);
    expect(response.headers.get('x-keyway-warnings')).toContain(LIMIT_WARNING);
  });

  test("/v1/responses to an OpenAI substitute (OpenAI's own Responses API, the body sent as is): held the same way", async () => {
    suite.fleet.simulators.anthropic.setSticky({ kind: 'server_error' });
    const { response } = await responsesFromAnthropicFirst('claude-haiku-4-5', 50_000);
    expect(response.headers.get('x-model-used')).toBe('gpt-4o-mini');
    const sent = suite.fleet.simulators.openai.inferenceRequests().at(-1);
    expect({ path: sent?.path, max: (sent?.body as { max_output_tokens?: unknown } | undefined)?.max_output_tokens }).toEqual({
      path: '/v1/responses',
      max: 16_384,
    });
  });

  test("an allowance within the substitute's limit is sent as is, without a warning", async () => {
    suite.fleet.simulators.openai.setSticky({ kind: 'server_error' });
    const { response } = await openai.chat.completions
      .create({
        model: 'gpt-5',
        max_completion_tokens: 2_000,
        messages: [{ role: 'user', content: 'hi' }],
        ...chain,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(anthropicMaxTokens()).toBe(2_000);
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
  });

  // OpenAI's Responses API takes no max_output_tokens below 16; Anthropic takes 10.
  test('/v1/responses: an allowance below the floor of OpenAI substitute is raised to 16, with a warning', async () => {
    suite.fleet.simulators.anthropic.setSticky({ kind: 'server_error' });
    const { data, response } = await responsesFromAnthropicFirst('claude-opus-4-5', 10);
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(data.output_text).toBe('Echo: hi');
    const sent = suite.fleet.simulators.openai.inferenceRequests().at(-1)?.body as { max_output_tokens?: unknown } | undefined;
    expect(sent?.max_output_tokens).toBe(16);
    expect(response.headers.get('x-keyway-warnings')).toContain(
      "openai: max_output_tokens 10 is below the 16 OpenAI's Responses API takes; sent 16 (the request named claude-opus-4-5)",
    );
  });

  test("the client's own model keeps what the client sent: Anthropic's 400 is the answer", async () => {
    const failure = await sdkFailureOf(
      openai.chat.completions.create({ model: 'claude-opus-4-5', max_tokens: 100_000, messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(failure.status).toBe(400);
    expect(anthropicMaxTokens()).toBe(100_000);
  });
});
