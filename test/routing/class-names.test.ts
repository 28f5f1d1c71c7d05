// A model class named as the model (docs/routing.md, "A class as the model"): `flagship`, `small`, an
// account's own class `fast` and its member `my-fast-model` are understood as the class, through the
// official `openai` client. The class's model goes to the first provider of the class, in the order of
// its `models`, that the request holds a usable key for; the strategy then plans as for that model.
// A name a provider is known to serve stays that model.

import { describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { shippedModelClasses } from '../../core/routing/model-classes.ts';
import { expectedCostOrder, lastSentModel } from './expectations.ts';
import { addAccountKeys, attemptsOf, call, createAccount, type ProviderName, routingSuite } from './harness.ts';

const suite = routingSuite('class-names');
let accounts = 0;

/** A new account holding one key of each named provider; answers its admin key. */
async function newAccount(providers: readonly ProviderName[] = ['openai', 'anthropic', 'google']): Promise<string> {
  const key = await createAccount(suite.gateway, `class-names-${++accounts}`);
  if (providers.length > 0) await addAccountKeys(suite.gateway, suite.fleet, providers, key);
  return key;
}

function client(apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey, maxRetries: 0 });
}

/** One chat call through the SDK; answers who served, from the response headers. */
async function ask(apiKey: string, body: Record<string, unknown>) {
  const { data, response } = await client(apiKey)
    .chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], ...body } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .withResponse();
  return {
    text: data.choices[0]?.message.content,
    provider: response.headers.get('x-provider-used'),
    model: response.headers.get('x-model-used'),
    fallbackAttempts: response.headers.get('x-fallback-attempts'),
  };
}

/** The SDK's error for a refused call. */
async function refusal(apiKey: string, body: Record<string, unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await client(apiKey).chat.completions.create({
      messages: [{ role: 'user', content: 'Hello' }],
      ...body,
    } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  throw new Error('the call was served');
}

const shipped = () => shippedModelClasses(suite.gateway.runtime.plugins.providers);
const modelOf = (modelClass: string, provider: string) => shipped().named(modelClass)?.models[provider] ?? '';
const putClasses = (key: string, classes: unknown) => call(suite.gateway, 'PUT', '/v1/settings/model-classes', { classes }, { key });
const FAST = { description: 'our fast tier', models: { anthropic: 'claude-haiku-4-5', openai: 'gpt-4o-mini' }, members: ['my-fast-model'] };

describe('a shipped class name as the model', () => {
  test('flagship and small are served by the class model of the first provider with a key (byok_preferred, the default)', async () => {
    const key = await newAccount();
    const flagship = await ask(key, { model: 'flagship' });
    expect(flagship).toMatchObject({ provider: 'openai', model: modelOf('flagship', 'openai'), fallbackAttempts: '0' });
    expect(typeof flagship.text).toBe('string');
    expect(lastSentModel(suite.fleet, 'openai')).toBe(modelOf('flagship', 'openai'));
    // Without an OpenAI key, the class's next provider in order.
    const noOpenAI = await newAccount(['anthropic', 'google']);
    expect(await ask(noOpenAI, { model: 'small' })).toMatchObject({ provider: 'anthropic', fallbackAttempts: '0' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe(modelOf('small', 'anthropic'));
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ openai: 1, anthropic: 1 }));
  });

  test('byok_preferred stays on the chosen provider; fallback_chain moves across the class on a failure', async () => {
    const key = await newAccount();
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const stayed = await refusal(key, { model: 'flagship' });
    expect(stayed.status).toBe(502);
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ openai: 1 }));

    suite.fleet.reset();
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const moved = await ask(key, { model: 'flagship', routing: { strategy: 'fallback_chain' } });
    expect(moved).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe(modelOf('flagship', 'anthropic'));

    suite.fleet.reset();
    const ordered = await ask(key, { model: 'flagship', routing: { strategy: 'fallback_chain', provider_order: ['google', 'openai'] } });
    expect(ordered).toMatchObject({ provider: 'google', fallbackAttempts: '0' });
    expect(lastSentModel(suite.fleet, 'google')).toBe(modelOf('flagship', 'google'));
  });

  test("cost_optimized tries the class's providers cheapest first", async () => {
    const key = await newAccount();
    const weights = { openai: 1, anthropic: 1, google: 1 };
    const modelClass = shipped().named('small');
    if (modelClass === undefined) throw new Error('no small class');
    const order = expectedCostOrder(modelClass, { provider: 'openai', model: modelOf('small', 'openai') }, weights, ['openai', 'anthropic', 'google']);
    const cheapest = order[0];
    if (cheapest === undefined) throw new Error('no price order');
    expect(await ask(key, { model: 'small', routing: { strategy: 'cost_optimized', cost_weights: weights } })).toMatchObject({
      provider: cheapest.provider,
      fallbackAttempts: '0',
    });
    expect(lastSentModel(suite.fleet, cheapest.provider as ProviderName)).toBe(cheapest.model);
  });

  test("the account's default routing applies to a class name", async () => {
    const key = await newAccount();
    expect((await call(suite.gateway, 'PUT', '/v1/settings/routing', { routing: { strategy: 'fallback_chain' } }, { key })).status).toBe(200);
    suite.fleet.simulators.openai.inject({ kind: 'rate_limit' });
    expect(await ask(key, { model: 'flagship' })).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe(modelOf('flagship', 'anthropic'));
  });

  test("a provider whose keys' model listing lacks the class's model is passed over", async () => {
    const key = await newAccount();
    // GET /v1/providers waits for each key's model listing; OpenAI's simulator does not list gpt-5-mini.
    expect((await call(suite.gateway, 'GET', '/v1/providers', undefined, { key })).status).toBe(200);
    expect(modelOf('mid', 'openai')).toBe('gpt-5-mini');
    expect(await ask(key, { model: 'mid' })).toMatchObject({ provider: 'anthropic', fallbackAttempts: '0' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe(modelOf('mid', 'anthropic'));
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ anthropic: 1 }));
  });

  test('streams through the SDK', async () => {
    const key = await newAccount(['google']);
    const stream = await client(key).chat.completions.create({ model: 'flagship', messages: [{ role: 'user', content: 'Hello' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(lastSentModel(suite.fleet, 'google')).toBe(modelOf('flagship', 'google'));
  });
});

describe("an account's own class and its members", () => {
  test('the class name and a member are understood as the class, in the order of its models', async () => {
    const key = await newAccount();
    expect((await putClasses(key, { fast: FAST })).status).toBe(200);
    expect(await ask(key, { model: 'fast' })).toMatchObject({ provider: 'anthropic', fallbackAttempts: '0' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe('claude-haiku-4-5');
    expect(await ask(key, { model: 'my-fast-model' })).toMatchObject({ provider: 'anthropic' });
    suite.fleet.simulators.anthropic.inject({ kind: 'server_error' });
    expect(await ask(key, { model: 'my-fast-model', routing: { strategy: 'fallback_chain' } })).toMatchObject({
      provider: 'openai',
      fallbackAttempts: '1',
    });
    expect(lastSentModel(suite.fleet, 'openai')).toBe('gpt-4o-mini');
    // Another account has no such class.
    const other = await newAccount();
    const unknown = await refusal(other, { model: 'my-fast-model' });
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('model_not_found');
  });

  test('a provider named with the class gets that provider’s model of the class', async () => {
    const key = await newAccount();
    await putClasses(key, { fast: FAST });
    expect(await ask(key, { model: 'openai/fast' })).toMatchObject({ provider: 'openai' });
    expect(lastSentModel(suite.fleet, 'openai')).toBe('gpt-4o-mini');
    expect(await ask(key, { model: 'my-fast-model', provider: 'openai' })).toMatchObject({ provider: 'openai' });
    expect(lastSentModel(suite.fleet, 'openai')).toBe('gpt-4o-mini');
    // The client's own key for the provider it names: the class's model of that provider.
    const { response } = await client(key)
      .chat.completions.create(
        { model: 'fast', messages: [{ role: 'user', content: 'Hello' }] },
        { headers: { 'X-Provider': 'anthropic', 'X-Provider-Key': suite.fleet.keys.anthropic } },
      )
      .withResponse();
    expect(response.headers.get('x-key-id')).toBe('client_key');
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe('claude-haiku-4-5');
    // Without X-Provider, the client's key has no provider to belong to.
    const unnamed = await client(key)
      .chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hello' }] }, { headers: { 'X-Provider-Key': suite.fleet.keys.anthropic } })
      .catch((error: unknown) => error);
    expect(unnamed).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unnamed as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('X-Provider');
  });

  test('a name a provider is known to serve stays that model, member or not', async () => {
    const key = await newAccount();
    await putClasses(key, { fast: { ...FAST, members: ['gpt-4o', 'my-fast-model'] } });
    expect(await ask(key, { model: 'gpt-4o' })).toMatchObject({ provider: 'openai' });
    expect(lastSentModel(suite.fleet, 'openai')).toBe('gpt-4o');
  });

  test('no usable key for any provider of the class is a 503 naming the class; a class of no loaded provider is a 404', async () => {
    const key = await newAccount(['google']);
    await putClasses(key, { fast: FAST, nowhere: { models: { acme: 'acme-1' } } });
    const none = await refusal(key, { model: 'fast' });
    expect(none.status).toBe(503);
    expect(none.code).toBe('no_provider_available');
    expect(none.message).toContain("model class 'fast'");
    expect(none.message).toContain('claude-haiku-4-5 on anthropic');
    const nowhere = await refusal(key, { model: 'nowhere' });
    expect(nowhere.status).toBe(404);
    expect(nowhere.message).toContain("model class 'nowhere'");
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({}));
  });
});

describe("a team's allow-lists and a class name", () => {
  async function memberOf(adminKey: string, providers: Record<string, unknown>): Promise<string> {
    const response = await call(
      suite.gateway,
      'POST',
      '/v1/teams',
      { name: `team-${++accounts}`, byok_permissions: { providers }, members: [{ email: `dev${accounts}@example.com`, role: 'developer', byok_access: true }] },
      { key: adminKey },
    );
    const body = (await response.json()) as { members: Array<{ api_key: string }> };
    if (response.status !== 201) throw new Error(`creating team failed: ${response.status} ${JSON.stringify(body)}`);
    return body.members[0]?.api_key ?? '';
  }

  test('the class goes to the first provider whose model of the class the team allows; none allowed is a 403 naming what was planned', async () => {
    const admin = await newAccount();
    const member = await memberOf(admin, { openai: { models: ['gpt-4o'] }, anthropic: { models: ['claude-haiku-4-5*'] } });
    expect(await ask(member, { model: 'small' })).toMatchObject({ provider: 'anthropic' });
    expect(lastSentModel(suite.fleet, 'anthropic')).toBe(modelOf('small', 'anthropic'));

    const narrow = await memberOf(admin, { openai: { models: ['gpt-4o'] } });
    const refused = await refusal(narrow, { model: 'small' });
    expect(refused.status).toBe(403);
    expect(refused.code).toBe('model_not_allowed');
    expect(refused.message).toContain("model class 'small'");
    expect(refused.message).toContain(`${modelOf('small', 'openai')} on openai`);
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ anthropic: 1 }));
  });
});

describe('a class name on an endpoint it does not serve', () => {
  test('an embedding request for a class name is 404 model_not_found before any upstream call', async () => {
    const admin = await newAccount();
    const response = await call(suite.gateway, 'POST', '/v1/embeddings', { model: 'small', input: 'hello' }, { key: admin });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; param: string | null } };
    expect(body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({}));
  });
});
