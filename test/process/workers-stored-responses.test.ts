// KEYWAY_WORKERS=2: a stored response is on every worker as soon as its client has it. Each round
// creates a response (streamed, read to its response.completed, or not) and at once, over fresh
// connections the kernel hands to either worker, reads it (GET), lists its input items and continues
// it (previous_response_id): every call finds it. QA17 found the row written in the background, after
// the answer or the stream's response.completed had gone out, so the other worker answered 404 (GET,
// input_items) or 400 (the continuation) for a moment: a few calls in 30 on SQLite, a third of them on
// PostgreSQL, where the write takes a round trip. On SQLite here, and on PostgreSQL when one answers.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';
import { parseResponsesSse } from '../responses/event-sequence.ts';
import { freshCall, startTwoWorkers, type GatewayProcess } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_WorkersStoredResponsesOperator0123456';
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 11 + 5)).toString('base64');
/** A translated provider (the stream's events are Keyway's) and a native one (OpenAI's own events pass through). */
const DESCRIPTORS = [googleDescriptor, openAIDescriptor];
const ROUNDS = 20;

let simulators: SimulatorHandle[] = [];

beforeAll(() => {
  simulators = DESCRIPTORS.map((descriptor) => descriptor.startSimulator(descriptor.apiKey));
});

afterAll(async () => {
  for (const simulator of simulators) await simulator.stop();
});

function upstreamEnvironment(): Record<string, string> {
  return Object.assign({}, ...DESCRIPTORS.map((descriptor, index) => descriptor.environment(simulators[index] as SimulatorHandle)));
}

/** The response's id once the client has all of it: the JSON answer, or the stream's last event. */
async function created(url: string, key: string, model: string, round: number, stream: boolean): Promise<{ id: string; worker: string }> {
  const answer = await freshCall(`${url}/v1/responses`, key, 'POST', { model, input: `Round ${round}: say hello.`, stream });
  expect(answer.status).toBe(200);
  const worker = answer.headers.get('x-keyway-worker') ?? '';
  if (!stream) return { id: String(((await answer.json()) as { id: string }).id), worker };
  const events = parseResponsesSse(await answer.text());
  const last = events.at(-1)?.data as { type: string; response: { id: string } };
  expect(last.type).toBe('response.completed');
  return { id: last.response.id, worker };
}

/**
 * Rounds of: create, then GET, input_items and a continuation, three of each at once on fresh
 * connections. The tally of every answer by call and status, and whether any landed on the other worker.
 */
async function rounds(url: string, key: string, stream: boolean): Promise<{ tally: Record<string, number>; across: boolean }> {
  const tally: Record<string, number> = {};
  let across = false;
  for (let round = 0; round < ROUNDS; round++) {
    const descriptor = DESCRIPTORS[round % DESCRIPTORS.length] as (typeof DESCRIPTORS)[number];
    const { id, worker } = await created(url, key, descriptor.model, round, stream);
    const calls = [
      ...[0, 1, 2].map(() => ['GET', freshCall(`${url}/v1/responses/${id}`, key)] as const),
      ...[0, 1, 2].map(() => ['input_items', freshCall(`${url}/v1/responses/${id}/input_items`, key)] as const),
      ...[0, 1, 2].map(
        () =>
          [
            'continuation',
            freshCall(`${url}/v1/responses`, key, 'POST', { model: descriptor.model, previous_response_id: id, input: 'And again.', store: false }),
          ] as const,
      ),
    ];
    for (const [name, pending] of calls) {
      const answer = await pending;
      await answer.arrayBuffer();
      if (answer.headers.get('x-keyway-worker') !== worker) across = true;
      const label = `${name} ${answer.status}`;
      tally[label] = (tally[label] ?? 0) + 1;
    }
  }
  return { tally, across };
}

const EVERY_CALL_FOUND_IT = { 'GET 200': ROUNDS * 3, 'input_items 200': ROUNDS * 3, 'continuation 200': ROUNDS * 3 };

async function addKeys(url: string, key: string): Promise<void> {
  const added = await freshCall(`${url}/v1/providers/keys`, key, 'POST', {
    providers: DESCRIPTORS.map((descriptor) => ({ name: descriptor.name, api_key: descriptor.apiKey })),
  });
  if (added.status !== 201) throw new Error(`adding the provider keys failed: ${added.status} ${await added.text()}`);
  // The keys reach the other worker over the bus.
  await Bun.sleep(1_000);
}

function describeOn(name: string, database: () => Promise<{ extra: Record<string, string>; drop(): Promise<void> }>) {
  describe(`KEYWAY_WORKERS=2 on ${name}: a response its client holds is found on both workers`, () => {
    let gateway: GatewayProcess;
    let directory = '';
    let key = '';
    let drop: () => Promise<void> = async () => undefined;

    beforeAll(async () => {
      const chosen = await database();
      drop = chosen.drop;
      ({
        gateway,
        directory,
        adminKey: key,
      } = await startTwoWorkers('keyway-workers-stored-responses', {
        operatorKey: OPERATOR_KEY,
        upstreams: {},
        extra: { ...upstreamEnvironment(), ...chosen.extra },
      }));
      await addKeys(gateway.url, key);
    }, 60_000);

    afterAll(async () => {
      await gateway?.stop('SIGTERM', 30_000).catch(() => gateway?.stop('SIGKILL'));
      rmSync(directory, { recursive: true, force: true });
      await drop();
    });

    test('streamed: after response.completed, GET, input_items and a continuation find it on either worker', async () => {
      const { tally, across } = await rounds(gateway.url, key, true);
      expect(tally).toEqual(EVERY_CALL_FOUND_IT);
      expect(across).toBe(true);
    }, 60_000);

    test('not streamed: after the answer, GET, input_items and a continuation find it on either worker', async () => {
      const { tally, across } = await rounds(gateway.url, key, false);
      expect(tally).toEqual(EVERY_CALL_FOUND_IT);
      expect(across).toBe(true);
    }, 60_000);
  });
}

describeOn('SQLite', async () => ({ extra: {}, drop: async () => undefined }));

const postgres = await postgresReachable();
if (postgres)
  describeOn('PostgreSQL', async () => {
    const database: TestDatabase = await createTestDatabase();
    return { extra: { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY }, drop: () => database.drop() };
  });
else test.skip('KEYWAY_WORKERS=2 on PostgreSQL (no PostgreSQL server answers on 127.0.0.1:5432)', () => undefined);
