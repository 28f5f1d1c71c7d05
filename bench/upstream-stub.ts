// An OpenAI stand-in for the load benchmark. Every answer is built once at start so the stub spends as
// little as possible of the core it shares with the load generator.
//
//   STUB_PORT=8081 STUB_CHUNK_DELAY_MS=5 bun bench/upstream-stub.ts
//
// Streams send their first chunk at once and wait STUB_CHUNK_DELAY_MS before each later one, so a
// proxy's time to first byte is its own and the gaps it delivers show whether it buffers.

import { BENCH_MODEL, UPSTREAM_API_KEY } from './load/requests.ts';

const port = Number(process.env.STUB_PORT ?? '8081');
const chunkDelayMs = Number(process.env.STUB_CHUNK_DELAY_MS ?? '0');
const chunkCount = Math.max(2, Number(process.env.STUB_CHUNK_COUNT ?? '20'));

const CREATED = 1_730_000_000;
const COMPLETION_ID = 'chatcmpl-bench00000000000000000000000';
const expectedAuthorization = `Bearer ${UPSTREAM_API_KEY}`;
const encoder = new TextEncoder();

function buildCompletion(): string {
  const completion = {
    id: COMPLETION_ID,
    object: 'chat.completion',
    created: CREATED,
    model: BENCH_MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: '', refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      prompt_tokens: 212,
      completion_tokens: 96,
      total_tokens: 308,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_bench0000',
  };
  const withoutContent = JSON.stringify(completion).length;
  const firstChoice = completion.choices[0];
  if (firstChoice) firstChoice.message.content = 'The quick brown fox jumps over the lazy dog. '.repeat(30).slice(0, Math.max(0, 1024 - withoutContent));
  return JSON.stringify(completion);
}

function chunk(delta: Record<string, unknown>, finishReason: string | null, includeUsage: boolean): string {
  const body: Record<string, unknown> = {
    id: COMPLETION_ID,
    object: 'chat.completion.chunk',
    created: CREATED,
    model: BENCH_MODEL,
    system_fingerprint: 'fp_bench0000',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  // OpenAI sends `usage: null` on every chunk once usage was asked for.
  if (includeUsage) body.usage = null;
  return `data: ${JSON.stringify(body)}\n\n`;
}

function buildStreamParts(includeUsage: boolean): Uint8Array[] {
  const parts = [chunk({ role: 'assistant', content: '', refusal: null }, null, includeUsage)];
  for (let index = 1; index < chunkCount - 1; index++) parts.push(chunk({ content: `word${index} ` }, null, includeUsage));
  let last = chunk({}, 'stop', includeUsage);
  if (includeUsage) {
    const usage = { prompt_tokens: 212, completion_tokens: chunkCount - 2, total_tokens: 212 + chunkCount - 2 };
    const usageChunk = { id: COMPLETION_ID, object: 'chat.completion.chunk', created: CREATED, model: BENCH_MODEL, choices: [], usage };
    last += `data: ${JSON.stringify(usageChunk)}\n\n`;
  }
  // The terminator rides with the last chunk: the benchmark times the chunkCount content events.
  parts.push(`${last}data: [DONE]\n\n`);
  return parts.map((part) => encoder.encode(part));
}

const completionBody = encoder.encode(buildCompletion());
const streamWithUsage = buildStreamParts(true);
const streamWithoutUsage = buildStreamParts(false);
const modelsBody = JSON.stringify({
  object: 'list',
  data: [{ id: BENCH_MODEL, object: 'model', created: CREATED, owned_by: 'system' }],
});

function unauthorized(): Response {
  const error = { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' };
  return Response.json({ error }, { status: 401 });
}

function streamResponse(parts: Uint8Array[]): Response {
  let next = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next > 0 && chunkDelayMs > 0) await Bun.sleep(chunkDelayMs);
      const part = parts[next];
      next++;
      if (part) controller.enqueue(part);
      if (next >= parts.length) controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}

interface CompletionRequest {
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  // Proxies keep pooled connections to the stub across idle phases; never close them under a proxy.
  idleTimeout: 0,
  routes: {
    '/v1/models': {
      GET: (request) => {
        if (request.headers.get('authorization') !== expectedAuthorization) return unauthorized();
        return new Response(modelsBody, { headers: { 'content-type': 'application/json' } });
      },
    },
    '/v1/chat/completions': {
      POST: async (request) => {
        if (request.headers.get('authorization') !== expectedAuthorization) return unauthorized();
        // Parsed like a real upstream would, so a proxy that mangles the body shows up as an error.
        const body = (await request.json()) as CompletionRequest;
        if (body.stream === true) return streamResponse(body.stream_options?.include_usage === true ? streamWithUsage : streamWithoutUsage);
        return new Response(completionBody, { headers: { 'content-type': 'application/json' } });
      },
    },
  },
  fetch: () => Response.json({ error: { message: 'Not found', type: 'invalid_request_error' } }, { status: 404 }),
});

console.log(JSON.stringify({ stub: 'listening', port: server.port, chunkDelayMs, chunkCount }));
