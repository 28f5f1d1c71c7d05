// A stored response whose database write fails (QA18): the answer still goes out, and says so. It was
// answered `store: true` (the failure only logged), so the client's next `previous_response_id` was
// refused and its GET was 404 although the answer had said the response was kept. Now the response
// object says `store: false`: the JSON answer (with an X-Keyway-Warnings entry saying why), a stream's
// response.completed (translated, and OpenAI's own event passed through), a WebSocket turn's last event
// and a `generate: false` warm-up; nothing is kept in memory either, so a continuation is refused as
// for any response not stored, on this instance as on every other. Once writes work again, store: true.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';
import { ResponsesSocketClient } from './websocket-client.ts';

type Json = Record<string, unknown>;
const DESCRIPTORS = [googleDescriptor, openAIDescriptor];

const simulators: SimulatorHandle[] = [];
let gateway: TestGateway;
let key = '';
/** While set, every write of a stored response fails as a full or unreachable database does. */
let failing = true;

beforeAll(async () => {
  let environment: Record<string, string> = {};
  for (const descriptor of DESCRIPTORS) {
    const simulator = descriptor.startSimulator(descriptor.apiKey);
    simulators.push(simulator);
    environment = { ...environment, ...descriptor.environment(simulator) };
  }
  gateway = await startTestGateway({ env: environment, probes: false, logLevel: 'error' });
  key = gateway.defaultAdminKey;
  await addProviderKeys(
    gateway,
    DESCRIPTORS.map((descriptor) => ({ name: descriptor.name, api_key: descriptor.apiKey })),
    key,
  );
  const store = gateway.runtime.services.store;
  const query = store.query.bind(store);
  store.query = async (sql, params) => {
    if (failing && sql.trimStart().startsWith('INSERT INTO responses_stored')) throw new Error('SQLITE_FULL: database or disk is full');
    return query(sql, params);
  };
});

afterAll(async () => {
  await gateway?.stop();
  for (const simulator of simulators) await simulator.stop();
});

/** GET and a continuation of `id`: their statuses and the continuation's error code. */
async function lookedUp(id: string, model: string): Promise<Json> {
  const read = await call(gateway, 'GET', `/v1/responses/${id}`, undefined, { key });
  await read.arrayBuffer();
  const continued = await call(gateway, 'POST', '/v1/responses', { model, previous_response_id: id, input: 'And again.', store: false }, { key });
  const body = (await continued.json()) as { error?: { code: string } };
  return { GET: read.status, continuation: continued.status, code: body.error?.code ?? null };
}

const NOT_KEPT = { GET: 404, continuation: 404, code: 'previous_response_not_found' };

describe('the stored response cannot be written', () => {
  for (const descriptor of DESCRIPTORS)
    for (const stream of [false, true])
      test(`${descriptor.name}, ${stream ? 'streamed' : 'not streamed'}: answered with store: false, and nothing is found later`, async () => {
        const answer = await call(gateway, 'POST', '/v1/responses', { model: descriptor.model, input: 'Say hello.', stream }, { key });
        expect(answer.status).toBe(200);
        let response: Json;
        if (stream) {
          const events = parseResponsesSse(await answer.text());
          const last = events.at(-1)?.data as Json;
          expect(last.type).toBe('response.completed');
          response = checkResponsesStream(events).response;
          // The final event is the one that says it (the stream's opening events went out before the write).
          expect((last.response as Json).store).toBe(false);
        } else {
          response = (await answer.json()) as Json;
          expect(answer.headers.get('x-keyway-warnings') ?? '').toContain('the response could not be stored');
        }
        expect(response.status).toBe('completed');
        expect(response.store).toBe(false);
        expect(await lookedUp(String(response.id), descriptor.model)).toEqual(NOT_KEPT);
      });

  test('a WebSocket turn and a generate: false warm-up end with store: false', async () => {
    const client = await ResponsesSocketClient.open(gateway.url, { authorization: `Bearer ${key}` });
    try {
      const warm = await client.turn({ type: 'response.create', model: googleDescriptor.model, input: 'Warm up.', generate: false });
      expect(warm.last.type).toBe('response.completed');
      expect((warm.last.response as Json).store).toBe(false);
      const turn = await client.turn({ type: 'response.create', model: googleDescriptor.model, input: 'Say hello.' });
      expect(turn.last.type).toBe('response.completed');
      expect((turn.last.response as Json).store).toBe(false);
      expect(await lookedUp(String((turn.last.response as Json).id), googleDescriptor.model)).toEqual(NOT_KEPT);
    } finally {
      await client.close();
    }
  });

  test('once writes work again, a response is stored and says store: true', async () => {
    failing = false;
    for (const stream of [false, true]) {
      const answer = await call(gateway, 'POST', '/v1/responses', { model: googleDescriptor.model, input: 'Say hello.', stream }, { key });
      const response = stream ? checkResponsesStream(parseResponsesSse(await answer.text())).response : ((await answer.json()) as Json);
      expect(answer.headers.get('x-keyway-warnings')).toBeNull();
      expect(response.store).toBe(true);
      const read = await call(gateway, 'GET', `/v1/responses/${String(response.id)}`, undefined, { key });
      expect(read.status).toBe(200);
      await read.arrayBuffer();
    }
  });
});
