// The Responses API's WebSocket mode on GET /v1/responses, driven over a real socket as Codex drives
// it: the key checked at the upgrade, `response.create` frames through the same lifecycle as POST
// (policies, usage rows booked once), the same events as the SSE transport, several turns chained
// with previous_response_id on one socket (store: false, from the socket's memory), errors as
// `error` events carrying the HTTP status, a client that leaves mid-stream booked once.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { anthropicDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, expectSpecError, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from '../policies/team-fixture.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';
import { codexUpgradeHeaders, ResponsesSocketClient } from './websocket-client.ts';

type Json = Record<string, unknown>;

let world: ClientWorld;
let key: string;
let sequence = 0;

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor, anthropicDescriptor]);
  key = world.gateway.defaultAdminKey;
});

afterAll(async () => {
  await world.stop();
});

beforeEach(() => {
  for (const simulator of world.simulators.values()) simulator.reset();
});

const TOOLS = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Answers the weather in a city.',
    strict: false,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
];

/** What Codex puts in every response.create besides its input (it asks for encrypted reasoning only on reasoning models, which these are not). */
function codexTurn(model: string, input: Json[], previous: string | undefined): Json {
  return {
    type: 'response.create',
    model,
    instructions: 'You are Codex, a coding agent.',
    input,
    tools: TOOLS,
    tool_choice: 'auto',
    parallel_tool_calls: false,
    store: false,
    stream: true,
    prompt_cache_key: '0199-ws-session',
    ...(previous === undefined ? {} : { previous_response_id: previous }),
  };
}

const user = (text: string): Json => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });

async function rowsOf(gateway: TestGateway, prefix: string) {
  await flushUsage(gateway);
  return (await gateway.runtime.store.listUsage('default')).filter((row) => row.requestId.startsWith(prefix));
}

function uniquePrefix(name: string): string {
  sequence += 1;
  return `ws_${name}_${sequence}`;
}

describe.each([openAIDescriptor, anthropicDescriptor].map((descriptor) => [descriptor.name, descriptor.model] as const))(
  'a Codex session on one socket on %s',
  (provider, model) => {
    test('a warm-up, a tool call, its output, a new question: chained by previous_response_id with store: false', async () => {
      const prefix = uniquePrefix(provider);
      const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key, { 'x-request-id': prefix }));

      // generate: false prepares the request state: a response with no output, no model call.
      const warm = await client.turn({ ...codexTurn(model, [], undefined), generate: false });
      expect(warm.frames.map((frame) => frame.type)).toEqual(['response.created', 'response.in_progress', 'response.completed']);
      const warmResponse = warm.last.response as Json;
      expect(warmResponse.output).toEqual([]);
      expect(world.simulator(provider).inferenceRequests()).toHaveLength(0);

      const first = await client.turn(codexTurn(model, [user('What is the weather in Paris?')], String(warmResponse.id)));
      const firstChecked = checkResponsesStream(first.events);
      expect(firstChecked.terminal).toBe('response.completed');
      const calls = firstChecked.items.filter((item) => item.type === 'function_call');
      expect(calls.map((item) => item.name)).toEqual(['get_weather']);

      // Only the new item goes out: the socket remembers the conversation.
      const output = calls.map((item) => ({ type: 'function_call_output', call_id: item.call_id, output: '18C' }));
      const second = await client.turn(codexTurn(model, output, String(firstChecked.response.id)));
      const secondChecked = checkResponsesStream(second.events);
      expect(secondChecked.text).toBe('Tool results: 18C');
      const upstream = JSON.stringify(world.simulator(provider).inferenceRequests().at(-1)?.body);
      expect(upstream).toContain('You are Codex, a coding agent.');
      expect(upstream).toContain('What is the weather in Paris?');
      expect(upstream).toContain('get_weather');

      // Codex acknowledges a response it handled; nothing answers it, and the next turn goes on.
      client.send({ type: 'response.processed', response_id: secondChecked.response.id });
      const third = await client.turn(codexTurn(model, [user('Thanks, that is all.')], String(secondChecked.response.id)));
      expect(third.frames[0]?.type).toBe('response.created');
      expect(checkResponsesStream(third.events).terminal).toBe('response.completed');
      expect(JSON.stringify(world.simulator(provider).inferenceRequests().at(-1)?.body)).toContain('Tool results: 18C');
      await client.close();

      // One row per generated response, none for the warm-up, each under its own request id.
      const rows = await rowsOf(world.gateway, `${prefix}.`);
      expect(rows.map((row) => ({ endpoint: row.endpoint, provider: row.provider, status: row.status, streamed: row.streamed })).sort()).toEqual(
        Array.from({ length: 3 }, () => ({ endpoint: 'responses', provider, status: 200, streamed: true })),
      );
      expect(new Set(rows.map((row) => row.requestId)).size).toBe(3);
      expect(rows.every((row) => row.inputTokens > 0 && row.outputTokens > 0)).toBe(true);
    });
  },
);

/** Ids and timestamps differ between two runs of the same request; everything else must not. */
function normalized(frames: Json[]): unknown {
  const names = new Map<string, string>();
  const text = JSON.stringify(frames).replace(/\b(resp|msg|fc|rs|ctc|call|toolu)_[A-Za-z0-9]+/g, (id) => {
    if (!names.has(id)) names.set(id, `id${names.size}`);
    return names.get(id) as string;
  });
  return JSON.parse(text.replace(/"created_at":\d+/g, '"created_at":0'));
}

describe('the same events as the SSE transport', () => {
  const cases: Array<[string, Json]> = [
    ['a text answer on OpenAI', { model: openAIDescriptor.model, input: 'Say something', max_output_tokens: 50 }],
    ['a tool call on Anthropic', { model: anthropicDescriptor.model, input: [user('Weather in Paris?')], tools: TOOLS, store: false }],
    [
      'a tool output answered on OpenAI',
      {
        model: openAIDescriptor.model,
        input: [
          user('Weather?'),
          { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { type: 'function_call_output', call_id: 'call_1', output: '18C' },
        ],
        tools: TOOLS,
      },
    ],
  ];
  test.each(cases)('%s: identical in order and content', async (_name, body) => {
    const response = await call(world.gateway, 'POST', '/v1/responses', { ...body, stream: true }, { key });
    expect(response.status).toBe(200);
    const sse = parseResponsesSse(await response.text()).map((event) => event.data);
    const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key));
    const socket = await client.turn({ type: 'response.create', ...body });
    await client.close();
    expect(sse.length).toBeGreaterThan(3);
    expect(normalized(socket.frames)).toEqual(normalized(sse));
  });
});

describe("the official openai client's ResponsesWS", () => {
  test('a response streamed over the socket, then a refusal surfaced as its error', async () => {
    const openai = new OpenAI({ apiKey: key, baseURL: `${world.gateway.url}/v1` });
    const socket = new ResponsesWS(openai);
    const types: string[] = [];
    const errors: Array<{ message: string; status: unknown }> = [];
    socket.on('event', (event) => types.push(event.type));
    socket.on('error', (error) => errors.push({ message: error.message, status: (error.error as { status?: unknown } | null)?.status }));
    let text = '';
    socket.on('response.output_text.delta', (event) => {
      text += event.delta;
    });
    const completed = new Promise<void>((resolve) => socket.on('response.completed', () => resolve()));
    socket.send({ type: 'response.create', model: openAIDescriptor.model, input: 'Hello there' });
    await completed;
    expect(text).toBe('Echo: Hello there');
    const failed = new Promise<void>((resolve) => socket.on('error', () => resolve()));
    socket.send({ type: 'response.create', model: '', input: 'Hello' });
    await failed;
    socket.close();
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('error');
    expect(errors).toEqual([{ message: "Missing required field 'model'.", status: 400 }]);
  });
});

describe('the upgrade', () => {
  const handshake = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };

  test('a wrong key is refused with 401 before any socket exists', async () => {
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key: 'kw_ak_NotAKey0000000000000000000000000000', headers: handshake });
    await expectSpecError(response, 401, 'invalid_api_key');
    await expect(ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders('kw_ak_NotAKey0000000000000000000000000000'))).rejects.toThrow();
  });

  test('no key at all is refused with 401', async () => {
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key: '', headers: handshake });
    await expectSpecError(response, 401, 'invalid_api_key');
  });

  test('a key that may read usage but not call models is refused with 403 before any socket exists', async () => {
    const created = await call(world.gateway, 'POST', '/v1/keys', { name: 'reader', role: 'viewer' }, { key });
    expect(created.status).toBe(201);
    const viewerKey = String(((await created.json()) as Json).api_key);
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key: viewerKey, headers: handshake });
    await expectSpecError(response, 403, 'byok_access_denied');
  });

  test('an upgrade header without a WebSocket handshake is a spec-shaped 400', async () => {
    const response = await call(world.gateway, 'GET', '/v1/responses', undefined, { key, headers: { upgrade: 'websocket', connection: 'Upgrade' } });
    await expectSpecError(response, 400, 'invalid_request');
  });
});

describe('errors are error events with the HTTP status, and the socket goes on', () => {
  test('frames that are not a client event', async () => {
    const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key));
    const bad: Array<[Json | string, number, string]> = [
      ['{"type":', 400, 'invalid_json'],
      ['[1,2]', 400, 'invalid_request'],
      [{ type: 'session.update' }, 400, 'invalid_request'],
      [{ type: 'response.append', input: [] }, 400, 'unsupported_feature'],
      [{ type: 'response.create', model: openAIDescriptor.model, input: 'Hi', background: true }, 400, 'unsupported_feature'],
      [{ type: 'response.create', input: 'Hi' }, 400, 'missing_field'],
      // Not "Missing required field 'input'": the item's type is what is wrong (QA17).
      [{ type: 'response.create', model: openAIDescriptor.model, input: [{ type: 'x' }] }, 400, 'unsupported_feature'],
      [{ type: 'response.create', model: openAIDescriptor.model, input: 'Hi', previous_response_id: 'resp_unknown' }, 404, 'previous_response_not_found'],
    ];
    for (const [event, status, code] of bad) {
      const turn = await client.turn(event);
      expect(turn.frames).toHaveLength(1);
      expect({ type: turn.last.type, status: turn.last.status, code: (turn.last.error as Json).code }).toEqual({ type: 'error', status, code });
      expect(typeof (turn.last.error as Json).message).toBe('string');
      if (code === 'unsupported_feature' && JSON.stringify(event).includes('"x"')) expect((turn.last.error as Json).param).toBe('input[0].type');
    }
    const good = await client.turn({ type: 'response.create', model: openAIDescriptor.model, input: 'Still there?' });
    expect(checkResponsesStream(good.events).terminal).toBe('response.completed');
    await client.close();
  });

  test("a store: false response is this socket's alone: another socket cannot continue it", async () => {
    const first = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key));
    const answer = await first.turn({ type: 'response.create', model: openAIDescriptor.model, input: 'Remember me', store: false });
    const id = String((answer.last.response as Json).id);
    const other = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key));
    const refused = await other.turn({ type: 'response.create', model: openAIDescriptor.model, input: 'And?', previous_response_id: id });
    expect({ status: refused.last.status, param: (refused.last.error as Json).param }).toEqual({ status: 404, param: 'previous_response_id' });
    // A stored one (store defaults to true) continues on any socket of the account.
    const stored = await first.turn({ type: 'response.create', model: openAIDescriptor.model, input: 'Keep this one' });
    const continued = await other.turn({
      type: 'response.create',
      model: openAIDescriptor.model,
      input: 'And now?',
      previous_response_id: (stored.last.response as Json).id,
    });
    expect(continued.last.type).toBe('response.completed');
    expect(JSON.stringify(world.simulator('openai').inferenceRequests().at(-1)?.body)).toContain('Keep this one');
    await first.close();
    await other.close();
  });

  test('an upstream failure before the first event is an error event with its status, booked once', async () => {
    world.simulator('openai').inject({ kind: 'model_not_found' });
    const prefix = uniquePrefix('upstream');
    const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key, { 'x-request-id': prefix }));
    const turn = await client.turn({ type: 'response.create', model: openAIDescriptor.model, input: 'Hi' });
    await client.close();
    expect(turn.frames).toHaveLength(1);
    expect(turn.last.type).toBe('error');
    expect(turn.last.status).toBe(404);
    expect((turn.last.headers as Json)['x-request-id']).toBe(`${prefix}.1`);
    const rows = await rowsOf(world.gateway, `${prefix}.`);
    expect(rows.map((row) => row.status)).toEqual([404]);
  });
});

describe('one response at a time per socket', () => {
  test('two response.create sent at once are answered one after the other, in order', async () => {
    const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key));
    client.send({ type: 'response.create', model: openAIDescriptor.model, input: 'First question' });
    client.send({ type: 'response.create', model: anthropicDescriptor.model, input: 'Second question' });
    const first = await client.readTurn(0);
    const next = await client.readTurn(first.frames.length);
    await client.close();
    // Each response's events are whole and contiguous: the second starts after the first completed.
    expect(checkResponsesStream(first.events).text).toBe('Echo: First question');
    expect(checkResponsesStream(next.events).text).toBe('Echo: Second question');
  });
});

describe('a client that leaves mid-stream', () => {
  test('cancels the upstream stream and is booked once, as a closed stream', async () => {
    world.simulator('openai').inject({ kind: 'slow_stream', delayMs: 40 });
    const prefix = uniquePrefix('leave');
    const client = await ResponsesSocketClient.open(world.gateway.url, codexUpgradeHeaders(key, { 'x-request-id': prefix }));
    const prompt = 'Please repeat this sentence back to me slowly, word by word, so that the reply takes a while to stream. '.repeat(4);
    client.send({ type: 'response.create', model: openAIDescriptor.model, input: prompt });
    for (let count = 1; !client.frames.some((frame) => frame.type === 'response.output_text.delta'); count++) await client.waitForFrames(count);
    await client.close();

    let rows: Awaited<ReturnType<typeof rowsOf>> = [];
    for (let waited = 0; rows.length === 0 && waited < 3_000; waited += 25) {
      rows = await rowsOf(world.gateway, `${prefix}.`);
      if (rows.length === 0) await Bun.sleep(25);
    }
    expect(rows).toHaveLength(1);
    const row = rows[0] as (typeof rows)[number];
    expect({ status: row.status, code: row.errorCode, streamed: row.streamed, estimated: row.usageEstimated }).toEqual({
      status: 499,
      code: 'client_closed',
      streamed: true,
      estimated: true,
    });
    expect(row.outputTokens).toBeGreaterThan(0);
    expect(client.frames.some((frame) => frame.type === 'response.completed')).toBe(false);
    // Booked once: a later flush adds nothing.
    await Bun.sleep(100);
    expect(await rowsOf(world.gateway, `${prefix}.`)).toHaveLength(1);
  });
});

describe('a team policy over the socket', () => {
  let team: TeamGateway;

  beforeAll(async () => {
    team = await startTeamGateway({ providers: { openai: { enabled: true, models: ['gpt-4o*'] } } });
  });

  afterAll(async () => {
    await team.stop();
  });

  test('a model outside the allowlist is an error event with 403, no upstream call, booked once; the next turn is served', async () => {
    const prefix = uniquePrefix('policy');
    const client = await ResponsesSocketClient.open(team.gateway.url, codexUpgradeHeaders(team.memberKey, { 'x-request-id': prefix }));
    const refused = await client.turn({ type: 'response.create', model: 'gpt-3.5-turbo', input: 'Hello' });
    expect({ type: refused.last.type, status: refused.last.status, code: (refused.last.error as Json).code }).toEqual({
      type: 'error',
      status: 403,
      code: 'model_not_allowed',
    });
    expect(team.openai.inferenceRequests()).toHaveLength(0);
    const served = await client.turn({ type: 'response.create', model: 'gpt-4o-mini', input: 'Hello' });
    expect(served.last.type).toBe('response.completed');
    await client.close();
    const rows = await rowsOf(team.gateway, `${prefix}.`);
    expect(rows.map((row) => [row.requestId, row.status, row.endpoint]).sort()).toEqual([
      [`${prefix}.1`, 403, 'responses'],
      [`${prefix}.2`, 200, 'responses'],
    ]);
  });
});

describe('allowed_ips over the socket, behind a trusted proxy', () => {
  const handshake = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  let team: TeamGateway;
  let boundKey: string;

  beforeAll(async () => {
    team = await startTeamGateway({ providers: { openai: { enabled: true } } }, { env: { KEYWAY_TRUSTED_PROXIES: '127.0.0.1,::1' } });
    const patched = await call(team.gateway, 'PATCH', `/v1/teams/${team.teamId}`, { allowed_ips: ['10.0.0.0/8'] }, { key: team.adminKey });
    expect(patched.status).toBe(200);
    const created = await call(team.gateway, 'POST', '/v1/keys', { name: 'office', role: 'developer', allowed_ips: ['10.0.0.0/8'] }, { key: team.adminKey });
    expect(created.status).toBe(201);
    boundKey = String(((await created.json()) as Json).api_key);
    await team.gateway.runtime.services.snapshot.refresh();
  });

  afterAll(async () => {
    await team.stop();
  });

  test.each([
    ['a key', () => boundKey],
    ['a member key of a team', () => team.memberKey],
  ])('%s with allowed_ips is served turn after turn from an allowed address (the address read at the upgrade)', async (_name, keyOf) => {
    const client = await ResponsesSocketClient.open(team.gateway.url, codexUpgradeHeaders(keyOf(), { 'x-forwarded-for': '10.1.2.3' }));
    for (const input of ['Hello', 'Again']) {
      const turn = await client.turn({ type: 'response.create', model: 'gpt-4o-mini', input });
      expect({ type: turn.last.type, error: turn.last.error }).toEqual({ type: 'response.completed', error: undefined });
    }
    await client.close();
  });

  test.each([
    ['a key', () => boundKey],
    ['a member key of a team', () => team.memberKey],
  ])('%s is refused 403 ip_not_allowed at the upgrade from another address, as over HTTP, before any socket exists', async (_name, keyOf) => {
    const upstreamBefore = team.openai.inferenceRequests().length;
    const headers = { ...handshake, 'x-forwarded-for': '8.8.8.8' };
    const upgrade = await call(team.gateway, 'GET', '/v1/responses', undefined, { key: keyOf(), headers });
    const body = await expectSpecError(upgrade, 403, 'ip_not_allowed');
    expect(body.error.message).toContain('8.8.8.8');
    const models = await call(team.gateway, 'GET', '/v1/models', undefined, { key: keyOf(), headers: { 'x-forwarded-for': '8.8.8.8' } });
    await expectSpecError(models, 403, 'ip_not_allowed');
    await expect(ResponsesSocketClient.open(team.gateway.url, codexUpgradeHeaders(keyOf(), { 'x-forwarded-for': '8.8.8.8' }))).rejects.toThrow();
    expect(team.openai.inferenceRequests().length).toBe(upstreamBefore);
  });
});

describe('when the WebSocket mode is turned off, and at shutdown', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway({ env: { KEYWAY_RESPONSES_WEBSOCKET: 'off' }, probes: false, logLevel: 'warn' });
  });

  afterAll(async () => {
    await gateway.stop();
  });

  test('KEYWAY_RESPONSES_WEBSOCKET=off answers the upgrade 426 so Codex falls back to POST', async () => {
    const response = await call(gateway, 'GET', '/v1/responses', undefined, {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    const body = await expectSpecError(response, 426, 'upgrade_required');
    expect(body.error.message).toContain('POST /v1/responses');
    // The upgrade is a request for the API: without a key it is refused as unauthenticated first.
    const anonymous = await call(gateway, 'GET', '/v1/responses', undefined, {
      key: '',
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    await expectSpecError(anonymous, 401, 'invalid_api_key');
  });

  test('past its age limit a socket refuses the next response with websocket_connection_limit_reached, then closes', async () => {
    // 0.005 minutes: 300 ms, so the test sees what OpenAI does after 60 minutes.
    const aged = await startTestGateway({ env: { KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES: '0.005' }, probes: false, logLevel: 'warn' });
    try {
      const client = await ResponsesSocketClient.open(aged.url, codexUpgradeHeaders(aged.defaultAdminKey));
      const warm = await client.turn({ ...codexTurn(openAIDescriptor.model, [], undefined), generate: false });
      expect(warm.last.type).toBe('response.completed');
      await Bun.sleep(400);
      const refused = await client.turn({ ...codexTurn(openAIDescriptor.model, [], undefined), generate: false });
      expect(refused.last).toMatchObject({ type: 'error', status: 400, error: { code: 'websocket_connection_limit_reached', type: 'invalid_request_error' } });
      await client.closed();
      expect(client.closeCode).toBe(1000);
      // A new socket serves again at once.
      const fresh = await ResponsesSocketClient.open(aged.url, codexUpgradeHeaders(aged.defaultAdminKey));
      expect((await fresh.turn({ ...codexTurn(openAIDescriptor.model, [], undefined), generate: false })).last.type).toBe('response.completed');
      await fresh.close();
    } finally {
      await aged.stop();
    }
  });

  test('stopping the gateway closes an open socket with 1001', async () => {
    const own = await startTestGateway({ probes: false, logLevel: 'warn' });
    const client = await ResponsesSocketClient.open(own.url, codexUpgradeHeaders(own.defaultAdminKey));
    await own.stop();
    await client.closed();
    expect(client.closeCode).toBe(1001);
  });
});
