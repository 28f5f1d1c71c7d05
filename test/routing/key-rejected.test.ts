// A provider key its provider refuses (401/403): retrying within seconds cannot help, so the official
// `openai` client, at its default retries, must make one call and surface the real cause; the 503 that
// follows while the key is out names the refused key (its id, never the key) and says how it comes
// back; and it does come back, re-checked every check_interval without a health policy or anyone
// reading GET /v1/providers. QA14 migrator 8.

import { describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { ManualClock } from '../../core/clock.ts';
import { addAccountKeys, call, createAccount, probeNow, routingSuite, sdkFailureOf } from './harness.ts';

const clock = new ManualClock(Date.UTC(2026, 0, 5, 9, 0, 0));
const suite = routingSuite('rejected', { clock });
let accounts = 0;

interface Account {
  key: string;
  keyIds: Record<string, string>;
}

async function newAccount(): Promise<Account> {
  const key = await createAccount(suite.gateway, `rejected-${++accounts}`);
  const keyIds = await addAccountKeys(suite.gateway, suite.fleet, ['cohere'], key);
  // Waits for the key's model listing, so no listing call is left to meet an injected fault.
  expect((await call(suite.gateway, 'GET', '/v1/providers', undefined, { key })).status).toBe(200);
  return { key, keyIds };
}

interface WireCall {
  status: number;
  shouldRetry: string | null;
}

/** The official client at its default retries (2), recording every call it makes on the wire. */
function recordingClient(account: Account): { client: OpenAI; wire: WireCall[] } {
  const wire: WireCall[] = [];
  const recording = (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, init);
    wire.push({ status: response.status, shouldRetry: response.headers.get('x-should-retry') });
    return response;
  }) as typeof fetch;
  return { client: new OpenAI({ baseURL: `${suite.gateway.url}/v1`, apiKey: account.key, fetch: recording }), wire };
}

const hello = { model: 'command-r', messages: [{ role: 'user' as const, content: 'hi' }] };

describe('an upstream 401', () => {
  test('is answered 502 provider_key_rejected with x-should-retry: false: one call on the wire, one upstream', async () => {
    const account = await newAccount();
    suite.fleet.simulators.cohere.inject({ kind: 'auth' });
    const { client, wire } = recordingClient(account);
    const failure = await sdkFailureOf(client.chat.completions.create(hello));
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 502, code: 'provider_key_rejected' });
    expect(wire).toEqual([{ status: 502, shouldRetry: 'false' }]);
    expect(suite.fleet.simulators.cohere.inferenceRequests()).toHaveLength(1);
  });

  test('then, with the key out, the 503 names the refused key and how it returns, and stops the SDK too', async () => {
    const account = await newAccount();
    suite.fleet.simulators.cohere.inject({ kind: 'auth' });
    await sdkFailureOf(recordingClient(account).client.chat.completions.create(hello));
    const { client, wire } = recordingClient(account);
    const failure = await sdkFailureOf(client.chat.completions.create(hello));
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 503, code: 'no_provider_available' });
    expect(failure.message).toContain(`key ${account.keyIds.cohere} was rejected by cohere (authentication error)`);
    expect(failure.message).toContain('re-checked');
    expect(failure.message).not.toContain(suite.fleet.keys.cohere);
    expect(wire).toEqual([{ status: 503, shouldRetry: 'false' }]);
    expect(suite.fleet.simulators.cohere.inferenceRequests()).toHaveLength(1);
  });

  test('a provider the health check disabled is not a refused key: its 503 keeps Retry-After and no x-should-retry', async () => {
    const account = await newAccount();
    expect((await call(suite.gateway, 'POST', '/v1/providers/health-check', { auto_disable: true, min_samples: 1 }, { key: account.key })).status).toBe(200);
    suite.fleet.simulators.cohere.inject({ kind: 'server_error' });
    const { client, wire } = recordingClient(account);
    await sdkFailureOf(client.chat.completions.create({ ...hello }, { maxRetries: 0 }));
    const failure = await sdkFailureOf(client.chat.completions.create(hello, { maxRetries: 0 }));
    expect({ status: failure.status, code: failure.code }).toEqual({ status: 503, code: 'no_provider_available' });
    expect(wire.at(-1)).toEqual({ status: 503, shouldRetry: null });
  });
});

describe('a refused key comes back', () => {
  test('re-checked one check_interval after the refusal, with no health policy set and no GET /v1/providers', async () => {
    const account = await newAccount();
    suite.fleet.simulators.cohere.inject({ kind: 'auth' });
    const { client } = recordingClient(account);
    await sdkFailureOf(client.chat.completions.create(hello));
    // Not at once: the refusal itself was the latest check.
    await probeNow(suite.gateway);
    expect((await sdkFailureOf(client.chat.completions.create(hello, { maxRetries: 0 }))).status).toBe(503);
    clock.advance(60_000);
    await probeNow(suite.gateway);
    // The restored status is persisted in the background; the next request sees it.
    let served = false;
    for (let tries = 0; tries < 50 && !served; tries++) {
      served = (await client.chat.completions.create(hello, { maxRetries: 0 }).catch(() => undefined)) !== undefined;
      if (!served) await Bun.sleep(10);
    }
    expect(served).toBe(true);
  });
});
