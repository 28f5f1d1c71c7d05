// The floor for what the spec obliges any gateway written in Bun to do per chat request, in the fewest
// lines: authenticate a gateway key (hash and look it up, as keys are stored as hashes), parse the JSON
// body and check it, call the upstream with the provider key, read the provider-reported usage from the
// answer (the cost of an exact bill), and for a stream hold the answer until the first upstream event
// so that a failure before the first byte could still fall back. No routing, policies, deadlines, health,
// headers or usage rows. bench/ablation.ts sets it between the pass-through (the runtime's floor) and
// Keyway, so a missed target can be split into what Bun costs, what the obligations cost and what
// Keyway's own code adds.
//
//   FLOOR_PORT=8083 FLOOR_UPSTREAM=http://127.0.0.1:8081 FLOOR_GATEWAY_KEY=kw_... FLOOR_PROVIDER_KEY=sk-... bun bench/ablation/gateway-floor.ts

// A module, so its top-level names do not clash with bench/bun-passthrough.ts's in the type check.
export {};

const upstreamUrl = `${process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:8081'}/v1/chat/completions`;
const port = Number(process.env.FLOOR_PORT ?? '8083');
const providerAuthorization = `Bearer ${process.env.FLOOR_PROVIDER_KEY ?? ''}`;
const principals = new Map([[Bun.SHA256.hash(process.env.FLOOR_GATEWAY_KEY ?? '', 'hex'), { keyId: 'operator' }]]);

let tokensSeen = 0;
const decoder = new TextDecoder();

function refuse(status: number, message: string): Response {
  return Response.json({ error: { message, type: 'invalid_request_error' } }, { status });
}

/** Reads `usage.total_tokens` from an SSE chunk when it carries the usage event (OpenAI's last data event). */
function tallyStreamUsage(chunk: Uint8Array): void {
  const text = decoder.decode(chunk);
  const at = text.indexOf('"usage":{');
  if (at === -1) return;
  const end = text.indexOf('\n', at);
  const line = text.slice(text.lastIndexOf('data: ', at) + 6, end === -1 ? undefined : end);
  tokensSeen += (JSON.parse(line) as { usage: { total_tokens: number } }).usage.total_tokens;
}

async function streamAfterFirstEvent(upstream: Response): Promise<Response> {
  const reader = (upstream.body as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        if (first.value !== undefined) controller.enqueue(first.value);
        if (first.done) controller.close();
      },
      async pull(controller) {
        const next = await reader.read();
        if (next.done) return controller.close();
        tallyStreamUsage(next.value);
        controller.enqueue(next.value);
      },
      cancel: () => reader.cancel(),
    }),
    { status: upstream.status, headers: { 'content-type': 'text/event-stream' } },
  );
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  async fetch(request) {
    const authorization = request.headers.get('authorization') ?? '';
    if (!authorization.startsWith('Bearer ') || principals.get(Bun.SHA256.hash(authorization.slice(7), 'hex')) === undefined) {
      return refuse(401, 'invalid key');
    }
    const text = await request.text();
    let body: { model?: unknown; messages?: unknown; stream?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return refuse(400, 'malformed JSON');
    }
    if (typeof body.model !== 'string' || !Array.isArray(body.messages)) return refuse(400, 'model and messages are required');
    const upstream = await fetch(upstreamUrl, {
      method: 'POST',
      headers: { authorization: providerAuthorization, 'content-type': 'application/json' },
      body: text,
    });
    if (body.stream === true) return streamAfterFirstEvent(upstream);
    const answer = await upstream.text();
    tokensSeen += (JSON.parse(answer) as { usage?: { total_tokens?: number } }).usage?.total_tokens ?? 0;
    return new Response(answer, { status: upstream.status, headers: { 'content-type': 'application/json' } });
  },
});

process.on('SIGTERM', () => {
  console.log(JSON.stringify({ floor: 'stopped', tokensSeen }));
  process.exit(0);
});
console.log(JSON.stringify({ floor: 'listening', port: server.port }));
