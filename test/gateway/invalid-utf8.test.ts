// A request body that is not UTF-8 is refused at the door, 400 invalid_json "the body is not valid
// UTF-8", on every route that reads one, inference and management alike, with its length declared or
// chunked (QA17: a team named with the bytes FF FE was stored as "bad\uFFFD\uFFFD", and a chat message's
// stray byte reached the provider as U+FFFD). Valid UTF-8 is read as before, a character split between
// two chunks included.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const OPENAI_KEY = 'sk-proj-InvalidUtf8Key00000000000000000001';

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  gateway = await startTestGateway({ probes: false, logLevel: 'warn', env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

beforeEach(() => simulator.reset());

const encoder = new TextEncoder();

/** JSON text with raw bytes put where `@` stands (inside a string value). */
function withBytes(json: string, bytes: readonly number[]): Uint8Array {
  const [before, after] = json.split('@') as [string, string];
  return new Uint8Array([...encoder.encode(before), ...bytes, ...encoder.encode(after)]);
}

/** The bytes as a chunked body: one chunk each, cut at `cuts` (so a character can be split between two). */
function chunked(bytes: Uint8Array, cuts: readonly number[]): ReadableStream<Uint8Array> {
  const pieces = [0, ...cuts, bytes.length].slice(1).map((end, index, ends) => bytes.slice(index === 0 ? 0 : (ends[index - 1] as number), end));
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces.shift();
      if (piece === undefined) controller.close();
      else controller.enqueue(piece);
    },
  });
}

const send = (path: string, body: RequestInit['body'], key = OPERATOR_KEY, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body });

/** Sequences no UTF-8 decoder may accept: stray bytes, a cut sequence, an overlong slash, an encoded surrogate. */
const INVALID: ReadonlyArray<[string, number[]]> = [
  ['FF FE', [0xff, 0xfe]],
  ['a lone continuation byte', [0x80]],
  ['a sequence cut short', [0xe2, 0x82]],
  ['an overlong /', [0xc0, 0xaf]],
  ['an encoded surrogate', [0xed, 0xa0, 0x80]],
];

async function expectNotUtf8(response: Response): Promise<void> {
  const body = await expectSpecError(response, 400, 'invalid_json');
  expect(body.error.message).toBe('The request body is not valid JSON: the body is not valid UTF-8');
}

describe('management bodies', () => {
  const teamNames = async () =>
    ((await (await call(gateway, 'GET', '/v1/teams', undefined, { key: gateway.defaultAdminKey })).json()) as { teams: Array<{ name: string }> }).teams.map(
      (team) => team.name,
    );

  test.each(INVALID)('%s in a team name is refused, declared length or chunked, and no team is made', async (_label, bytes) => {
    const body = withBytes('{"name":"bad@"}', bytes);
    await expectNotUtf8(await send('/v1/teams', body, gateway.defaultAdminKey));
    await expectNotUtf8(await send('/v1/teams', chunked(body, [5]), gateway.defaultAdminKey));
    expect((await teamNames()).filter((name) => name.startsWith('bad'))).toEqual([]);
  });

  test('valid UTF-8 is stored as sent, a character split across two chunks too', async () => {
    const body = encoder.encode('{"name":"Équipe 🚀 ünïcode"}');
    const split = body.indexOf(0xf0) + 2;
    const response = await send('/v1/teams', chunked(body, [split]), gateway.defaultAdminKey);
    expect(response.status).toBe(201);
    expect(((await response.json()) as { name: string }).name).toBe('Équipe 🚀 ünïcode');
  });
});

describe('inference bodies', () => {
  const chatBody = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi@"}]}';

  test.each(INVALID)('%s in a chat message is refused before any upstream call, declared length or chunked', async (_label, bytes) => {
    const body = withBytes(chatBody, bytes);
    await expectNotUtf8(await send('/v1/chat/completions', body));
    await expectNotUtf8(await send('/v1/chat/completions', chunked(body, [10, 40])));
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('the other dialects refuse it too: /v1/responses (read ahead of the lifecycle) and /v1/messages', async () => {
    const responses = await send('/v1/responses', withBytes('{"model":"gpt-4o","input":"hi@"}', [0xff]));
    expect(responses.status).toBe(400);
    expect(await responses.text()).toContain('the body is not valid UTF-8');
    const messages = await send(
      '/v1/messages',
      withBytes('{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi@"}]}', [0xff]),
      OPERATOR_KEY,
      {
        'anthropic-version': '2023-06-01',
      },
    );
    expect(messages.status).toBe(400);
    expect(await messages.text()).toContain('the body is not valid UTF-8');
    expect(simulator.inferenceRequests()).toHaveLength(0);
  });

  test('valid UTF-8 reaches the provider unchanged, split across chunks or not', async () => {
    const body = encoder.encode('{"model":"gpt-4o","messages":[{"role":"user","content":"héllo 🚀"}]}');
    for (const sent of [body, chunked(body, [body.indexOf(0xc3) + 1, body.indexOf(0xf0) + 3])]) {
      const response = await send('/v1/chat/completions', sent);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe('Echo: héllo 🚀');
    }
  });
});
