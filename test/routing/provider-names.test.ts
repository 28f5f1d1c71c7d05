// How a request names its provider, as a client migrating from LiteLLM, Portkey or OpenRouter writes
// it: `X-Provider` without `X-Provider-Key` is checked as with one (an unknown name or another
// provider's model is a 400 naming the header, not silently ignored: QA14 migrator 5); LiteLLM's
// provider prefixes (`gemini/…`, `cohere_chat/…`) route like Keyway's own (`google/…`); and a provider
// named for a model that is another provider's, which none of its keys lists, is refused before any
// call (QA14 migrator 13). Through the official `openai` client.

import { beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addAccountKeys, attemptsOf, call, createAccount, NO_ATTEMPTS, routingSuite, sdkFailureOf, storeKeys } from './harness.ts';

const suite = routingSuite('names');
let adminKey: string;
let keyIds: Record<string, string>;

beforeAll(async () => {
  adminKey = await createAccount(suite.gateway, 'provider-names');
  keyIds = await addAccountKeys(suite.gateway, suite.fleet, ['openai', 'anthropic', 'google', 'cohere', 'perplexity'], adminKey);
  // Waits for every key's model listing (what the provider says it serves).
  expect((await call(suite.gateway, 'GET', '/v1/providers', undefined, { key: adminKey })).status).toBe(200);
});

function clientWith(headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey: adminKey, maxRetries: 0, defaultHeaders: headers });
}

const hello = [{ role: 'user' as const, content: 'hi' }];

describe('X-Provider without X-Provider-Key', () => {
  test('an unknown provider is a 400 naming the header and the known providers, before any call', async () => {
    const failure = await sdkFailureOf(clientWith({ 'X-Provider': 'acme' }).chat.completions.create({ model: 'gpt-4o-mini', messages: hello }));
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'X-Provider' });
    expect(failure.message).toContain("unknown provider 'acme'");
    expect(failure.message).toContain('openai');
    expect(suite.fleet.upstreamCounts()).toEqual(NO_ATTEMPTS);
  });

  test("a provider that does not serve the model is a 400 naming the conflict and the ways out, not another provider's answer", async () => {
    for (const [provider, model, owner] of [
      ['google', 'gpt-4o-mini', 'openai'],
      ['cohere', 'claude-haiku-4-5', 'anthropic'],
    ] as const) {
      const failure = await sdkFailureOf(clientWith({ 'X-Provider': provider }).chat.completions.create({ model, messages: hello }));
      expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'X-Provider' });
      expect(failure.message).toContain(`${provider} does not serve the model '${model}' (${owner} does)`);
      expect(failure.message).toContain(`X-Provider: ${owner}`);
      expect(failure.message).not.toContain('X-Provider-Key');
    }
    expect(suite.fleet.upstreamCounts()).toEqual(NO_ATTEMPTS);
  });

  test('a provider field naming another provider is a 400 too', async () => {
    const failure = await sdkFailureOf(
      clientWith({ 'X-Provider': 'openai' }).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: hello,
        provider: 'anthropic',
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, param: failure.param }).toEqual({ status: 400, param: 'X-Provider' });
  });

  test("the model's own provider names it, as the provider field would: served with the account's key", async () => {
    const { response } = await clientWith({ 'X-Provider': 'openai' }).chat.completions.create({ model: 'gpt-4o-mini', messages: hello }).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(response.headers.get('x-key-id')).toBe(keyIds.openai ?? '');
  });

  test('a model no provider is known to serve (a fine-tune) goes to the provider the header names', async () => {
    await sdkFailureOf(clientWith({ 'X-Provider': 'google' }).chat.completions.create({ model: 'tuned-support-bot-7', messages: hello }));
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ google: 1 }));
  });
});

describe("LiteLLM's provider prefixes", () => {
  const cases: Array<[string, string]> = [
    ['gemini/gemini-2.5-flash', 'google'],
    ['openai/gpt-4o-mini', 'openai'],
    ['anthropic/claude-haiku-4-5', 'anthropic'],
    ['cohere/command-r', 'cohere'],
    ['cohere_chat/command-r', 'cohere'],
    ['perplexity/sonar', 'perplexity'],
  ];
  for (const [model, provider] of cases) {
    test(`${model} is served by ${provider}, sent the bare name`, async () => {
      const { data, response } = await clientWith().chat.completions.create({ model, messages: hello }).withResponse();
      expect(data.choices[0]?.message.content).toBe('Echo: hi');
      expect(response.headers.get('x-provider-used')).toBe(provider);
      const sent = suite.fleet.simulators[provider as 'google'].inferenceRequests()[0];
      // Gemini takes the model in the URL; the others in the body.
      expect(JSON.stringify(sent)).toContain(model.slice(model.indexOf('/') + 1));
      expect(JSON.stringify(sent)).not.toContain(model);
    });
  }

  test('GET /v1/models/{id} reads them as the inference routes do', async () => {
    const model = await clientWith().models.retrieve('gemini/gemini-2.5-flash');
    expect({ id: model.id, owned_by: model.owned_by }).toEqual({ id: 'gemini/gemini-2.5-flash', owned_by: 'google' });
  });

  test('X-Provider holds them to their provider', async () => {
    const failure = await sdkFailureOf(clientWith({ 'X-Provider': 'openai' }).chat.completions.create({ model: 'gemini/gemini-2.5-flash', messages: hello }));
    expect({ status: failure.status, param: failure.param }).toEqual({ status: 400, param: 'X-Provider' });
    expect(failure.message).toContain('(google does)');
  });
});

describe("a provider named for another provider's model", () => {
  test('provider: google with gpt-4o is a 400 naming the field, before Google is called', async () => {
    const failure = await sdkFailureOf(
      clientWith().chat.completions.create({ model: 'gpt-4o', messages: hello, provider: 'google' } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'provider' });
    expect(failure.message).toContain("google does not serve the model 'gpt-4o'");
    expect(failure.message).toContain('provider: openai');
    expect(suite.fleet.upstreamCounts()).toEqual(NO_ATTEMPTS);
  });

  test('google/gpt-4o is the same refusal, naming the model', async () => {
    const failure = await sdkFailureOf(clientWith().chat.completions.create({ model: 'google/gpt-4o', messages: hello }));
    expect({ status: failure.status, code: failure.code, param: failure.param }).toEqual({ status: 400, code: 'invalid_field', param: 'model' });
    expect(failure.message).toContain('openai/gpt-4o');
    expect(suite.fleet.upstreamCounts()).toEqual(NO_ATTEMPTS);
  });

  test('the way out names the provider with the right article: "an anthropic model", "an openai model", "a google model"', async () => {
    const refusals = [
      clientWith().chat.completions.create({
        model: 'gpt-4-turbo-preview',
        messages: hello,
        provider: 'anthropic',
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      clientWith({ 'X-Provider': 'openai' }).chat.completions.create({ model: 'claude-haiku-4-5', messages: hello }),
      clientWith({ 'X-Provider': 'google' }).chat.completions.create({ model: 'gpt-4o-mini', messages: hello }),
    ];
    const messages = await Promise.all(refusals.map(async (refusal) => (await sdkFailureOf(refusal)).message));
    expect(messages[0]).toContain('or ask for an anthropic model');
    expect(messages[1]).toContain('or ask for an openai model');
    expect(messages[2]).toContain('or ask for a google model');
    expect(suite.fleet.upstreamCounts()).toEqual(NO_ATTEMPTS);
  });

  test("a key that lists the model serves it: an OpenAI-compatible proxy of other providers' models is not refused", async () => {
    const proxy = startOpenAISimulator({ apiKeys: ['names-proxy-key'], models: ['gpt-4o-mini', 'claude-haiku-4-5'] });
    try {
      const proxyAdmin = await createAccount(suite.gateway, 'provider-names-proxy');
      await storeKeys(
        suite.gateway,
        '/v1/providers/keys',
        [{ name: 'openai', api_key: 'names-proxy-key', settings: { base_url: `${proxy.url}/v1` } }],
        proxyAdmin,
      );
      expect((await call(suite.gateway, 'GET', '/v1/providers', undefined, { key: proxyAdmin })).status).toBe(200);
      const client = new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey: proxyAdmin, maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({ model: 'claude-haiku-4-5', messages: hello, provider: 'openai' } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .withResponse();
      expect(response.headers.get('x-provider-used')).toBe('openai');
      expect(proxy.inferenceRequests()).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });

  test("the provider's own models, and names the catalog does not know, still go to it", async () => {
    const own = await clientWith().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: hello,
      provider: 'google',
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(own.choices[0]?.message.content).toBe('Echo: hi');
    await sdkFailureOf(
      clientWith().chat.completions.create({
        model: 'tuned-support-bot-7',
        messages: hello,
        provider: 'google',
      } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ google: 2 }));
  });
});
