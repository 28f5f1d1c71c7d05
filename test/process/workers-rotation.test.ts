// KEYWAY_WORKERS=2, the routing strategy `direct` (one key per request, no fallback): an immediate key
// rotation with no grace period (the "leaked key" rotation) while requests keep arriving on fresh
// connections, so the kernel hands them to either worker. None fails, and every request sent after the
// rotation's answer reaches the provider with the new key, on both workers (QA16: 20–35 % of them were
// 503 no_provider_available until the rotation job retired the old key, about a second later).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startPerplexitySimulator } from '../simulators/perplexity.ts';
import { freshCall, startTwoWorkers, until, type GatewayProcess } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_WorkersRotationOperator0123456789abcd';
const KEYS = ['pplx-WorkersRotationKey00000000000000000000001', 'pplx-WorkersRotationKey00000000000000000000002'];
const ROUNDS = 4;
const STREAM_MS = 1_200;

let perplexity: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';

interface Answer {
  worker: string;
  status: number;
  text: string;
}

/** One request on a connection of its own. */
async function send(method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await freshCall(`${gateway.url}${path}`, adminKey, method, body);
  return { worker: response.headers.get('x-keyway-worker') ?? '', status: response.status, text: await response.text() };
}

beforeAll(async () => {
  perplexity = startPerplexitySimulator({ apiKeys: KEYS });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-workers-rotation', {
    operatorKey: OPERATOR_KEY,
    upstreams: {},
    // The rotation job's own pace (a pass a second): the old key stays stored, retired, for up to a second.
    extra: { KEYWAY_PERPLEXITY_BASE_URL: perplexity.url },
  }));
  expect((await send('POST', '/v1/providers/keys', { providers: [{ name: 'perplexity', api_key: KEYS[0] }] })).status).toBe(201);
  expect((await send('PUT', '/v1/settings/routing', { routing: { strategy: 'direct' } })).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  await perplexity?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('KEYWAY_WORKERS=2: an immediate rotation with no grace period', () => {
  test('no request fails and every one after the answer uses the new key, on both workers', async () => {
    const failures: string[] = [];
    const wrongKey: string[] = [];
    const workers = new Set<string>();
    for (let round = 0; round < ROUNDS; round += 1) {
      const newKey = KEYS[(round + 1) % 2] as string;
      const rotated = await send('POST', '/v1/providers/keys/rotate', {
        provider: 'perplexity',
        new_api_key: newKey,
        rotation_strategy: 'immediate',
        grace_period_minutes: 0,
        test_before_switch: false,
      });
      expect({ round, status: rotated.status, text: rotated.text }).toMatchObject({ status: 201 });
      perplexity.reset();
      const started = performance.now();
      let served = 0;
      while (performance.now() - started < STREAM_MS) {
        const answer = await send('POST', '/v1/chat/completions', { model: 'sonar', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
        if (answer.status === 200) served += 1;
        workers.add(answer.worker);
        if (answer.status !== 200) failures.push(`round ${round}, worker ${answer.worker}: ${answer.status} ${answer.text.slice(0, 160)}`);
        await Bun.sleep(10);
      }
      const used = perplexity.inferenceRequests().map((request) => request.headers.authorization ?? '');
      expect({ round, upstream: used.length }).toEqual({ round, upstream: served });
      for (const authorization of used) if (authorization !== `Bearer ${newKey}`) wrongKey.push(`round ${round}: a request used another key`);
      // The old key is retired before its value comes back as the next round's new key.
      const rotationId = String((JSON.parse(rotated.text) as { id: string }).id);
      const completed = await until(async () => (await send('GET', `/v1/providers/keys/rotations/${rotationId}`)).text.includes('"status":"completed"'), 5_000);
      expect(completed).toBe(true);
    }
    expect(failures).toEqual([]);
    expect(wrongKey).toEqual([]);
    expect([...workers].sort()).toEqual(['1', '2']);
  }, 60_000);
});
