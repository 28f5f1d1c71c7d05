// Stored responses: `previous_response_id` continues a conversation across providers, streamed or
// not; `store: false` keeps nothing; GET and DELETE /v1/responses/{id}; another account sees
// nothing; the database holds only sealed content; a restart (nothing in memory) still continues;
// retention forgets old responses.

import { upstreamTurns } from './upstream-turns.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../core/clock.ts';
import { anthropicDescriptor, googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

type Json = Record<string, unknown>;
const DESCRIPTORS = [openAIDescriptor, anthropicDescriptor, googleDescriptor];
const clock = new ManualClock(Date.UTC(2026, 11, 5, 9));
const simulators = new Map<string, SimulatorHandle>();
let environment: Record<string, string> = {};
let gateway: TestGateway;
let key: string;
let configDirectory: string;

async function startGateway(config: Json = {}): Promise<TestGateway> {
  const configFile = join(configDirectory, `keyway-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(configFile, JSON.stringify({ plugins: { 'dialect-openai-responses': config } }));
  const started = await startTestGateway({ env: { ...environment, KEYWAY_CONFIG: configFile }, clock, probes: false });
  await addProviderKeys(
    started,
    DESCRIPTORS.map((descriptor) => ({ name: descriptor.name, api_key: descriptor.apiKey })),
  );
  return started;
}

beforeAll(async () => {
  configDirectory = mkdtempSync(join(tmpdir(), 'keyway-responses-store-'));
  for (const descriptor of DESCRIPTORS) {
    const simulator = descriptor.startSimulator(descriptor.apiKey);
    simulators.set(descriptor.name, simulator);
    environment = { ...environment, ...descriptor.environment(simulator) };
  }
  gateway = await startGateway();
  key = gateway.defaultAdminKey;
});

afterAll(async () => {
  await gateway.stop();
  for (const simulator of simulators.values()) await simulator.stop();
  rmSync(configDirectory, { recursive: true, force: true });
});

beforeEach(() => {
  for (const simulator of simulators.values()) simulator.reset();
});

async function create(body: Json, on: TestGateway = gateway, apiKey = key): Promise<{ status: number; response: Json }> {
  const answer = await call(on, 'POST', '/v1/responses', body, { key: apiKey });
  if (body.stream === true && answer.status === 200) return { status: 200, response: checkResponsesStream(parseResponsesSse(await answer.text())).response };
  return { status: answer.status, response: (await answer.json()) as Json };
}

function outputText(response: Json): string {
  let text = '';
  for (const item of (response.output ?? []) as Array<{ type: string; content?: Array<{ text?: string }> }>)
    if (item.type === 'message') for (const part of item.content ?? []) text += part.text ?? '';
  return text;
}

/** What reached OpenAI's own Responses API (Keyway calls it natively): the stored conversation comes first in `input`. */
function openAIUpstreamBody(): Json {
  return (simulators.get('openai')?.inferenceRequests().at(-1)?.body as Json | undefined) ?? {};
}

function openAIUpstreamMessages(): unknown {
  return openAIUpstreamBody().input;
}

describe('previous_response_id continues a conversation', () => {
  test('across providers: Anthropic answers, OpenAI continues with the whole history', async () => {
    const first = await create({ model: anthropicDescriptor.model, instructions: 'Be brief.', input: 'My name is Ada.' });
    expect(first.status).toBe(200);
    expect(first.response.store).toBe(true);
    const second = await create({ model: openAIDescriptor.model, previous_response_id: first.response.id, input: 'What is my name?' });
    expect(second.status).toBe(200);
    expect(outputText(second.response)).toBe('Echo: What is my name?');
    expect(second.response.previous_response_id).toBe(first.response.id);
    // Instructions are not carried over, as on OpenAI; the earlier turns are, resolved by Keyway into
    // the input of OpenAI's own Responses API, which stores nothing and never sees the id.
    const upstream = openAIUpstreamBody();
    expect(upstream.input).toMatchObject([
      { type: 'message', role: 'user', content: 'My name is Ada.' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Echo: My name is Ada.' }] },
      { type: 'message', role: 'user', content: 'What is my name?' },
    ]);
    expect(upstream.previous_response_id).toBeUndefined();
    expect(upstream.store).toBe(false);
    expect(upstream.instructions).toBeUndefined();
  });

  test.each([false, true])('a tool loop by id only, as Codex-style clients run it (streamed: %p)', async (stream) => {
    const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const first = await create({ model: googleDescriptor.model, tools, input: 'Weather in Paris?', stream });
    const call0 = ((first.response.output ?? []) as Json[]).find((item) => item.type === 'function_call');
    expect(call0?.name).toBe('get_weather');
    const second = await create({
      model: anthropicDescriptor.model,
      tools,
      stream,
      previous_response_id: first.response.id,
      input: [{ type: 'function_call_output', call_id: call0?.call_id, output: '18C' }],
    });
    expect(second.status).toBe(200);
    expect(outputText(second.response)).toBe('Tool results: 18C');
    // A third turn continues the second: the chain is whole.
    const third = await create({ model: openAIDescriptor.model, previous_response_id: second.response.id, input: 'Thanks' });
    expect(third.status).toBe(200);
    expect((openAIUpstreamMessages() as unknown[]).length).toBe(5);
  });
});

describe('store: false, GET, DELETE, other accounts', () => {
  test('store: false keeps nothing: no GET, no continuation', async () => {
    const first = await create({ model: openAIDescriptor.model, input: 'Forget me', store: false });
    expect(first.response.store).toBe(false);
    await expectSpecError(await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key }), 404, 'not_found');
    const next = await create({ model: openAIDescriptor.model, previous_response_id: first.response.id, input: 'Again' });
    // As OpenAI answers it (its SDKs raise NotFoundError): 404 previous_response_not_found.
    expect(next.status).toBe(404);
    expect(next.response.error).toMatchObject({ type: 'invalid_request_error', code: 'previous_response_not_found', param: 'previous_response_id' });
  });

  test('GET answers the stored response; DELETE removes it; then nothing continues it', async () => {
    const first = await create({ model: openAIDescriptor.model, input: 'Keep me', metadata: { ticket: 'T-2' } });
    const got = await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(first.response);
    const deleted = await call(gateway, 'DELETE', `/v1/responses/${first.response.id}`, undefined, { key });
    expect(await deleted.json()).toEqual({ id: first.response.id, object: 'response', deleted: true });
    await expectSpecError(await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key }), 404, 'not_found');
    expect((await create({ model: openAIDescriptor.model, previous_response_id: first.response.id, input: 'Again' })).status).toBe(404);
  });

  test('another account can neither read, continue nor delete it', async () => {
    const created = await call(gateway, 'POST', '/v1/accounts', { name: 'Other' });
    const otherKey = ((await created.json()) as { admin_key: { api_key: string } }).admin_key.api_key;
    const first = await create({ model: openAIDescriptor.model, input: 'Private' });
    await expectSpecError(await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key: otherKey }), 404, 'not_found');
    await expectSpecError(await call(gateway, 'DELETE', `/v1/responses/${first.response.id}`, undefined, { key: otherKey }), 404, 'not_found');
    expect((await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key })).status).toBe(200);
  });

  test('the database holds sealed content only', async () => {
    const secretText = 'The launch code is tangerine-42';
    const first = await create({ model: openAIDescriptor.model, input: secretText });
    let rows: Array<Record<string, unknown>> = [];
    for (let attempt = 0; attempt < 50 && rows.length === 0; attempt++) {
      rows = await gateway.runtime.store.query('SELECT * FROM responses_stored WHERE id = ?', [first.response.id]);
      if (rows.length === 0) await Bun.sleep(10);
    }
    expect(rows.length).toBe(1);
    expect(JSON.stringify(rows)).not.toContain('tangerine');
    expect(rows[0]?.account_id).toBe('default');
  });
});

describe('from the database, and retention', () => {
  test('with nothing kept in memory (as after a restart) a continuation is read from the database', async () => {
    const cold = await startGateway({ cacheEntries: 0 });
    try {
      const first = await create({ model: anthropicDescriptor.model, input: 'Remember tangerine' }, cold, cold.defaultAdminKey);
      await Bun.sleep(50);
      const second = await create(
        { model: openAIDescriptor.model, previous_response_id: first.response.id, input: 'What did I say?' },
        cold,
        cold.defaultAdminKey,
      );
      expect(second.status).toBe(200);
      expect(JSON.stringify(openAIUpstreamMessages())).toContain('Remember tangerine');
      expect((await call(cold, 'GET', `/v1/responses/${first.response.id}`, undefined, { key: cold.defaultAdminKey })).status).toBe(200);
    } finally {
      await cold.stop();
    }
  });

  test('with nothing kept in memory, item references and input_items are read from the database too', async () => {
    const cold = await startGateway({ cacheEntries: 0 });
    try {
      const coldKey = cold.defaultAdminKey;
      const first = await create({ model: anthropicDescriptor.model, input: 'Remember tangerine' }, cold, coldKey);
      const firstAnswer = ((first.response.output ?? []) as Json[])[0];
      const second = await create({ model: googleDescriptor.model, input: 'Remember lime' }, cold, coldKey);
      const secondAnswer = ((second.response.output ?? []) as Json[])[0];
      await Bun.sleep(50);
      const third = await create(
        {
          model: openAIDescriptor.model,
          input: [
            { type: 'item_reference', id: firstAnswer?.id },
            { type: 'item_reference', id: secondAnswer?.id },
            { role: 'user', content: 'What did you say?' },
          ],
        },
        cold,
        coldKey,
      );
      expect(third.status).toBe(200);
      expect(upstreamTurns(openAIUpstreamBody())).toEqual([
        { role: 'assistant', text: 'Echo: Remember tangerine' },
        { role: 'assistant', text: 'Echo: Remember lime' },
        { role: 'user', text: 'What did you say?' },
      ]);
      await Bun.sleep(50);
      const listed = await call(cold, 'GET', `/v1/responses/${third.response.id}/input_items?order=asc`, undefined, { key: coldKey });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { data: Json[] }).data.map((item) => item.id)).toEqual([firstAnswer?.id, secondAnswer?.id, expect.any(String)]);
    } finally {
      await cold.stop();
    }
  });

  test('a response older than the retention period is gone', async () => {
    const first = await create({ model: openAIDescriptor.model, input: 'Old news' });
    clock.advance(31 * 86_400_000);
    await expectSpecError(await call(gateway, 'GET', `/v1/responses/${first.response.id}`, undefined, { key }), 404, 'not_found');
    expect((await create({ model: openAIDescriptor.model, previous_response_id: first.response.id, input: 'Still there?' })).status).toBe(404);
  });
});

test('with store off for the gateway, store: true is answered with a warning; previous_response_id and item references are refused', async () => {
  const off = await startGateway({ store: false });
  try {
    const answer = await call(off, 'POST', '/v1/responses', { model: openAIDescriptor.model, input: 'Hi', store: true }, { key: off.defaultAdminKey });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-keyway-warnings')).toContain('store');
    expect(((await answer.json()) as Json).store).toBe(false);
    const refused = await call(
      off,
      'POST',
      '/v1/responses',
      { model: openAIDescriptor.model, input: 'Hi', previous_response_id: 'resp_x' },
      { key: off.defaultAdminKey },
    );
    const body = await expectSpecError(refused, 400, 'unsupported_feature');
    expect(body.error.param).toBe('previous_response_id');
    // The AI SDK's default model sends its earlier answers as references: the message says how to send them whole.
    const reference = { type: 'item_reference', id: 'msg_0123456789abcdef0123456789abcdefo0' };
    const unresolved = await call(
      off,
      'POST',
      '/v1/responses',
      { model: openAIDescriptor.model, input: [reference, { role: 'user', content: 'Hi' }] },
      { key: off.defaultAdminKey },
    );
    const referenceError = await expectSpecError(unresolved, 400, 'invalid_request');
    expect(referenceError.error.param).toBe('input[0]');
    expect(referenceError.error.message).toContain('store = false');
  } finally {
    await off.stop();
  }
});
