// A gateway key of one environment that asks for platform keys only, when every platform key of the
// provider belongs to another environment: the 503 says those keys were passed over for their
// environment (QA qa-teams L3: it said only that routing "planned none of this account's openai keys"),
// naming no key id and no key. With X-Use-BYOK: false the platform's keys are all the request had, so
// the policy's own 403 answers, as before. The account's own key of the same environment serves when allowed.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const PLATFORM_PRODUCTION = 'sk-proj-EnvPlatformOnlyProductionKey000000001';
const ACCOUNT_STAGING = 'sk-proj-EnvPlatformOnlyStagingAccountKey0002';
const CHAT = { model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'Hello!' }] };
const PLATFORM_ONLY = { strategy: 'fallback_chain', provider_order: ['platform'] };

let gateway: TestGateway;
let openai: SimulatorHandle;
let stagingKey: string;
let platformKeyId: string;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [PLATFORM_PRODUCTION, ACCOUNT_STAGING] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  const platform = await call(gateway, 'POST', '/v1/platform/keys', {
    providers: [{ name: 'openai', api_key: PLATFORM_PRODUCTION, environment: 'production' }],
  });
  expect(platform.status).toBe(201);
  platformKeyId = String(((await platform.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id);
  await addProviderKeys(gateway, [{ name: 'openai', api_key: ACCOUNT_STAGING, environment: 'staging' }], gateway.defaultAdminKey);
  const created = await call(gateway, 'POST', '/v1/keys', { role: 'developer', environment: 'staging' }, { key: gateway.defaultAdminKey });
  stagingKey = ((await created.json()) as { api_key: string }).api_key;
});

afterAll(async () => {
  await gateway?.stop();
  await openai?.stop();
});

const chat = (routing: unknown, headers: Record<string, string> = {}) =>
  call(gateway, 'POST', '/v1/chat/completions', { ...CHAT, routing }, { key: stagingKey, headers });

test('platform-only routing: the 503 says the platform keys of another environment were passed over, naming no key', async () => {
  const before = openai.inferenceRequests().length;
  const body = await expectSpecError(await chat(PLATFORM_ONLY), 503, 'no_provider_available');
  expect(body.error.message).toContain('environment');
  expect(body.error.message).toContain("'staging'");
  expect(body.error.message).toContain('platform');
  expect(body.error.message).not.toContain(platformKeyId);
  expect(body.error.message).not.toContain(PLATFORM_PRODUCTION);
  expect(body.error.message).not.toContain(PLATFORM_PRODUCTION.slice(-8));
  expect(openai.inferenceRequests().length).toBe(before);
});

test("X-Use-BYOK: false (the account's keys set aside before any policy) is the policy's 403 naming the environment", async () => {
  const body = await expectSpecError(await chat(undefined, { 'x-use-byok': 'false' }), 403, 'provider_not_allowed');
  expect(body.error.message).toContain("another environment than this API key's ('staging')");
  expect(body.error.message).not.toContain(platformKeyId);
});

test('routing that allows the account key of the same environment is served by it', async () => {
  const response = await chat({ strategy: 'fallback_chain', provider_order: ['openai', 'platform'] });
  expect(response.status).toBe(200);
  expect(openai.inferenceRequests().at(-1)?.headers.authorization).toBe(`Bearer ${ACCOUNT_STAGING}`);
});
