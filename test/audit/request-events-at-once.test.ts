// A request's audit event lives in its usage row, written in batches: the audit log still shows it as
// soon as the request was answered, because reading the log writes this process's queued rows first.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { AuditPage } from './helpers.ts';

const PROVIDER_KEY = 'sk-proj-AUDITxATxONCExPROVIDERxKEY0123456789ab';
let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  // Ten minutes between the queue's own flushes: only the read can have written the row.
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_USAGE_FLUSH_MS: '600000' } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

test('a request answered a moment ago is in the audit log at once', async () => {
  expect((await call(gateway, 'PUT', '/v1/settings/compliance', { audit_logging: 'all_requests' })).status).toBe(200);
  const answer = await call(
    gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] },
    {
      headers: { 'x-request-id': 'req_at_once' },
    },
  );
  expect(answer.status).toBe(200);
  expect(gateway.runtime.usage.pending).toBeGreaterThan(0);
  const page = (await (await call(gateway, 'GET', '/v1/audit-logs?type=request')).json()) as AuditPage;
  expect(page.events.map((event) => event.request_id)).toContain('req_at_once');
});
