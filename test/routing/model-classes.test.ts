// The model-class table behind fallback_chain and cost_optimized: the shipped table, the operator's
// overrides for everyone, an account's overrides for itself, and what routing does with them.

import { describe, expect, test } from 'bun:test';
import { shippedModelClasses } from '../../core/routing/model-classes.ts';
import { classOf, lastSentModel, modelClasses } from './expectations.ts';
import { addAccountKeys, attemptsOf, call, chat, createAccount, errorOf, routingSuite, servedBy } from './harness.ts';

const suite = routingSuite('classes');
let accounts = 0;

async function newAccount(): Promise<string> {
  const key = await createAccount(suite.gateway, `classes-${++accounts}`);
  await addAccountKeys(suite.gateway, suite.fleet, ['openai', 'anthropic', 'google'], key);
  return key;
}

const overrideForAccount = (key: string, classes: unknown) => call(suite.gateway, 'PUT', '/v1/settings/model-classes', { classes }, { key });
const overrideForPlatform = (classes: unknown, key?: string) => call(suite.gateway, 'PUT', '/v1/platform/model-classes', { classes }, { key });
const chain = (key: string, order: string[]) =>
  chat(suite.gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: order } }, {}, key);

describe('GET /v1/model-classes', () => {
  test('answers the shipped table', async () => {
    const key = await newAccount();
    const classes = await modelClasses(suite.gateway, key);
    expect(classes.map((entry) => entry.name)).toEqual(
      shippedModelClasses(suite.gateway.runtime.plugins.providers)
        .list()
        .map((entry) => entry.name),
    );
    for (const shipped of shippedModelClasses(suite.gateway.runtime.plugins.providers).list())
      expect(classOf(classes, shipped.name).models).toEqual(shipped.models);
    expect(classOf(classes, 'gpt-4').name).toBe('flagship');
  });
});

describe('PUT /v1/settings/model-classes (account)', () => {
  test('changes the equivalent a fallback sends, for that account only', async () => {
    const key = await newAccount();
    const other = await newAccount();
    const response = await overrideForAccount(key, { flagship: { models: { google: 'gemini-2.5-flash' } } });
    expect(response.status).toBe(200);
    const flagship = classOf(((await response.json()) as { classes: Parameters<typeof classOf>[0] }).classes, 'flagship');
    expect(flagship.models.google).toBe('gemini-2.5-flash');
    expect(flagship.models.anthropic).toBe(shippedModelClasses(suite.gateway.runtime.plugins.providers).classOf('flagship')?.models.anthropic ?? '');

    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const served = await chain(key, ['openai', 'google']);
    expect(servedBy(served)).toMatchObject({ provider: 'google', model: 'gemini-2.5-flash', fallbackAttempts: '1' });
    expect(lastSentModel(suite.fleet, 'google')).toBe('gemini-2.5-flash');

    expect(classOf(await modelClasses(suite.gateway, other), 'flagship').models.google).toBe('gemini-2.5-pro');
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    expect(servedBy(await chain(other, ['openai', 'google'])).model).toBe('gemini-2.5-pro');
  });

  test('null removes a class: the model then has no equivalents to fall back to', async () => {
    const key = await newAccount();
    expect((await overrideForAccount(key, { flagship: null })).status).toBe(200);
    expect((await modelClasses(suite.gateway, key)).some((entry) => entry.name === 'flagship')).toBe(false);
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    const response = await chain(key, ['openai', 'anthropic', 'google']);
    expect(response.status).toBe(502);
    expect((await errorOf(response)).attempts?.map((attempt) => attempt.provider)).toEqual(['openai']);
    expect(suite.fleet.upstreamCounts()).toEqual(attemptsOf({ openai: 1 }));
  });

  test('a PUT replaces the whole override set: {} brings back the table a null removed, and a class left out is restored', async () => {
    const key = await newAccount();
    const table = await modelClasses(suite.gateway, key);
    const removed = await overrideForAccount(key, { flagship: null, small: null });
    expect(removed.status).toBe(200);
    expect(((await removed.json()) as { account_overrides: unknown }).account_overrides).toEqual({ flagship: null, small: null });
    expect((await modelClasses(suite.gateway, key)).map((entry) => entry.name)).not.toContain('flagship');

    // Leaving a class out of the set restores it; the other override stays.
    const one = await overrideForAccount(key, { small: null, flagship: { models: { google: 'gemini-2.5-flash' } } });
    expect(one.status).toBe(200);
    expect(classOf(await modelClasses(suite.gateway, key), 'flagship').models.google).toBe('gemini-2.5-flash');
    const second = await overrideForAccount(key, { small: null });
    expect(((await second.json()) as { account_overrides: unknown }).account_overrides).toEqual({ small: null });
    expect(classOf(await modelClasses(suite.gateway, key), 'flagship')).toEqual(classOf(table, 'flagship'));
    expect((await modelClasses(suite.gateway, key)).map((entry) => entry.name)).not.toContain('small');

    // {} clears every override: the account sees the operator's table again, and falls back along it.
    const cleared = await overrideForAccount(key, {});
    expect(cleared.status).toBe(200);
    const answer = (await cleared.json()) as { classes: unknown; account_overrides: unknown };
    expect(answer.account_overrides).toEqual({});
    expect(answer.classes).toEqual(table);
    const read = (await (await call(suite.gateway, 'GET', '/v1/model-classes', undefined, { key })).json()) as Record<string, unknown>;
    expect(read).toEqual({ classes: table, account_overrides: {}, platform_overrides: {} });
    suite.fleet.simulators.openai.inject({ kind: 'server_error' });
    expect(servedBy(await chain(key, ['openai', 'anthropic'])).provider).toBe('anthropic');
  });

  test('validation names the field', async () => {
    const key = await newAccount();
    const badModel = await overrideForAccount(key, { flagship: { models: { google: 5 } } });
    expect(badModel.status).toBe(400);
    expect((await errorOf(badModel)).param).toBe('classes.flagship.models.google');
    const badName = await overrideForAccount(key, { 'no spaces please': { models: {} } });
    expect((await errorOf(badName)).param).toBe('classes.no spaces please');
    const badMembers = await overrideForAccount(key, { flagship: { members: 'gpt-4' } });
    expect((await errorOf(badMembers)).param).toBe('classes.flagship.members');
  });

  test('an empty or blank model name is refused, naming it; a class that used one was answered 503 "add a key"', async () => {
    const key = await newAccount();
    for (const [classes, param] of [
      [{ flagship: { models: { openai: '' } } }, 'classes.flagship.models.openai'],
      [{ flagship: { models: { openai: ' ' } } }, 'classes.flagship.models.openai'],
      [{ flagship: { models: { openai: ' gpt-4o' } } }, 'classes.flagship.models.openai'],
      [{ flagship: { members: ['gpt-4o', '\t'] } }, 'classes.flagship.members[1]'],
    ] as const) {
      const response = await overrideForAccount(key, classes);
      expect(response.status).toBe(400);
      const error = await errorOf(response);
      expect(error.param).toBe(param);
      expect(error.message).toContain('must be a model name: not empty or blank');
    }
    // Nothing was stored: the class still answers with its shipped model.
    expect(classOf(await modelClasses(suite.gateway, key), 'flagship').models.openai).toBe(
      shippedModelClasses(suite.gateway.runtime.plugins.providers).named('flagship')?.models.openai ?? '',
    );
    expect(servedBy(await chat(suite.gateway, { model: 'flagship' }, {}, key)).provider).toBe('openai');
  });

  test('the override set is bounded: at most 100 classes, 100 providers or members a class, 1,000 characters of description', async () => {
    const key = await newAccount();
    const classes = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, index) => [`class-${index}`, { members: ['gpt-4o'] }]));
    expect((await overrideForAccount(key, classes(100))).status).toBe(200);
    const tooMany = await overrideForAccount(key, classes(20_000));
    expect(tooMany.status).toBe(400);
    expect(await errorOf(tooMany)).toMatchObject({ param: 'classes', message: expect.stringContaining('at most 100 classes') });
    const models = Object.fromEntries(Array.from({ length: 101 }, (_, index) => [`provider-${index}`, 'gpt-4o']));
    expect((await errorOf(await overrideForAccount(key, { flagship: { models } }))).param).toBe('classes.flagship.models');
    const members = Array.from({ length: 101 }, (_, index) => `model-${index}`);
    expect((await errorOf(await overrideForAccount(key, { flagship: { members } }))).param).toBe('classes.flagship.members');
    expect((await errorOf(await overrideForAccount(key, { flagship: { description: 'x'.repeat(1001) } }))).param).toBe('classes.flagship.description');
    expect((await errorOf(await overrideForPlatform(classes(101)))).param).toBe('classes');
    // The refused bodies left the 100 classes stored before.
    expect((await modelClasses(suite.gateway, key)).filter((entry) => entry.name.startsWith('class-'))).toHaveLength(100);
    expect((await overrideForAccount(key, {})).status).toBe(200);
  });
});

describe('PUT /v1/platform/model-classes (operator)', () => {
  test('applies to every account; an account override still wins; only the operator may call it', async () => {
    const key = await newAccount();
    const overriding = await newAccount();
    await overrideForAccount(overriding, { flagship: { models: { anthropic: 'claude-opus-4-1' } } });
    expect((await overrideForPlatform({ flagship: { models: { anthropic: 'claude-sonnet-4-5' } } }, key)).status).toBe(403);
    const stored = await overrideForPlatform({ flagship: { models: { anthropic: 'claude-sonnet-4-5' } } });
    expect(stored.status).toBe(200);
    try {
      suite.fleet.simulators.openai.inject({ kind: 'server_error' });
      await chain(key, ['openai', 'anthropic']);
      expect(lastSentModel(suite.fleet, 'anthropic')).toBe('claude-sonnet-4-5');
      suite.fleet.simulators.openai.inject({ kind: 'server_error' });
      await chain(overriding, ['openai', 'anthropic']);
      expect(lastSentModel(suite.fleet, 'anthropic')).toBe('claude-opus-4-1');
    } finally {
      // {} clears the operator's overrides: every account is back on the shipped table.
      const cleared = await overrideForPlatform({});
      expect(cleared.status).toBe(200);
      expect(((await cleared.json()) as { platform_overrides: unknown }).platform_overrides).toEqual({});
    }
    expect(classOf(await modelClasses(suite.gateway, key), 'flagship').models).toEqual(
      shippedModelClasses(suite.gateway.runtime.plugins.providers).named('flagship')?.models ?? {},
    );
  });

  test("a second PUT replaces the operator's first, and GET /v1/model-classes shows both layers' overrides", async () => {
    const key = await newAccount();
    await overrideForAccount(key, { small: null });
    try {
      await overrideForPlatform({ flagship: { models: { anthropic: 'claude-sonnet-4-5' } } });
      await overrideForPlatform({ mid: { description: 'balanced' } });
      const read = (await (await call(suite.gateway, 'GET', '/v1/model-classes', undefined, { key })).json()) as {
        classes: Parameters<typeof classOf>[0];
        account_overrides: unknown;
        platform_overrides: unknown;
      };
      expect(read.platform_overrides).toEqual({ mid: { description: 'balanced' } });
      expect(read.account_overrides).toEqual({ small: null });
      expect(classOf(read.classes, 'flagship').models.anthropic).toBe(
        shippedModelClasses(suite.gateway.runtime.plugins.providers).named('flagship')?.models.anthropic ?? '',
      );
      expect(classOf(read.classes, 'mid').description).toBe('balanced');
    } finally {
      await overrideForPlatform({});
    }
  });
});
