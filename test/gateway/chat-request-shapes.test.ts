// Malformed chat requests are the client's mistake, whoever would serve them: 400 in the spec's shape
// naming the field, before any upstream call, on all five providers alike (QA17). Tool-call arguments
// sent as an object (Ollama-style clients), a tool without its function, a null content part… were a
// 500 `internal_error` from the translations that read the field (Anthropic, Gemini, Cohere, and every
// provider for a null part), an upstream 400 from OpenAI and a 200 from a lenient upstream. Requests
// whose shape is valid but whose tool a provider cannot take are that provider's `unsupported_feature`,
// never a 500. Sent as raw JSON, as such a client sends them.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const KEYS = {
  openai: 'sk-proj-ChatShapesOpenAIKey00000000000001',
  anthropic: 'sk-ant-api03-ChatShapesAnthropicKey0000001',
  google: 'AIzaSyChatShapesGoogleKey0123456789abcd',
  cohere: 'cohere-chat-shapes-key-000000000001',
  perplexity: 'pplx-ChatShapesPerplexityKey00000000001',
} as const;
type Provider = keyof typeof KEYS;

const MODELS: Record<Provider, string> = {
  openai: 'gpt-4o-mini',
  anthropic: 'claude-3-haiku-20240307',
  google: 'gemini-2.0-flash',
  cohere: 'command-r',
  perplexity: 'sonar',
};
const PROVIDERS = Object.keys(MODELS) as Provider[];

let simulators: Record<Provider, SimulatorHandle>;
let gateway: TestGateway;

beforeAll(async () => {
  simulators = {
    openai: startOpenAISimulator({ apiKeys: [KEYS.openai] }),
    anthropic: startAnthropicSimulator({ apiKeys: [KEYS.anthropic] }),
    google: startGoogleSimulator({ apiKeys: [KEYS.google] }),
    cohere: startCohereSimulator({ apiKeys: [KEYS.cohere] }),
    perplexity: startPerplexitySimulator({ apiKeys: [KEYS.perplexity] }),
  };
  gateway = await startTestGateway({
    probes: false,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${simulators.openai.url}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: simulators.anthropic.url,
      KEYWAY_GOOGLE_BASE_URL: simulators.google.url,
      KEYWAY_COHERE_BASE_URL: simulators.cohere.url,
      KEYWAY_PERPLEXITY_BASE_URL: simulators.perplexity.url,
    },
  });
  await addProviderKeys(
    gateway,
    PROVIDERS.map((name) => ({ name, api_key: KEYS[name] })),
  );
});

afterAll(async () => {
  await gateway.stop();
  await Promise.all(PROVIDERS.map((name) => simulators[name].stop()));
});

beforeEach(() => {
  for (const name of PROVIDERS) simulators[name].reset();
});

function upstreamCalls(): number {
  return PROVIDERS.reduce((total, name) => total + simulators[name].inferenceRequests().length, 0);
}

function chat(provider: Provider, body: Record<string, unknown>): Promise<Response> {
  return call(gateway, 'POST', '/v1/chat/completions', { model: MODELS[provider], max_tokens: 16, ...body }, { key: gateway.defaultAdminKey });
}

const question = { role: 'user', content: "What's the weather in Paris?" };
const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

/** A conversation replaying one assistant tool call, answered by a tool message. */
function replaying(toolCall: unknown): Record<string, unknown> {
  return {
    messages: [question, { role: 'assistant', content: null, tool_calls: [toolCall] }, { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }],
    tools: [weather],
  };
}

function withFunction(fields: Record<string, unknown>): Record<string, unknown> {
  return replaying({ id: 'call_1', type: 'function', function: { name: 'get_weather', ...fields } });
}

function withTools(tools: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messages: [question], tools, ...extra };
}

function withContent(role: string, content: unknown[]): Record<string, unknown> {
  return { messages: role === 'user' ? [{ role, content }] : [{ role, content }, question] };
}

/** label, body, the `param` the 400 names, and its code (`missing_field` for an absent field). */
const MALFORMED: Array<[string, Record<string, unknown>, string, string]> = [
  ['tool-call arguments as an object', withFunction({ arguments: { city: 'Paris' } }), 'messages[1].tool_calls[0].function.arguments', 'invalid_field'],
  ['tool-call arguments as a number', withFunction({ arguments: 42 }), 'messages[1].tool_calls[0].function.arguments', 'invalid_field'],
  ['tool-call arguments null', withFunction({ arguments: null }), 'messages[1].tool_calls[0].function.arguments', 'invalid_field'],
  ['tool-call arguments absent', withFunction({}), 'messages[1].tool_calls[0].function.arguments', 'missing_field'],
  [
    'tool-call function name absent',
    replaying({ id: 'call_1', type: 'function', function: { arguments: '{}' } }),
    'messages[1].tool_calls[0].function.name',
    'missing_field',
  ],
  [
    'tool-call function name a number',
    replaying({ id: 'call_1', type: 'function', function: { name: 7, arguments: '{}' } }),
    'messages[1].tool_calls[0].function.name',
    'invalid_field',
  ],
  ['tool-call function null', replaying({ id: 'call_1', type: 'function', function: null }), 'messages[1].tool_calls[0].function', 'invalid_field'],
  [
    'tool-call id a number',
    replaying({ id: 1, type: 'function', function: { name: 'get_weather', arguments: '{}' } }),
    'messages[1].tool_calls[0].id',
    'invalid_field',
  ],
  ['tool-call id absent', replaying({ type: 'function', function: { name: 'get_weather', arguments: '{}' } }), 'messages[1].tool_calls[0].id', 'missing_field'],
  [
    'tool-call type unknown',
    replaying({ id: 'call_1', type: 'tool', function: { name: 'get_weather', arguments: '{}' } }),
    'messages[1].tool_calls[0].type',
    'invalid_field',
  ],
  ['tool call null', replaying(null), 'messages[1].tool_calls[0]', 'invalid_field'],
  [
    'tool_calls an object',
    { messages: [question, { role: 'assistant', content: null, tool_calls: { id: 'call_1' } }, { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }] },
    'messages[1].tool_calls',
    'invalid_field',
  ],
  [
    'tool_call_id a number',
    {
      messages: [
        question,
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 1, content: 'sunny' },
      ],
    },
    'messages[2].tool_call_id',
    'invalid_field',
  ],
  ['tools [{}]', withTools([{}]), 'tools[0].type', 'missing_field'],
  ['tools [null]', withTools([null]), 'tools[0]', 'invalid_field'],
  ['function tool without function', withTools([{ type: 'function' }]), 'tools[0].function', 'missing_field'],
  ['function tool with function null', withTools([{ type: 'function', function: null }]), 'tools[0].function', 'invalid_field'],
  ['function tool without name', withTools([{ type: 'function', function: { parameters: {} } }]), 'tools[0].function.name', 'missing_field'],
  [
    'function tool parameters null',
    withTools([{ type: 'function', function: { name: 'f', parameters: null } }]),
    'tools[0].function.parameters',
    'invalid_field',
  ],
  [
    'function tool parameters a string',
    withTools([{ type: 'function', function: { name: 'f', parameters: '{}' } }]),
    'tools[0].function.parameters',
    'invalid_field',
  ],
  [
    'function tool description a number',
    withTools([{ type: 'function', function: { name: 'f', description: 1 } }]),
    'tools[0].function.description',
    'invalid_field',
  ],
  ['tool_choice without its function', withTools([weather], { tool_choice: { type: 'function' } }), 'tool_choice.function', 'invalid_field'],
  ['tool_choice a number', withTools([weather], { tool_choice: 1 }), 'tool_choice', 'invalid_field'],
  ['a null user content part', withContent('user', [null]), 'messages[0].content[0]', 'invalid_field'],
  ['a null system content part', withContent('system', [null]), 'messages[0].content[0]', 'invalid_field'],
  ['a null assistant content part', withContent('assistant', [null]), 'messages[0].content[0]', 'invalid_field'],
  ['a content part without type', withContent('user', [{ text: 'hi' }]), 'messages[0].content[0].type', 'missing_field'],
  ['a text part with a number', withContent('user', [{ type: 'text', text: 1 }]), 'messages[0].content[0].text', 'invalid_field'],
  ['an image_url part without image_url', withContent('user', [{ type: 'image_url' }]), 'messages[0].content[0].image_url', 'invalid_field'],
  ['stop a number', { messages: [question], stop: 1 }, 'stop', 'invalid_field'],
  ['response_format a string', { messages: [question], response_format: 'json' }, 'response_format', 'invalid_field'],
];

describe.each(PROVIDERS)('%s: a malformed chat request is 400 naming the field, and no upstream is called', (provider) => {
  test.each(MALFORMED)('%s', async (_label, body, param, code) => {
    const response = await chat(provider, body);
    const error = (await expectSpecError(response, 400, code)).error;
    expect(error.param).toBe(param);
    expect(error.message).toContain(param);
    expect(upstreamCalls()).toBe(0);
  });
});

describe('valid shapes', () => {
  test.each(PROVIDERS)('%s: a tool-calling conversation with parts, tools and a named tool choice is still served', async (provider) => {
    const body = {
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: [{ type: 'text', text: "What's the weather in Paris?" }] },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
      tools: [{ type: 'function', function: { ...weather.function, description: 'Weather now', strict: null } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      stop: ['\n\nHuman:'],
      response_format: { type: 'text' },
    };
    const response = await chat(provider, body);
    expect(response.status).toBe(200);
    expect(simulators[provider].inferenceRequests()).toHaveLength(1);
  });

  // A custom tool (OpenAI's free-text tools) is OpenAI's: the providers whose translations read a
  // function refuse it as a feature they lack (a fallback skips them), where Cohere's threw a TypeError.
  test.each(['anthropic', 'cohere'] as const)('%s: a custom tool is unsupported_feature, not a 500', async (provider) => {
    const response = await chat(provider, withTools([{ type: 'custom', custom: { name: 'sql' } }]));
    expect((await expectSpecError(response, 400, 'unsupported_feature')).error.param).toBe('tools[0].type');
    expect(upstreamCalls()).toBe(0);
  });

  test.each(['anthropic', 'google', 'cohere'] as const)('%s: a replayed custom tool call is unsupported_feature, not a 500', async (provider) => {
    const response = await chat(provider, replaying({ id: 'call_1', type: 'custom', custom: { name: 'sql', input: 'select 1' } }));
    expect((await expectSpecError(response, 400, 'unsupported_feature')).error.param).toBe('messages[1].tool_calls[0].type');
    expect(upstreamCalls()).toBe(0);
  });

  test("cohere: a tool_choice of OpenAI's allowed_tools form is unsupported_feature, not a 500", async () => {
    const response = await chat('cohere', withTools([weather], { tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [weather] } } }));
    expect((await expectSpecError(response, 400, 'unsupported_feature')).error.param).toBe('tool_choice.type');
    expect(upstreamCalls()).toBe(0);
  });

  test.each(['anthropic', 'google'] as const)('%s: arguments that are not a JSON object name the tool call that holds them', async (provider) => {
    const response = await chat(provider, withFunction({ arguments: '[1, 2]' }));
    expect((await expectSpecError(response, 400, 'invalid_field')).error.param).toBe('messages[1].tool_calls[0].function.arguments');
    expect(upstreamCalls()).toBe(0);
  });

  test.each(PROVIDERS)('%s: tools: null asks for no tools, as every other null field does (QA18: the one null refused)', async (provider) => {
    const response = await chat(provider, { messages: [question], tools: null, tool_choice: null });
    expect(response.status).toBe(200);
    expect(upstreamCalls()).toBe(1);
    const sent = simulators[provider].inferenceRequests()[0]?.body as Record<string, unknown>;
    expect(sent.tools ?? null).toBeNull();
  });
});
