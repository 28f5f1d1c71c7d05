// A stream the client cuts is booked after its socket closed: its request event must still name the
// client's address, read while the socket was open.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { readAllEvents } from './helpers.ts';

const PROVIDER_KEY = 'sk-proj-AUDITxCUTxSTREAMxKEY0123456789abcdefgh';

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
  const compliance = await call(gateway, 'PUT', '/v1/settings/compliance', { byok_compliance: { audit_logging: 'all_requests', key_access_logs: true } });
  expect(compliance.status).toBe(200);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

test('a stream the client cuts keeps its client address in the request event and the key access event', async () => {
  simulator.inject({ kind: 'slow_stream', delayMs: 150 });
  const controller = new AbortController();
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gateway.defaultAdminKey}`, 'content-type': 'application/json', 'x-request-id': 'cut-stream-1' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'Count slowly to twenty.' }] }),
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  controller.abort();
  await reader.cancel().catch(() => undefined);
  let request: { ip: string | null; status: number | null } | undefined;
  for (let attempt = 0; attempt < 50 && request === undefined; attempt++) {
    await Bun.sleep(50);
    await gateway.runtime.usage.flush();
    const events = await readAllEvents(gateway, 'start=2020-01-01&end=2100-01-01&type=request', gateway.defaultAdminKey, []);
    request = events.find((event) => event.request_id === 'cut-stream-1') as typeof request;
  }
  expect(request).toBeDefined();
  expect(request?.ip).toMatch(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
  const keyAccess = await readAllEvents(gateway, 'start=2020-01-01&end=2100-01-01&type=key_access', gateway.defaultAdminKey, []);
  const uses = keyAccess.filter((event) => event.request_id === 'cut-stream-1' && (event as { action?: string }).action === 'provider_key.use');
  expect(uses.length).toBeGreaterThan(0);
  for (const use of uses) expect(use.ip).toMatch(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
});
