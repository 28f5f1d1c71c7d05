// A fake OpenAI-compatible upstream for the secret tests: each test says how it answers, and it is
// handed the bearer key it was called with, so it can echo that key back the ways a careless (or
// hostile) server does (in an error event, a 200 body, a stream split across network writes).

import { addProviderKeys, startTestGateway, type TestGateway } from './gateway.ts';

type Json = Record<string, unknown>;

export interface UpstreamCall {
  key: string;
  path: string;
  body: Json;
}

export type UpstreamAnswer = (call: UpstreamCall) => Response;

export interface EchoingUpstream {
  /** The base URL to configure (`…/v1`). */
  url: string;
  /** How the next calls are answered, until set again. */
  answer: UpstreamAnswer;
  stop(): void;
}

const MODELS = { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] };

export function startEchoingUpstream(): EchoingUpstream {
  const upstream: EchoingUpstream = {
    url: '',
    answer: () => Response.json({ error: { message: 'no answer set', type: 'server_error' } }, { status: 500 }),
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path.endsWith('/models')) return Response.json(MODELS);
      const key = (request.headers.get('authorization') ?? request.headers.get('x-api-key') ?? '').replace(/^Bearer /, '');
      const text = await request.text();
      return upstream.answer({ key, path, body: text === '' ? {} : (JSON.parse(text) as Json) });
    },
  });
  upstream.url = `http://127.0.0.1:${server.port}/v1`;
  return upstream;
}

/**
 * A `text/event-stream` answer written as the given pieces, each its own network write (a short
 * pause between them), so that what one piece splits arrives in two reads.
 */
export function sseAnswer(pieces: readonly string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const [index, piece] of pieces.entries()) {
        if (index > 0) await Bun.sleep(15);
        controller.enqueue(encoder.encode(piece));
      }
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

/** One SSE event as an upstream writes it: named when `name` is given. */
export function sseEvent(data: unknown, name?: string): string {
  return `${name === undefined ? '' : `event: ${name}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** A chat chunk with one content delta, as an OpenAI-compatible upstream streams it before an error event. */
export function contentChunk(content: string): Json {
  return { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content }, finish_reason: null }] };
}

/**
 * A test gateway whose OpenAI and vLLM upstreams are one echoing upstream, with `openaiKey` and `vllmKey`
 * stored for them: two stored keys in play that an answer may echo.
 */
export async function gatewayBehindEchoingUpstream(openaiKey: string, vllmKey: string): Promise<{ upstream: EchoingUpstream; gateway: TestGateway }> {
  const upstream = startEchoingUpstream();
  const gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: upstream.url, KEYWAY_VLLM_BASE_URL: upstream.url }, probes: false });
  await addProviderKeys(gateway, [
    { name: 'openai', api_key: openaiKey },
    { name: 'vllm', api_key: vllmKey },
  ]);
  return { upstream, gateway };
}
