// `GET /v1/responses/{id}/input_items` through the official `openai` client
// (`responses.inputItems.list`), and `item_reference` input items naming items of any stored
// response of the caller's: both scoped like GET /v1/responses/{id} (account, then team).

import { createTeam } from './teams.ts';
import { upstreamTurns, type Turn } from './upstream-turns.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import type { Response, ResponseItem } from 'openai/resources/responses/responses';
import { anthropicDescriptor, googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { rejectionOf, startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, expectSpecError } from '../helpers/gateway.ts';

type Json = Record<string, unknown>;

let world: ClientWorld;
let client: OpenAI;

function clientWith(apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${world.gateway.url}/v1`, apiKey, maxRetries: 0 });
}

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor, anthropicDescriptor, googleDescriptor]);
  client = clientWith(world.gateway.defaultAdminKey);
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

const tools = [
  {
    type: 'function' as const,
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  },
];

/** Every input item of a response, as the client's auto-pagination walks them. */
async function allInputItems(id: string, query: { order?: 'asc' | 'desc'; limit?: number } = {}, on: OpenAI = client): Promise<ResponseItem[]> {
  const items: ResponseItem[] = [];
  for await (const item of on.responses.inputItems.list(id, query)) items.push(item);
  return items;
}

/** A short conversation: a question, a tool call answered by id only, and a closing question. */
async function toolConversation(): Promise<{ first: Response; second: Response; third: Response }> {
  const first = await client.responses.create({ model: googleDescriptor.model, instructions: 'Be brief.', tools, input: 'Weather in Paris?' });
  const call0 = first.output.find((item) => item.type === 'function_call');
  if (call0?.type !== 'function_call') throw new Error('no function call');
  const second = await client.responses.create({
    model: anthropicDescriptor.model,
    tools,
    previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: call0.call_id, output: '18C' }],
  });
  const third = await client.responses.create({ model: openAIDescriptor.model, previous_response_id: second.id, input: 'Thanks' });
  return { first, second, third };
}

/** What the OpenAI simulator received last, as turns (OpenAI serves /v1/responses natively: its input items). */
function openAIUpstreamTurns(): Turn[] {
  return upstreamTurns(world.simulator('openai').inferenceRequests().at(-1)?.body as Json | undefined);
}

function openAIUpstreamInput(): Json[] {
  return ((world.simulator('openai').inferenceRequests().at(-1)?.body as Json | undefined)?.input ?? []) as Json[];
}

describe('responses.inputItems.list', () => {
  test('a plain response: its one input message, typed, with an id and its content as parts', async () => {
    const response = await client.responses.create({ model: openAIDescriptor.model, instructions: 'Be brief.', input: 'List me' });
    const page = await client.responses.inputItems.list(response.id);
    expect(page.data).toEqual([
      { id: expect.stringMatching(/^msg_/), type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'List me' }] },
    ] as never);
    expect(page.has_more).toBe(false);
    const raw = (await (
      await call(world.gateway, 'GET', `/v1/responses/${response.id}/input_items`, undefined, { key: world.gateway.defaultAdminKey })
    ).json()) as Json;
    expect(raw).toEqual({ object: 'list', data: page.data, first_id: page.data[0]?.id, last_id: page.data[0]?.id, has_more: false });
    // The ids are kept: the same on every read.
    expect((await client.responses.inputItems.list(response.id)).data[0]?.id).toBe(page.data[0]?.id as string);
  });

  test('a continued conversation lists everything it was answered from, newest first unless order=asc', async () => {
    const { first, second, third } = await toolConversation();
    const ascending = await allInputItems(third.id, { order: 'asc' });
    expect(ascending.map((item) => item.type)).toEqual(['message', 'function_call', 'function_call_output', 'message', 'message']);
    // The earlier answers are the items the earlier responses gave.
    expect(ascending[1]).toEqual(first.output[0] as never);
    expect(ascending[3]).toEqual(second.output[0] as never);
    expect(ascending[2]).toMatchObject({ type: 'function_call_output', output: '18C', status: 'completed' });
    expect(ascending[4]).toMatchObject({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Thanks' }] });
    expect(new Set(ascending.map((item) => item.id)).size).toBe(5);
    const descending = await allInputItems(third.id);
    expect(descending).toEqual([...ascending].reverse());
    // The second response was answered from the first's conversation and its own input only.
    expect((await allInputItems(second.id, { order: 'asc' })).map((item) => item.id)).toEqual(ascending.slice(0, 3).map((item) => item.id));
  });

  test('pages: limit, has_more, first_id and last_id, after and before', async () => {
    const { third } = await toolConversation();
    const all = await allInputItems(third.id, { order: 'asc' });
    const ids = all.map((item) => item.id);
    const page = await client.responses.inputItems.list(third.id, { order: 'asc', limit: 2 });
    expect(page.data.map((item) => item.id)).toEqual(ids.slice(0, 2));
    expect(page.has_more).toBe(true);
    expect(page.hasNextPage()).toBe(true);
    const next = await page.getNextPage();
    expect(next.data.map((item) => item.id)).toEqual(ids.slice(2, 4));
    // Auto-pagination with a small page walks all of them.
    expect((await allInputItems(third.id, { order: 'asc', limit: 2 })).map((item) => item.id)).toEqual(ids);
    const key = world.gateway.defaultAdminKey;
    const raw = async (query: string) =>
      (await (await call(world.gateway, 'GET', `/v1/responses/${third.id}/input_items?${query}`, undefined, { key })).json()) as Json & { data: Json[] };
    const last = await raw(`order=desc&limit=2&after=${ids[2]}`);
    expect(last.data.map((item) => item.id)).toEqual([ids[1], ids[0]]);
    expect({ first: last.first_id, last: last.last_id, more: last.has_more }).toEqual({ first: ids[1], last: ids[0], more: false });
    const before = await raw(`order=asc&before=${ids[3]}`);
    expect(before.data.map((item) => item.id)).toEqual(ids.slice(0, 3));
    const between = await raw(`order=asc&after=${ids[0]}&before=${ids[3]}&limit=1`);
    expect({ ids: between.data.map((item) => item.id), more: between.has_more }).toEqual({ ids: [ids[1]], more: true });
  });

  test('bad paging parameters are 400s naming the parameter', async () => {
    const response = await client.responses.create({ model: openAIDescriptor.model, input: 'Page me' });
    const key = world.gateway.defaultAdminKey;
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['order=sideways', 'order'],
      ['after=msg_nothing', 'after'],
    ] as const) {
      const body = await expectSpecError(
        await call(world.gateway, 'GET', `/v1/responses/${response.id}/input_items?${query}`, undefined, { key }),
        400,
        'invalid_field',
      );
      expect(body.error.param).toBe(param);
    }
  });

  test('unknown, not stored, deleted, or another account’s: a 404 in the spec shape (NotFoundError in the client)', async () => {
    const unknown = await rejectionOf(client.responses.inputItems.list('resp_0123456789abcdef0123456789abcdef'));
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    const key = world.gateway.defaultAdminKey;
    await expectSpecError(await call(world.gateway, 'GET', '/v1/responses/resp_unknown/input_items', undefined, { key }), 404, 'not_found');
    const unstored = await client.responses.create({ model: openAIDescriptor.model, input: 'Forget me', store: false });
    expect(await rejectionOf(client.responses.inputItems.list(unstored.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const kept = await client.responses.create({ model: openAIDescriptor.model, input: 'Keep me' });
    const created = await call(world.gateway, 'POST', '/v1/accounts', { name: 'Input items elsewhere' });
    const otherKey = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
    expect(await rejectionOf(clientWith(otherKey).responses.inputItems.list(kept.id))).toBeInstanceOf(OpenAI.NotFoundError);
    await client.responses.delete(kept.id);
    expect(await rejectionOf(client.responses.inputItems.list(kept.id))).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('item_reference', () => {
  test('names an output item of any stored response of the account, not only of the conversation continued', async () => {
    const first = await client.responses.create({ model: anthropicDescriptor.model, input: 'My name is Ada.' });
    const answer = first.output[0];
    expect(answer?.type).toBe('message');
    const second = await client.responses.create({
      model: openAIDescriptor.model,
      input: [
        { role: 'user', content: 'My name is Ada.' },
        { type: 'item_reference', id: answer?.id ?? '' },
        { role: 'user', content: 'What is my name?' },
      ],
    });
    expect(second.output_text).toBe('Echo: What is my name?');
    expect(openAIUpstreamTurns()).toEqual([
      { role: 'user', text: 'My name is Ada.' },
      { role: 'assistant', text: 'Echo: My name is Ada.' },
      { role: 'user', text: 'What is my name?' },
    ]);
    // The stored conversation holds the item itself, so a continuation needs no reference.
    expect((await allInputItems(second.id, { order: 'asc' }))[1]).toEqual(answer as never);
    await client.responses.create({ model: openAIDescriptor.model, previous_response_id: second.id, input: 'Again?' });
    expect(openAIUpstreamTurns().map((turn) => turn.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
  });

  test('names input items, function calls and outputs of earlier responses (streamed)', async () => {
    const { first, second } = await toolConversation();
    const items = await allInputItems(second.id, { order: 'asc' });
    const final = await client.responses
      .stream({
        model: openAIDescriptor.model,
        input: [
          ...items.map((item) => ({ type: 'item_reference' as const, id: item.id })),
          { type: 'item_reference', id: second.output[0]?.id ?? '' },
          { role: 'user', content: 'Thanks' },
        ],
      })
      .finalResponse();
    expect(final.output_text).toBe('Echo: Thanks');
    expect(openAIUpstreamTurns().map((turn) => turn.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user']);
    expect(openAIUpstreamInput().find((item) => item.type === 'function_call')).toMatchObject({ name: 'get_weather', arguments: '{"city":"sample"}' });
    expect(openAIUpstreamInput().find((item) => item.type === 'function_call_output')).toMatchObject({ output: '18C' });
    expect(openAIUpstreamTurns()[3]).toEqual({ role: 'assistant', text: second.output_text });
    expect(first.output[0]?.id).toBe(items[1]?.id as string);
  });

  test('an unknown item, or one of another account’s responses: a 400 naming the id and the input item', async () => {
    const kept = await client.responses.create({ model: openAIDescriptor.model, input: 'Mine' });
    const created = await call(world.gateway, 'POST', '/v1/accounts', { name: 'References elsewhere' });
    const otherKey = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
    const before = world.simulator('openai').inferenceRequests().length;
    for (const [apiKey, id] of [
      [world.gateway.defaultAdminKey, 'msg_0123456789abcdef0123456789abcdefo0'],
      [world.gateway.defaultAdminKey, 'msg_unknown'],
      [otherKey, kept.output[0]?.id ?? ''],
    ] as const) {
      const error = await rejectionOf(
        clientWith(apiKey).responses.create({
          model: openAIDescriptor.model,
          input: [
            { role: 'user', content: 'Hi' },
            { type: 'item_reference', id },
          ],
        }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      const body = (error as InstanceType<typeof OpenAI.BadRequestError>).error as Json;
      expect(body.param).toBe('input[1]');
      expect(String(body.message)).toContain(`Item with id '${id}' not found`);
    }
    expect(world.simulator('openai').inferenceRequests().length).toBe(before);
  });

  test('a reference to reasoning kept elsewhere (OpenAI’s encrypted reasoning) is dropped, as reasoning itself is', async () => {
    const response = await client.responses.create({
      model: openAIDescriptor.model,
      input: [
        { type: 'item_reference', id: 'rs_from_openai' },
        { role: 'user', content: 'Go on' },
      ],
    });
    expect(response.output_text).toBe('Echo: Go on');
    expect(openAIUpstreamTurns()).toEqual([{ role: 'user', text: 'Go on' }]);
  });
});

describe('team scoping', () => {
  let teamKeys: string[];

  beforeAll(async () => {
    teamKeys = [];
    for (const name of ['Team Red', 'Team Blue']) teamKeys.push((await createTeam(world, name, ['developer'])).developer);
  });

  test('a team’s responses: its members and the account admin list and reference them; another team cannot', async () => {
    const [red, blue] = [clientWith(teamKeys[0] ?? ''), clientWith(teamKeys[1] ?? '')];
    const response = await red.responses.create({ model: openAIDescriptor.model, input: 'Red secret' });
    expect((await allInputItems(response.id, {}, red)).length).toBe(1);
    expect((await allInputItems(response.id, {}, client)).length).toBe(1);
    expect(await rejectionOf(blue.responses.inputItems.list(response.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const reference = { type: 'item_reference' as const, id: response.output[0]?.id ?? '' };
    const refused = await rejectionOf(blue.responses.create({ model: openAIDescriptor.model, input: [reference, { role: 'user', content: 'Tell me' }] }));
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    const allowed = await red.responses.create({ model: openAIDescriptor.model, input: [reference, { role: 'user', content: 'Tell me' }] });
    expect(allowed.output_text).toBe('Echo: Tell me');
    expect(openAIUpstreamTurns()[0]).toEqual({ role: 'assistant', text: 'Echo: Red secret' });
  });
});
