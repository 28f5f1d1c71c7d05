// Per-attempt first-byte deadlines and their precedence: the request's `routing.timeout_ms`, then
// the provider key's `settings.first_byte_timeout_ms`, then KEYWAY_FIRST_BYTE_TIMEOUT_MS. The total
// deadline (`total_timeout_ms`) also bounds a stream after its first byte. Timings here are
// behavioural (who answered, before which delay elapsed), with wide margins.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { ssePayloads } from './expectations.ts';
import { chat, createAccount, errorOf, servedBy, startFleet, startRoutingGateway, storeKeys, type RoutingGateway, type SimulatorFleet } from './harness.ts';

const ENVIRONMENT_DEADLINE_MS = 400;
let gateway: RoutingGateway;
let fleet: SimulatorFleet;
/** No key settings: the environment's deadline applies. */
let plain: string;
/** OpenAI key with a generous first_byte_timeout_ms. */
let patient: string;
/** OpenAI key with a short first_byte_timeout_ms, and an Anthropic key to fall back to. */
let impatient: string;

async function accountWith(name: string, openaiSettings: Record<string, unknown>): Promise<string> {
  const key = await createAccount(gateway, name);
  await storeKeys(
    gateway,
    '/v1/providers/keys',
    [
      { name: 'openai', api_key: fleet.keys.openai, settings: openaiSettings },
      { name: 'anthropic', api_key: fleet.keys.anthropic },
    ],
    key,
  );
  return key;
}

beforeAll(async () => {
  fleet = startFleet('deadline');
  gateway = await startRoutingGateway({ env: { ...fleet.environment(), KEYWAY_FIRST_BYTE_TIMEOUT_MS: String(ENVIRONMENT_DEADLINE_MS) } });
  plain = await accountWith('plain', {});
  patient = await accountWith('patient', { first_byte_timeout_ms: 5_000 });
  impatient = await accountWith('impatient', { first_byte_timeout_ms: 200 });
});

afterAll(async () => {
  await gateway.stop();
  await fleet.stop();
});

beforeEach(() => fleet.reset());

async function timed(request: Promise<Response>): Promise<{ response: Response; elapsed: number }> {
  const started = performance.now();
  const response = await request;
  return { response, elapsed: performance.now() - started };
}

describe('first-byte deadline precedence', () => {
  test('KEYWAY_FIRST_BYTE_TIMEOUT_MS applies when neither the request nor the key sets one', async () => {
    fleet.simulators.openai.inject({ kind: 'delay', delayMs: 2_000 });
    const { response, elapsed } = await timed(chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct' } }, {}, plain));
    expect(elapsed).toBeLessThan(1_500);
    expect(response.status).toBe(504);
    const error = await errorOf(response);
    expect(error.code).toBe('upstream_timeout');
    expect(error.message).toContain(`within ${ENVIRONMENT_DEADLINE_MS} ms`);
  });

  test("the key's first_byte_timeout_ms wins over the environment", async () => {
    fleet.simulators.openai.inject({ kind: 'delay', delayMs: 800 });
    const { response, elapsed } = await timed(chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct' } }, {}, patient));
    expect(response.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(servedBy(response)).toMatchObject({ provider: 'openai', fallbackAttempts: '0' });
  });

  test("the request's timeout_ms wins over the key's", async () => {
    fleet.simulators.openai.inject({ kind: 'delay', delayMs: 2_000 });
    const { response, elapsed } = await timed(chat(gateway, { model: 'gpt-4', routing: { strategy: 'direct', timeout_ms: 150 } }, {}, patient));
    expect(elapsed).toBeLessThan(1_500);
    expect(response.status).toBe(504);
    expect((await errorOf(response)).message).toContain('within 150 ms');
  });

  test("a key's short deadline makes the chain fall back before the slow answer arrives", async () => {
    fleet.simulators.openai.inject({ kind: 'delay', delayMs: 2_000 });
    const { response, elapsed } = await timed(
      chat(gateway, { model: 'gpt-4', routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] } }, {}, impatient),
    );
    expect(elapsed).toBeLessThan(1_500);
    expect(servedBy(response)).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
  });

  test('a stream waiting for its first byte falls back the same way', async () => {
    fleet.simulators.openai.inject({ kind: 'delay', delayMs: 2_000 });
    const { response, elapsed } = await timed(
      chat(gateway, { model: 'gpt-4', stream: true, routing: { strategy: 'fallback_chain', provider_order: ['openai', 'anthropic'] } }, {}, impatient),
    );
    expect(servedBy(response)).toMatchObject({ provider: 'anthropic', fallbackAttempts: '1' });
    expect(ssePayloads(await response.text()).at(-1)).toBe('[DONE]');
    expect(elapsed).toBeLessThan(1_500);
  });
});

describe('after the first byte', () => {
  test('a slow stream is not cut by the first-byte deadline', async () => {
    fleet.simulators.openai.inject({ kind: 'slow_stream', delayMs: 150 });
    const { response } = await timed(chat(gateway, { model: 'gpt-4', stream: true, routing: { strategy: 'direct' } }, {}, plain));
    const started = performance.now();
    const payloads = ssePayloads(await response.text());
    // The body took longer than the first-byte deadline, and still finished.
    expect(performance.now() - started).toBeGreaterThan(ENVIRONMENT_DEADLINE_MS);
    expect(payloads.at(-1)).toBe('[DONE]');
  });

  test('total_timeout_ms ends a slow stream with an error event and no [DONE]', async () => {
    fleet.simulators.openai.inject({ kind: 'slow_stream', delayMs: 150 });
    const response = await chat(gateway, { model: 'gpt-4', stream: true, routing: { strategy: 'direct', total_timeout_ms: 500 } }, {}, plain);
    expect(response.status).toBe(200);
    const payloads = ssePayloads(await response.text());
    expect(payloads).not.toContain('[DONE]');
    const last = JSON.parse(payloads.at(-1) ?? '{}') as { error?: { type?: string } };
    expect(last.error?.type).toBe('upstream_timeout');
  });
});
