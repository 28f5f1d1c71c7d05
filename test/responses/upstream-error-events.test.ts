// QA15 F2: an upstream that streams `response.created` and then an unnamed SSE event
// `data: {"error": {…}}` had that event reach the client verbatim, its key included, under a blank
// `event: ` line. Every error a Responses stream carries, named or not (and the error of a
// `response.failed`), goes through the one error path: scrubbed, and written as the Responses
// streaming spec's `error` event ({type, code, message, param, sequence_number}). These errors follow
// the opening events at once, so the gateway that streams them holds nothing back
// (KEYWAY_STREAM_OPENING_HOLD_MS=0); with the hold, the default, they come before the first byte and
// are answered as the JSON error (the last test).

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { sseAnswer, sseEvent, startEchoingUpstream, type EchoingUpstream } from '../helpers/echoing-upstream.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

/** No known prefix: only its value identifies it, so only the scrub by value can catch it. */
const KEY = 'Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0a-f2';

let upstream: EchoingUpstream;
let gateway: TestGateway;
/** The default opening hold. */
let holding: TestGateway;

beforeAll(async () => {
  upstream = startEchoingUpstream();
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: upstream.url, KEYWAY_STREAM_OPENING_HOLD_MS: '0' }, probes: false });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: KEY }]);
  holding = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: upstream.url }, probes: false });
  await addProviderKeys(holding, [{ name: 'openai', api_key: KEY }]);
});

afterAll(async () => {
  await gateway?.stop();
  await holding?.stop();
  upstream?.stop();
});

const inProgress = { id: 'resp_up1', object: 'response', created_at: 1, status: 'in_progress', model: 'gpt-4o-mini', output: [] };

/** The opening events an OpenAI Responses stream starts with. */
function opening(): string[] {
  return [
    sseEvent({ type: 'response.created', sequence_number: 0, response: inProgress }, 'response.created'),
    sseEvent({ type: 'response.in_progress', sequence_number: 1, response: inProgress }, 'response.in_progress'),
  ];
}

async function streamed(target: TestGateway = gateway): Promise<{ status: number; text: string }> {
  const response = await call(target, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi', stream: true });
  return { status: response.status, text: await response.text() };
}

/** The stream is well formed, ends with response.failed and the spec's `error` event, and holds neither the key nor a blank `event:` line. */
function expectScrubbedFailure(text: string): Record<string, unknown> {
  expect(text).not.toContain(KEY);
  expect(text).not.toMatch(/^event:[ \t]*$/m);
  const events = parseResponsesSse(text);
  expect(checkResponsesStream(events).terminal).toBe('response.failed');
  for (const event of events) expect(event.name).toBe(String(event.data.type));
  const error = events.at(-1)?.data as Record<string, unknown>;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'sequence_number', 'type']);
  expect(error.type).toBe('error');
  expect(typeof error.sequence_number).toBe('number');
  return error;
}

test('an unnamed error event after response.created is answered as an error event, the key scrubbed', async () => {
  upstream.answer = ({ key }) =>
    sseAnswer([...opening(), sseEvent({ error: { message: `Incorrect API key provided: ${key}`, type: 'invalid_request_error', code: 'invalid_api_key' } })]);
  const { status, text } = await streamed();
  expect(status).toBe(200);
  const error = expectScrubbedFailure(text);
  expect(error.message).toContain('Incorrect API key provided: [REDACTED]');
  expect(gateway.output.join('\n')).not.toContain(KEY);
});

test("a named error event in chat's shape ({error: {…}}) keeps its message, scrubbed", async () => {
  upstream.answer = ({ key }) => sseAnswer([...opening(), sseEvent({ error: { message: `key ${key} is revoked`, type: 'server_error' } }, 'error')]);
  const error = expectScrubbedFailure((await streamed()).text);
  expect(error.message).toContain('key [REDACTED] is revoked');
});

test("the provider's response.failed keeps its response, with its error scrubbed", async () => {
  upstream.answer = ({ key }) =>
    sseAnswer([
      ...opening(),
      sseEvent(
        {
          type: 'response.failed',
          sequence_number: 2,
          response: { ...inProgress, status: 'failed', error: { code: 'server_error', message: `failed with key ${key}` } },
        },
        'response.failed',
      ),
    ]);
  const text = (await streamed()).text;
  expectScrubbedFailure(text);
  const failed = parseResponsesSse(text).find((event) => event.name === 'response.failed')?.data.response as Record<string, unknown>;
  expect(failed.id).toBe('resp_up1');
  expect(String((failed.error as Record<string, unknown>).message)).toContain('failed with key [REDACTED]');
});

test('events without a type are dropped, and an unnamed error before anything else is the JSON error answer', async () => {
  // What QA15 saw in mode `streamerr`: a chat chunk (no type) on the Responses path, then the error.
  upstream.answer = ({ key }) =>
    sseAnswer([
      sseEvent({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }] }),
      sseEvent({ error: { message: `stream failure key ${key}`, type: 'server_error' } }),
    ]);
  const { status, text } = await streamed();
  expect(status).toBe(502);
  expect(text).not.toContain(KEY);
  expect(text).toContain('stream failure key [REDACTED]');
  expect(text).not.toContain('chat.completion.chunk');
});

test('an untyped event in the middle of a stream that goes on is dropped, not written under an empty name', async () => {
  upstream.answer = () =>
    sseAnswer([
      ...opening(),
      sseEvent({ note: 'an event no Responses client can name' }),
      sseEvent({ type: 'response.completed', sequence_number: 2, response: { ...inProgress, status: 'completed' } }, 'response.completed'),
    ]);
  const { status, text } = await streamed();
  expect(status).toBe(200);
  expect(text).not.toMatch(/^event:[ \t]*$/m);
  expect(text).not.toContain('an event no Responses client can name');
  expect(checkResponsesStream(parseResponsesSse(text)).terminal).toBe('response.completed');
});

test('with the opening hold, an error right after the opening events comes before the first byte: the JSON error, scrubbed', async () => {
  upstream.answer = ({ key }) =>
    sseAnswer([...opening(), sseEvent({ error: { message: `Incorrect API key provided: ${key}`, type: 'invalid_request_error', code: 'invalid_api_key' } })]);
  const { status, text } = await streamed(holding);
  expect(status).toBe(502);
  expect(text).not.toContain(KEY);
  expect(text).toContain('Incorrect API key provided: [REDACTED]');
  expect(text).not.toContain('response.created');
  expect(holding.output.join('\n')).not.toContain(KEY);
});
