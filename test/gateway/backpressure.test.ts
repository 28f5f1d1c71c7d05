// A slow client must slow the upstream down, not make Keyway buffer the whole answer in memory.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const CHUNK_TEXT = 'x'.repeat(8 * 1024);
const CHUNK_COUNT = 12_000; // about 100 MB of SSE if nothing held it back
let produced = 0;
let upstream: ReturnType<typeof Bun.serve>;
let gateway: TestGateway;

function chunk(content: string, finish: string | null): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-bp', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
}

beforeAll(async () => {
  // An upstream that writes as fast as its reader takes, counting what it handed over.
  upstream = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(request) {
      if (new URL(request.url).pathname.endsWith('/models')) return Response.json({ object: 'list', data: [{ id: 'gpt-4o', object: 'model' }] });
      const encoder = new TextEncoder();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === CHUNK_COUNT) {
            controller.enqueue(encoder.encode(`${chunk('', 'stop')}data: [DONE]\n\n`));
            controller.close();
            return;
          }
          const bytes = encoder.encode(chunk(CHUNK_TEXT, null));
          produced += bytes.byteLength;
          sent++;
          controller.enqueue(bytes);
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    },
  });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${upstream.port}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: 'sk-proj-BackpressureKey000000000000001' }]);
});

afterAll(async () => {
  await gateway.stop();
  await upstream.stop(true);
});

test('a client that stops reading stops the upstream too', async () => {
  const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a lot' }] });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let received = 0;
  while (received < 512 * 1024) {
    const { value, done } = await reader.read();
    if (done) break;
    received += value.byteLength;
  }
  try {
    // The client pauses; a gateway without backpressure would drain the upstream meanwhile. What
    // may pile up is what sockets and stream queues hold on both hops (a direct call alone parks
    // about 6 MB here), so the test asks for a plateau well under the whole answer, not for zero.
    await Bun.sleep(600);
    const afterPause = produced;
    await Bun.sleep(400);
    const total = CHUNK_COUNT * (CHUNK_TEXT.length + 150);
    expect(afterPause).toBeLessThan(total / 3);
    expect(produced - afterPause).toBeLessThan(256 * 1024);
  } finally {
    await reader.cancel();
  }
});
