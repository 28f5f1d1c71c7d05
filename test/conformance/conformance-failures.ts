// Failures, as the client sees them: every class of upstream error maps to the same Keyway status
// and code whichever provider raised it, before the first byte (streamed or not) and in the middle
// of a stream (an error event, no [DONE]).

import { expect, test } from 'bun:test';
import type { Fault } from '../simulators/common.ts';
import { call } from '../helpers/gateway.ts';
import { chatBody, postChat, streamChat, usageRowFor, withPrivateHarness, type Harness } from './conformance-harness.ts';
import type { JsonObject } from './native-answers.ts';

interface FailureCase {
  fault: Fault;
  status: number;
  code: string;
  retryAfter?: string;
}

const RETRY_AFTER_SECONDS = 7;

const FAILURE_CASES: FailureCase[] = [
  {
    fault: { kind: 'rate_limit', retryAfterSeconds: RETRY_AFTER_SECONDS },
    status: 429,
    code: 'upstream_rate_limited',
    retryAfter: String(RETRY_AFTER_SECONDS),
  },
  { fault: { kind: 'quota' }, status: 429, code: 'upstream_quota_exceeded' },
  { fault: { kind: 'server_error' }, status: 502, code: 'upstream_error' },
  { fault: { kind: 'overloaded' }, status: 502, code: 'upstream_error' },
  { fault: { kind: 'model_not_found' }, status: 404, code: 'model_not_found' },
  { fault: { kind: 'context_length' }, status: 400, code: 'context_length_exceeded' },
];

interface ErrorShape {
  message?: unknown;
  type?: unknown;
  code?: unknown;
  param?: unknown;
  provider?: unknown;
}

function errorOf(body: JsonObject): ErrorShape {
  return (body.error ?? {}) as ErrorShape;
}

function expectSpecShapedError(harness: Harness, response: Response, body: JsonObject, failure: FailureCase): void {
  const error = errorOf(body);
  expect({ status: response.status, code: error.code }).toEqual({ status: failure.status, code: failure.code });
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  expect('param' in error).toBe(true);
  expect(error.provider).toBe(harness.descriptor.name);
  expect(String(error.message)).not.toContain(harness.descriptor.apiKey);
  if (failure.retryAfter !== undefined) expect(response.headers.get('retry-after')).toBe(failure.retryAfter);
}

const hello = [{ role: 'user', content: 'This request will fail upstream' }];

export function describeFailureScenarios(harness: () => Harness): void {
  for (const failure of FAILURE_CASES) {
    test(`errors: ${failure.fault.kind} → ${failure.status} ${failure.code}`, async () => {
      harness().simulator.inject(failure.fault);
      const { response, body } = await postChat(harness(), chatBody(harness(), hello));
      expectSpecShapedError(harness(), response, body, failure);
      const row = await usageRowFor(harness(), response);
      expect({ status: row.status, errorCode: row.errorCode }).toEqual({ status: failure.status, errorCode: failure.code });
    });

    test(`errors: ${failure.fault.kind} before the first byte of a stream is still an HTTP ${failure.status}`, async () => {
      harness().simulator.inject(failure.fault);
      const { response, body } = await postChat(harness(), chatBody(harness(), hello, { stream: true }));
      expect(response.headers.get('content-type')).toContain('application/json');
      expectSpecShapedError(harness(), response, body, failure);
    });
  }

  test('errors: a failure in the middle of a stream is an error event with no [DONE] and no finish', async () => {
    const expected = 'Echo: Tell me a long story about a gateway that never drops a token';
    harness().simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const streamed = await streamChat(harness(), chatBody(harness(), [{ role: 'user', content: expected.slice('Echo: '.length) }]));
    expect(streamed.response.status).toBe(200);
    expect(streamed.errors.length).toBe(1);
    const error = errorOf(streamed.errors[0] ?? {});
    expect(error.code).toBe('upstream_error');
    expect(typeof error.message).toBe('string');
    expect(streamed.done).toBe(false);
    expect(streamed.finishReasons).toEqual([]);
    // What arrived before the failure is a true beginning of the answer, never invented text.
    expect(streamed.text.length).toBeGreaterThan(0);
    expect(streamed.text.length).toBeLessThan(expected.length);
    expect(expected.startsWith(streamed.text)).toBe(true);
    const row = await usageRowFor(harness(), streamed.response);
    expect({ status: row.status, errorCode: row.errorCode, streamed: row.streamed }).toEqual({ status: 502, errorCode: 'upstream_error', streamed: true });
  });

  test('errors: requests the provider cannot serve are 400s that leave the provider healthy', async () => {
    // A gateway of its own: the earlier failure scenarios already weigh on this block's health window.
    await withPrivateHarness(harness().descriptor, async (fresh) => {
      const key = fresh.gateway.defaultAdminKey;
      const strict = { auto_disable: true, min_samples: 3, health_threshold: 90, check_interval: 60 };
      expect((await call(fresh.gateway, 'POST', '/v1/providers/health-check', strict, { key })).status).toBe(200);
      for (let attempt = 0; attempt < strict.min_samples; attempt++) {
        const refused = await postChat(fresh, { ...chatBody(fresh, hello), ...fresh.descriptor.unservable });
        expect({ attempt, status: refused.response.status }).toEqual({ attempt, status: 400 });
      }
      // A client's bad requests must not take the provider away from the account's good ones.
      const served = await postChat(fresh, chatBody(fresh, [{ role: 'user', content: 'A request that is fine' }]));
      expect({ status: served.response.status, error: served.body.error }).toEqual({ status: 200, error: undefined });
    });
  });

  // Must stay the last test of a provider's block: a rejected key leaves rotation.
  test('errors: auth → 502 provider_key_rejected, and the key never shows', async () => {
    harness().simulator.inject({ kind: 'auth' });
    const { response, body } = await postChat(harness(), chatBody(harness(), hello));
    expectSpecShapedError(harness(), response, body, { fault: { kind: 'auth' }, status: 502, code: 'provider_key_rejected' });
    expect(JSON.stringify(body)).not.toContain(harness().descriptor.apiKey);
  });
}
