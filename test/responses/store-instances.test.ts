// Two instances on one database (two gateways on one SQLite file, members of one cluster): a stored
// response is on the other instance as soon as its client has it, even with a database slow to write
// (the first instance's inserts into responses_stored each take 300 ms here, as a round trip to a
// distant PostgreSQL can). Its client has it at the JSON answer, at a stream's response.completed
// (translated, and OpenAI's own event passed through), and at a WebSocket turn's last event; then GET,
// input_items and a continuation on the other instance each find it. QA17 found the row written in the
// background after the answer had gone, so the other instance answered 404 and 400 meanwhile.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';
import { ResponsesSocketClient } from './websocket-client.ts';

type Json = Record<string, unknown>;
const DESCRIPTORS = [googleDescriptor, openAIDescriptor];
const WRITE_DELAY_MS = 300;
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 5 + 7)).toString('base64');

const hub = new LocalClusterHub();
const simulators: SimulatorHandle[] = [];
let first: TestGateway;
let second: TestGateway;
let key = '';

/** The first instance's writes of stored responses take WRITE_DELAY_MS before they reach the database. */
function slowResponseWrites(gateway: TestGateway): void {
  const store = gateway.runtime.services.store;
  const query = store.query.bind(store);
  store.query = async (sql, params) => {
    if (sql.trimStart().startsWith('INSERT INTO responses_stored')) await Bun.sleep(WRITE_DELAY_MS);
    return query(sql, params);
  };
}

beforeAll(async () => {
  let environment: Record<string, string> = { KEYWAY_MASTER_KEY: MASTER_KEY };
  for (const descriptor of DESCRIPTORS) {
    const simulator = descriptor.startSimulator(descriptor.apiKey);
    simulators.push(simulator);
    environment = { ...environment, ...descriptor.environment(simulator) };
  }
  first = await startTestGateway({ env: environment, probes: false, logLevel: 'warn', cluster: hub.join() });
  second = await startTestGateway({
    env: { ...environment, KEYWAY_DATABASE_URL: `file:${join(first.dataDirectory, 'keyway.db')}` },
    probes: false,
    logLevel: 'warn',
    cluster: hub.join(),
  });
  key = first.defaultAdminKey;
  await addProviderKeys(
    first,
    DESCRIPTORS.map((descriptor) => ({ name: descriptor.name, api_key: descriptor.apiKey })),
    key,
  );
  slowResponseWrites(first);
});

afterAll(async () => {
  await second?.stop();
  await first?.stop();
  for (const simulator of simulators) await simulator.stop();
});

/** GET, input_items and a continuation of `id` on the second instance, at once: their statuses. */
async function foundOnTheOther(id: string, model: string): Promise<Record<string, number>> {
  const [read, items, continued] = await Promise.all([
    call(second, 'GET', `/v1/responses/${id}`, undefined, { key }),
    call(second, 'GET', `/v1/responses/${id}/input_items`, undefined, { key }),
    call(second, 'POST', '/v1/responses', { model, previous_response_id: id, input: 'And again.', store: false }, { key }),
  ]);
  for (const answer of [read, items, continued]) await answer.arrayBuffer();
  return { GET: read.status, input_items: items.status, continuation: continued.status };
}

const FOUND = { GET: 200, input_items: 200, continuation: 200 };

describe('a stored response made on one instance, with a slow database write', () => {
  for (const descriptor of DESCRIPTORS)
    for (const stream of [false, true])
      test(`${descriptor.name}, ${stream ? 'streamed: after response.completed' : 'not streamed: after the answer'}, the other instance finds it`, async () => {
        const answer = await call(first, 'POST', '/v1/responses', { model: descriptor.model, input: 'Say hello.', stream }, { key });
        expect(answer.status).toBe(200);
        let response: Json;
        if (stream) {
          const events = parseResponsesSse(await answer.text());
          expect(events.at(-1)?.data.type).toBe('response.completed');
          response = checkResponsesStream(events).response;
        } else response = (await answer.json()) as Json;
        expect(response.store).toBe(true);
        expect(await foundOnTheOther(String(response.id), descriptor.model)).toEqual(FOUND);
      });

  test('a WebSocket turn (and a generate: false warm-up): after its last event, the other instance finds it', async () => {
    const client = await ResponsesSocketClient.open(first.url, { authorization: `Bearer ${key}` });
    try {
      const warm = await client.turn({ type: 'response.create', model: googleDescriptor.model, input: 'Warm up.', generate: false });
      expect(warm.last.type).toBe('response.completed');
      const warmId = String((warm.last.response as Json).id);
      const warmRead = await call(second, 'GET', `/v1/responses/${warmId}`, undefined, { key });
      expect(warmRead.status).toBe(200);
      await warmRead.arrayBuffer();
      const turn = await client.turn({ type: 'response.create', model: googleDescriptor.model, input: 'Say hello.', previous_response_id: warmId });
      expect(turn.last.type).toBe('response.completed');
      expect(await foundOnTheOther(String((turn.last.response as Json).id), googleDescriptor.model)).toEqual(FOUND);
    } finally {
      await client.close();
    }
  });
});
