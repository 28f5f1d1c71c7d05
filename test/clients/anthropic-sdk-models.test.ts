// The official `@anthropic-ai/sdk`'s Models API against Keyway's GET /v1/models: Anthropic's page and
// model shape, its paging (limit, after_id, before_id), and the OpenAI SDK's list unchanged beside it.
// Until QA18 the Anthropic SDK got OpenAI's list: undefined display_name and created_at, every model
// on one page whatever limit said.

import { expect, test } from 'bun:test';
import { call } from '../helpers/gateway.ts';
import { rejectionOf, sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld();

test("models.list() pages Anthropic's way and every model has Anthropic's fields", async () => {
  const { anthropic, openai } = sdkClients(world());
  const first = await anthropic.models.list({ limit: 3 });
  expect(first.data).toHaveLength(3);
  expect(first.has_more).toBe(true);
  expect(first.first_id).toBe(first.data[0]?.id ?? '');
  expect(first.last_id).toBe(first.data[2]?.id ?? '');
  for (const model of first.data) {
    expect(model.type).toBe('model');
    expect(model.display_name).toBe(model.id);
    expect(new Date(model.created_at).toISOString()).toBe(model.created_at);
  }
  // The SDK's auto-paging (after_id) walks the whole list, which is the OpenAI SDK's list.
  const all: string[] = [];
  for await (const model of anthropic.models.list({ limit: 4 })) all.push(model.id);
  const openaiIds: string[] = [];
  for await (const model of openai.models.list()) openaiIds.push(model.id);
  expect(all).toEqual(openaiIds);
  expect(new Set(all).size).toBe(all.length);
  // before_id: the page that ends just before it.
  const fifth = all[4] ?? '';
  const before = await anthropic.models.list({ before_id: fifth, limit: 2 });
  expect(before.data.map((model) => model.id)).toEqual(all.slice(2, 4));
  expect(before.has_more).toBe(true);
});

test("models.retrieve() answers one model in Anthropic's shape, and the OpenAI list keeps OpenAI's", async () => {
  const { anthropic, openai } = sdkClients(world());
  const model = await anthropic.models.retrieve('claude-3-opus-20240229');
  expect(model).toMatchObject({ type: 'model', id: 'claude-3-opus-20240229', display_name: 'claude-3-opus-20240229' });
  expect(model.created_at).toBe(new Date(1709164800 * 1000).toISOString());
  const page = await openai.models.list();
  expect(page.data[0]).toMatchObject({ object: 'model', owned_by: expect.any(String) });
  expect((page.data[0] as unknown as Record<string, unknown>).type).toBeUndefined();
});

test('a limit out of range is a 400 naming it', async () => {
  const { anthropic } = sdkClients(world());
  const error = (await rejectionOf(anthropic.models.list({ limit: 0 }))) as { status: number };
  expect(error.status).toBe(400);
  const response = await call(world().gateway, 'GET', '/v1/models?limit=5000', undefined, {
    key: world().gateway.defaultAdminKey,
    headers: { 'anthropic-version': '2023-06-01' },
  });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: { param: string } }).error.param).toBe('limit');
});
