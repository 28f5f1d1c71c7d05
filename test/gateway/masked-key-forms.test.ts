// Security review of masked-key redaction (core/credentials/masked-keys.ts), over HTTP with canary keys:
// a listed form (`…gk3E`) inside a longer masked form let 20 characters of a stored Google key through;
// two stars, `#` and `x` runs, and a start or end named alone were not recognised; and one long model
// name (180 KB of `…`) was echoed whole after redaction held the worker for seconds.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, type TestGateway } from '../helpers/gateway.ts';
import { gatewayBehindEchoingUpstream, type EchoingUpstream } from '../helpers/echoing-upstream.ts';

/** No family prefix: listed as `…gk3E`. Stored as the OpenAI key (the upstream speaks OpenAI's wire). */
const GOOGLE = `AIzaSyCANARYgoogleCC${'C'.repeat(15)}gk3E`;
/** No family prefix either: listed as `…ch4R`. Stored as the vLLM key. */
const COHERE = `CANARYcohereDDDD${'q'.repeat(20)}ch4R`;
/** The client's own key, sent in X-Provider-Key. */
const PERPLEXITY = 'pplx-CANARYperplexDDDDDDDDEEEEEEEEpx5T';

/** Pieces of the canaries that no answer may hold (their listed forms, `…gk3E` alone, may). */
const PIECES = ['CANARYgoogle', 'CANARYcohere', 'CANARYp', 'EEEEpx5T', 'qqqqch4R', 'CCgk3E', 'DDDD…', 'xxxxch4R', '**px5T', '##px5T'];

let upstream: EchoingUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  ({ upstream, gateway } = await gatewayBehindEchoingUpstream(GOOGLE, COHERE));
});

afterAll(async () => {
  await gateway?.stop();
  upstream?.stop();
});

function expectNoPiece(text: string): void {
  for (const piece of PIECES) expect(text).not.toContain(piece);
  for (const key of [GOOGLE, COHERE, PERPLEXITY]) expect(text).not.toContain(key);
}

const hello = [{ role: 'user', content: 'hi' }];

/** The upstream refuses the request (400: no key or provider health changes), with these words. */
function refuse(message: string, extra: Record<string, unknown> = {}): void {
  upstream.answer = () => Response.json({ error: { message, type: 'invalid_request_error', ...extra } }, { status: 400 });
}

describe('a listed form inside a longer masked form', () => {
  test("the stored Google key's start in front of its listed `…gk3E` is redacted with it", async () => {
    refuse('Credential AIzaSyCANARYgoogleCC…gk3E is not allowed');
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'openai', messages: hello });
    const text = await response.text();
    expect(response.status).toBe(400);
    expectNoPiece(text);
    expect(text).toContain('Credential [REDACTED] is not allowed');
  });

  test("the stored Cohere key's start in front of its listed `…ch4R` too; the listing still shows both listed forms", async () => {
    refuse('Credential CANARYcohereDDDD…ch4R is not allowed');
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'vllm', messages: hello });
    const text = await response.text();
    expectNoPiece(text);
    expect(text).toContain('Credential [REDACTED] is not allowed');
    const listing = await (await call(gateway, 'GET', '/v1/providers')).text();
    expect(listing).toContain('"masked_key":"…gk3E"');
    expect(listing).toContain('"masked_key":"…ch4R"');
  });
});

describe('forms with two stars, `#` or `x` runs, and starts or ends named alone', () => {
  test('in the message, the upstream code and the param, for the client’s own key', async () => {
    refuse('Key pplx-CANARYp**px5T (also pplx-CANARYp########px5T), starting with pplx-CANARYperplex and ending in EEEEEEEEpx5T, is refused', {
      code: 'pplx-CANARYp**px5T',
      param: 'ending in EEEEEEEEpx5T',
    });
    const response = await call(
      gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: hello },
      { headers: { 'x-provider': 'openai', 'x-provider-key': PERPLEXITY } },
    );
    const text = await response.text();
    expectNoPiece(text);
    const body = JSON.parse(text) as { error: Record<string, unknown> };
    expect(body.error.message).toContain('Key [REDACTED] (also [REDACTED]), starting with [REDACTED] and ending in [REDACTED], is refused');
    expect(body.error.upstream_code).toBe('[REDACTED]');
    expect(body.error.param).toBe('ending in [REDACTED]');
  });

  test('an `x` run between a stored key’s start and end', async () => {
    refuse('Invalid api key CANARYcoherexxxxxxxxch4R for this server');
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'vllm', messages: hello });
    const text = await response.text();
    expectNoPiece(text);
    expect(text).toContain('Invalid api key [REDACTED] for this server');
    expect(gateway.output.join('\n')).not.toContain('CANARYcoherexxxx');
  });
});

describe('long client input is cut before it is echoed or redacted', () => {
  test('/v1/messages refuses a model name of 60,000 ellipses as too long, without echoing it', async () => {
    const response = await call(gateway, 'POST', '/v1/messages', { model: '…'.repeat(60_000), max_tokens: 10, messages: hello });
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(text.length).toBeLessThan(1_000);
    const body = JSON.parse(text) as { error: { type: string; message: string } };
    expect(body.error.message).toBe("Invalid value for 'model': is 60000 characters long; the limit is 256");
  });

  test('/v1/chat/completions says a 300-character model name is too long, not that it is empty', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'a'.repeat(300), messages: hello });
    const body = (await response.json()) as { error: { message: string; param: string } };
    expect(response.status).toBe(400);
    expect(body.error.message).toBe("Invalid value for 'model': is 300 characters long; the limit is 256");
    expect(body.error.param).toBe('model');
  });

  test('an upstream echoing a 20,000-character field name is answered cut, message and param', async () => {
    const name = '…'.repeat(20_000);
    refuse(`Unrecognized request argument supplied: ${name}`, { param: name, code: name });
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', provider: 'openai', messages: hello });
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(text.length).toBeLessThan(6_000);
    const body = JSON.parse(text) as { error: { message: string; param: string; upstream_code: string } };
    expect(body.error.message).toContain('Unrecognized request argument supplied: …');
    expect(body.error.param.length).toBeLessThanOrEqual(256);
  });

  test('a value of an unknown routing member name is cut in the message and param', async () => {
    const name = 'z'.repeat(5_000);
    const response = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: hello, routing: { [name]: 1 } });
    const body = (await response.json()) as { error: { message: string; param: string } };
    expect(response.status).toBe(400);
    expect(body.error.param.length).toBeLessThanOrEqual(256);
    expect(body.error.message.length).toBeLessThan(1_000);
    expect(body.error.message).toContain('…');
  });
});
