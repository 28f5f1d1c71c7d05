// An OpenAI stand-in for the load benchmark. Every answer is built once at start so the stub spends as
// little as possible of the core it shares with the load generator.
//
//   STUB_PORT=8081 STUB_CHUNK_DELAY_MS=5 bun bench/upstream-stub.ts
//
// Streams send their first chunk at once and wait STUB_CHUNK_DELAY_MS before each later one, so a
// proxy's time to first byte is its own and the gaps it delivers show whether it buffers.
//
// STUB_FAIL_STATUS=500 or 429 turns it into a provider that is down or rate limiting: every request
// with the right key gets that status and OpenAI's error body (429 with `retry-after: 1`). Every
// request is counted; `GET /__stats` returns the counts, so the benchmark can tell how many calls a
// failing provider still received.

import { BENCH_MODEL, openAICompletion, UPSTREAM_API_KEY } from './load/requests.ts';

const port = Number(process.env.STUB_PORT ?? '8081');
const chunkDelayMs = Number(process.env.STUB_CHUNK_DELAY_MS ?? '0');
const chunkCount = Math.max(2, Number(process.env.STUB_CHUNK_COUNT ?? '20'));
const failStatus = parseFailStatus(process.env.STUB_FAIL_STATUS);

function parseFailStatus(value: string | undefined): 500 | 429 | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === '500' || value === '429') return Number(value) as 500 | 429;
  throw new Error(`STUB_FAIL_STATUS must be 500 or 429, got '${value}'`);
}

const CREATED = 1_730_000_000;
const COMPLETION_ID = 'chatcmpl-bench00000000000000000000000';
const expectedAuthorization = `Bearer ${UPSTREAM_API_KEY}`;
const encoder = new TextEncoder();

function buildCompletion(): string {
  const completion = openAICompletion({ id: COMPLETION_ID, created: CREATED, model: BENCH_MODEL, content: '', fingerprint: 'fp_bench0000' });
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

// OpenAI's own bodies for these statuses, so the proxy's error parsing does its real work.
const FAILURE_BODIES = {
  500: JSON.stringify({
    error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
  }),
  429: JSON.stringify({
    error: {
      message: `Rate limit reached for ${BENCH_MODEL} in organization org-bench on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1s.`,
      type: 'requests',
      param: null,
      code: 'rate_limit_exceeded',
    },
  }),
} as const;

function failure(status: 500 | 429): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 429) headers['retry-after'] = '1';
  return new Response(FAILURE_BODIES[status], { status, headers });
}

const counts = { chatCompletions: 0, models: 0 };

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
        counts.models++;
        if (request.headers.get('authorization') !== expectedAuthorization) return unauthorized();
        // A provider that is down fails its models endpoint too, so health probes see it failing.
        if (failStatus !== undefined) return failure(failStatus);
        return new Response(modelsBody, { headers: { 'content-type': 'application/json' } });
      },
    },
    '/v1/chat/completions': {
      POST: async (request) => {
        counts.chatCompletions++;
        if (request.headers.get('authorization') !== expectedAuthorization) return unauthorized();
        // Answered before reading the body, as a rate limiter or a failing front end would.
        if (failStatus !== undefined) return failure(failStatus);
        // Parsed like a real upstream would, so a proxy that mangles the body shows up as an error.
        const body = (await request.json()) as CompletionRequest;
        if (body.stream === true) return streamResponse(body.stream_options?.include_usage === true ? streamWithUsage : streamWithoutUsage);
        return new Response(completionBody, { headers: { 'content-type': 'application/json' } });
      },
    },
    '/__stats': { GET: () => Response.json({ chat_completions: counts.chatCompletions, models: counts.models, fail_status: failStatus ?? null }) },
  },
  fetch: () => Response.json({ error: { message: 'Not found', type: 'invalid_request_error' } }, { status: 404 }),
});

console.log(JSON.stringify({ stub: 'listening', port: server.port, chunkDelayMs, chunkCount, failStatus: failStatus ?? null }));
