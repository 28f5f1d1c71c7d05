// QA15 F3: a successful answer was forwarded byte for byte, so a provider key an upstream echoed in a
// 200 (`"system_fingerprint":"fp_<key>"`, where `fp_` defeats the shape rule) reached the client. The
// answer is now checked for the exact key the upstream was called with (core/credentials/key-echo.ts),
// streamed or not, passed through or translated, on chat, /v1/messages and /v1/responses; an answer
// without it is sent exactly as the upstream wrote it.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, flushUsage, type TestGateway } from '../helpers/gateway.ts';
import { gatewayBehindEchoingUpstream, sseAnswer, sseEvent, type EchoingUpstream, type UpstreamCall } from '../helpers/echoing-upstream.ts';

/** No known prefix, and `fp_` in front of it anyway: only the check by value finds it. */
const OPENAI_KEY = 'Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0a-openai';
const VLLM_KEY = 'Wm4cR8tY2uI6oP0aS3dF7gH1jK5lZ9xC-vllm';
const CLIENT_KEY = 'Qe5rT1yU7iO3pA9sD2fG6hJ0kL4zX8cV-client';
const KEYS = [OPENAI_KEY, VLLM_KEY, CLIENT_KEY];

let upstream: EchoingUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  ({ upstream, gateway } = await gatewayBehindEchoingUpstream(OPENAI_KEY, VLLM_KEY));
});

afterAll(async () => {
  await gateway?.stop();
  upstream?.stop();
});

function expectNoKey(text: string): void {
  for (const key of KEYS) expect(text).not.toContain(key);
}

const usage = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 };

function chatCompletion(key: string, content = 'ok'): Record<string, unknown> {
  return {
    id: 'chatcmpl-e',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini',
    system_fingerprint: `fp_${key}`,
    choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
    usage,
  };
}

function chunk(fields: Record<string, unknown>, delta: Record<string, unknown>, finish: string | null = null): string {
  return JSON.stringify({
    id: 'chatcmpl-s',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini',
    ...fields,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
}

/**
 * A chat stream whose first chunk carries `fp_<key>` and whose content says `key <key>`; with
 * `cutAt`, that chunk's event is written in two network writes cut inside the key.
 */
function chatStream({ key }: UpstreamCall, cutAt?: number): Response {
  const first = sseEvent(chunk({ system_fingerprint: `fp_${key}` }, { role: 'assistant', content: `key ${key}` }));
  const at = cutAt === undefined ? first.length : first.indexOf(key) + cutAt;
  return sseAnswer([
    first.slice(0, at),
    first.slice(at),
    sseEvent(chunk({}, {}, 'stop')),
    sseEvent(JSON.stringify({ id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage })),
    'data: [DONE]\n\n',
  ]);
}

const hello = [{ role: 'user', content: 'hi' }];

describe('/v1/chat/completions', () => {
  test('a 200 echoing the key (system_fingerprint, content, model) is answered with it redacted, header and usage row included', async () => {
    upstream.answer = ({ key }) => Response.json({ ...chatCompletion(key, `the key is ${key}`), model: `gpt-4o-mini-${key}` });
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello });
    const text = await response.text();
    expect(response.status).toBe(200);
    expectNoKey(text);
    expectNoKey(JSON.stringify(Object.fromEntries(response.headers)));
    const body = JSON.parse(text) as { system_fingerprint: string; model: string; choices: Array<{ message: { content: string } }> };
    expect(body.system_fingerprint).toBe('fp_[REDACTED]');
    expect(body.choices[0]?.message.content).toBe('the key is [REDACTED]');
    expect(response.headers.get('x-model-used')).toBe('gpt-4o-mini-[REDACTED]');
  });

  test('an ordinary answer is the upstream text, byte for byte', async () => {
    const sent = `{"id":"chatcmpl-o","object":"chat.completion","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb",
"choices":[{"index":0,"message":{"role":"assistant","content":"Zq7 and sk- are not keys"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`;
    upstream.answer = () => new Response(sent, { headers: { 'content-type': 'application/json' } });
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello });
    expect(await response.text()).toBe(sent);
  });

  for (const [name, cutAt] of [
    ['whole in one write', undefined],
    ['cut across two network writes', 11],
  ] as const) {
    test(`streamed, the key ${name} is redacted`, async () => {
      upstream.answer = (upstreamCall) => chatStream(upstreamCall, cutAt);
      const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello, stream: true });
      const text = await response.text();
      expect(response.status).toBe(200);
      expectNoKey(text);
      expect(text).toContain('"system_fingerprint":"fp_[REDACTED]"');
      expect(text).toContain('"content":"key [REDACTED]"');
      expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    });
  }

  test('an ordinary stream is the upstream bytes, byte for byte', async () => {
    const events = [
      sseEvent(chunk({ system_fingerprint: 'fp_44709d6fcb' }, { role: 'assistant', content: 'Zq7fK2' })),
      sseEvent(chunk({}, { content: ' is the start of nothing' })),
      sseEvent(chunk({}, {}, 'stop')),
      'data: [DONE]\n\n',
    ];
    upstream.answer = () => sseAnswer(events);
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello, stream: true });
    expect(await response.text()).toBe(events.join(''));
  });

  test("the client's own X-Provider-Key echoed back is redacted too", async () => {
    let sentKey = '';
    upstream.answer = ({ key }) => {
      sentKey = key;
      return Response.json(chatCompletion(key));
    };
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: hello },
      { headers: { 'x-provider': 'openai', 'x-provider-key': CLIENT_KEY } },
    );
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(sentKey).toBe(CLIENT_KEY);
    expectNoKey(text);
    expect((JSON.parse(text) as { system_fingerprint: string }).system_fingerprint).toBe('fp_[REDACTED]');
  });
});

describe('/v1/messages (translated from an OpenAI upstream)', () => {
  const body = { model: 'gpt-4o-mini', max_tokens: 50, messages: hello };

  test('a 200 whose text holds the key is answered with it redacted', async () => {
    upstream.answer = ({ key }) => Response.json(chatCompletion(key, `the key is ${key}`));
    const response = await call(gateway, 'POST', '/v1/messages', body);
    const text = await response.text();
    expect(response.status).toBe(200);
    expectNoKey(text);
    expect((JSON.parse(text) as { content: Array<{ text: string }> }).content[0]?.text).toBe('the key is [REDACTED]');
  });

  for (const [name, cutAt] of [
    ['whole in one write', undefined],
    ['cut across two network writes', 7],
  ] as const) {
    test(`streamed, the key ${name} is redacted`, async () => {
      upstream.answer = (upstreamCall) => chatStream(upstreamCall, cutAt);
      const response = await call(gateway, 'POST', '/v1/messages', { ...body, stream: true });
      const text = await response.text();
      expect(response.status).toBe(200);
      expectNoKey(text);
      expect(text).toContain('key [REDACTED]');
      expect(text).toContain('event: message_stop');
    });
  }
});

describe('/v1/responses', () => {
  const inProgress = { id: 'resp_echo', object: 'response', created_at: 1, status: 'in_progress', model: 'gpt-4o-mini', output: [] };

  function completed(key: string, id: string): Record<string, unknown> {
    const message = {
      id: 'msg_up',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: `key ${key}`, annotations: [] }],
    };
    return { ...inProgress, id, status: 'completed', output: [message], usage: { input_tokens: 5, output_tokens: 2, total_tokens: 7 } };
  }

  async function storedText(id: string): Promise<string> {
    const stored = await call(gateway, 'GET', `/v1/responses/${id}`);
    expect(stored.status).toBe(200);
    return stored.text();
  }

  test("OpenAI's own API: a 200 echoing the key is answered, and stored, with it redacted", async () => {
    upstream.answer = ({ key, path }) => {
      expect(path).toBe('/v1/responses');
      return Response.json(completed(key, 'resp_echo_plain'));
    };
    const response = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi' });
    const text = await response.text();
    expect(response.status).toBe(200);
    expectNoKey(text);
    expect(text).toContain('key [REDACTED]');
    const stored = await storedText('resp_echo_plain');
    expectNoKey(stored);
    expect(stored).toContain('key [REDACTED]');
  });

  for (const [name, cut] of [
    ['whole in one write', false],
    ['cut across two network writes', true],
  ] as const) {
    test(`OpenAI's own API streamed, the key ${name} is redacted, in the stored response too`, async () => {
      const id = `resp_echo_stream_${cut ? 'cut' : 'whole'}`;
      upstream.answer = ({ key }) => {
        const delta = sseEvent(
          { type: 'response.output_text.delta', sequence_number: 2, item_id: 'msg_up', output_index: 0, content_index: 0, delta: `key ${key}` },
          'response.output_text.delta',
        );
        const at = cut ? delta.indexOf(key) + 9 : delta.length;
        return sseAnswer([
          sseEvent({ type: 'response.created', sequence_number: 0, response: { ...inProgress, id } }, 'response.created'),
          sseEvent({ type: 'response.in_progress', sequence_number: 1, response: { ...inProgress, id } }, 'response.in_progress'),
          delta.slice(0, at),
          delta.slice(at),
          sseEvent({ type: 'response.completed', sequence_number: 3, response: completed(key, id) }, 'response.completed'),
        ]);
      };
      const response = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi', stream: true });
      const text = await response.text();
      expect(response.status).toBe(200);
      expectNoKey(text);
      expect(text).toContain('"delta":"key [REDACTED]"');
      expect(text).toContain('event: response.completed');
      expectNoKey(await storedText(id));
    });
  }

  test('translated from a chat upstream, streamed and not, the key is redacted', async () => {
    upstream.answer = ({ key }) => Response.json(chatCompletion(key, `key ${key}`));
    const plain = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o-mini', provider: 'vllm', input: 'hi' });
    const plainText = await plain.text();
    expect(plain.status).toBe(200);
    expectNoKey(plainText);
    expect(plainText).toContain('key [REDACTED]');
    const id = (JSON.parse(plainText) as { id: string }).id;
    expectNoKey(await storedText(id));

    upstream.answer = (upstreamCall) => chatStream(upstreamCall, 5);
    const streamed = await call(gateway, 'POST', '/v1/responses', { model: 'gpt-4o-mini', provider: 'vllm', input: 'hi', stream: true });
    const streamedText = await streamed.text();
    expect(streamed.status).toBe(200);
    expectNoKey(streamedText);
    expect(streamedText).toContain('key [REDACTED]');
  });
});

test('no key reached the log, the usage rows or anything else the gateway keeps', async () => {
  await flushUsage(gateway);
  expectNoKey(gateway.output.join('\n'));
  for (const file of ['keyway.db', 'keyway.db-wal']) {
    const path = join(gateway.dataDirectory, file);
    if (existsSync(path)) expectNoKey(readFileSync(path).toString('latin1'));
  }
});
