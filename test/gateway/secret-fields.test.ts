// A careless client sends keys in the wrong field: a gateway key as `model`, a provider key in
// `X-Provider` (swapped with `X-Provider-Key`), a key as the project tag or a routing name. Canary keys
// of every shape, in every field Keyway reads a name from: the answer names the field and never the
// value, and no log line, usage row, export, analytics group or request audit event holds a canary.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { addProviderKeys, call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const STORED_KEYS = {
  openai: 'sk-proj-CANARYopenaiKEY0123456789abcdefghijklmnopqrstuv',
  anthropic: 'sk-ant-api03-CANARYanthropicKEY0123456789abcdefghijkl',
  google: 'AIzaSyCANARYgoogleKEY0123456789abcdef',
  // No known prefix: only its value, once Keyway has decrypted it, identifies it.
  cohere: 'Zq7fK2mR9wXc4vB8nL1pT6yH3jD5sG0aCANARYcohere',
};
const MEMBER_SHAPED = 'kw_mk_CANARYmemberKEY0123456789abcdefghijklmn';

let simulators: SimulatorHandle[];
let gateway: TestGateway;
const answers: string[] = [];

function canaries(): string[] {
  return [...Object.values(STORED_KEYS), MEMBER_SHAPED, OPERATOR_KEY, gateway.defaultAdminKey];
}

async function record(
  response: Response,
): Promise<{ status: number; body: { error?: { param?: unknown; message?: string } } & Record<string, unknown>; text: string }> {
  const text = await response.text();
  const headers = [...response.headers.entries()].map(([name, value]) => `${name}: ${value}`).join('\n');
  answers.push(`${headers}\n${text}`);
  let body = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // CSV and empty answers are only searched.
  }
  return { status: response.status, body, text };
}

const hello = [{ role: 'user', content: 'hello' }];

beforeAll(async () => {
  simulators = [
    startOpenAISimulator({ apiKeys: [STORED_KEYS.openai] }),
    startAnthropicSimulator({ apiKeys: [STORED_KEYS.anthropic] }),
    startGoogleSimulator({ apiKeys: [STORED_KEYS.google] }),
    startCohereSimulator({ apiKeys: [STORED_KEYS.cohere] }),
  ];
  const [openai, anthropic, google, cohere] = simulators as [SimulatorHandle, SimulatorHandle, SimulatorHandle, SimulatorHandle];
  gateway = await startTestGateway({
    probes: false,
    env: {
      KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`,
      KEYWAY_ANTHROPIC_BASE_URL: anthropic.url,
      KEYWAY_GOOGLE_BASE_URL: google.url,
      KEYWAY_COHERE_BASE_URL: cohere.url,
    },
  });
  await addProviderKeys(
    gateway,
    Object.entries(STORED_KEYS).map(([name, api_key]) => ({ name, api_key })),
  );
  // Lists every key's models: each key is decrypted, so the one without a known shape is known by value.
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
  expect((await call(gateway, 'PUT', '/v1/settings/compliance', { audit_logging: 'all_requests' })).status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
  await Promise.all(simulators.map((simulator) => simulator.stop()));
});

describe('a key sent as a name is refused by field, never repeated', () => {
  const refusals: Array<[string, (canary: string) => Promise<Response>, string]> = [
    ['model', (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: canary, messages: hello }), 'model'],
    ['provider', (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', provider: canary, messages: hello }), 'provider'],
    [
      'X-Provider (swapped with X-Provider-Key)',
      (canary) =>
        call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello }, { headers: { 'x-provider': canary, 'x-provider-key': 'openai' } }),
      'X-Provider',
    ],
    [
      'routing.strategy',
      (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello, routing: { strategy: canary } }),
      'routing.strategy',
    ],
    [
      'routing.provider_order',
      (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello, routing: { provider_order: ['openai', canary] } }),
      'routing.provider_order[1]',
    ],
    [
      'routing.fallback_reasons',
      (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello, routing: { fallback_reasons: [canary] } }),
      'routing.fallback_reasons[0]',
    ],
    [
      'X-Project-Tag',
      (canary) => call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello }, { headers: { 'x-project-tag': canary } }),
      'x-project-tag',
    ],
    ['embeddings model', (canary) => call(gateway, 'POST', '/v1/embeddings', { model: canary, input: ['a'] }), 'model'],
    ['messages model', (canary) => call(gateway, 'POST', '/v1/messages', { model: canary, max_tokens: 10, messages: hello }), 'model'],
    ['responses model', (canary) => call(gateway, 'POST', '/v1/responses', { model: canary, input: 'hello' }), 'model'],
    ['GET /v1/models/{id}', (canary) => call(gateway, 'GET', `/v1/models/${encodeURIComponent(canary)}`), 'model'],
  ];

  for (const [field, send, param] of refusals) {
    test(`${field}: 400 naming ${param}`, async () => {
      for (const canary of canaries()) {
        const answer = await record(await send(canary));
        expect(answer.status).toBe(400);
        // Anthropic's shape on /v1/messages has no param; the message names the field there.
        const error = answer.body.error as { param?: unknown; message?: string; type?: string };
        if (field !== 'messages model') expect(error.param).toBe(param);
        expect(error.message).toContain(`Invalid value for '${param}'`);
        expect(error.message).toContain('looks like an API key');
        expect(answer.text).not.toContain(canary);
      }
    });
  }
});

describe('other echoes are redacted', () => {
  test('an unknown field named like a key, a grouping, a team id, a request id', async () => {
    for (const canary of canaries()) {
      const team = await record(await call(gateway, 'POST', '/v1/teams', { name: 'careless', [canary]: 1 }));
      expect(team.status).toBe(400);
      const grouping = await record(await call(gateway, 'GET', `/v1/analytics/byok?period=today&group_by=${encodeURIComponent(canary)}`));
      expect(grouping.status).toBe(400);
      await record(await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello }, { headers: { 'x-team-id': canary } }));
      // The request id is answered in every header and kept on the row: a key there is not taken.
      const served = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello }, { headers: { 'x-request-id': canary } });
      expect(served.status).toBe(200);
      expect(served.headers.get('x-request-id')).toStartWith('req_');
      await record(served);
      // Sent as a header value would be (`Bearer <key>`), or glued to a word: the cleaning must not hide it.
      for (const variant of [`Bearer ${canary}`, `X${canary}`]) {
        const glued = await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hello }, { headers: { 'x-request-id': variant } });
        expect(glued.headers.get('x-request-id')).toStartWith('req_');
        await record(glued);
      }
      // Refused before the fields are read (bad JSON), so booked with the tag it came with.
      const malformed = await record(
        await fetch(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-project-tag': canary },
          body: '{"model": ',
        }),
      );
      expect(malformed.status).toBe(400);
    }
    for (const answer of answers) for (const canary of canaries()) expect(answer).not.toContain(canary);
  });
});

describe('nothing kept holds a canary', () => {
  test('usage rows, the export, analytics, request audit events and the log', async () => {
    await gateway.runtime.usage.flush();
    const exported = await record(await call(gateway, 'POST', '/v1/billing/export', { format: 'csv', type: 'all_usage', period: 'today' }));
    expect(exported.status).toBe(200);
    // Every refused request above was booked: the export has their rows, with the names redacted.
    expect(exported.text).toContain('[REDACTED]');
    const json = await record(await call(gateway, 'POST', '/v1/billing/export', { format: 'json', type: 'all_usage', period: 'today' }));
    expect(json.status).toBe(200);
    const analytics = await record(await call(gateway, 'GET', '/v1/analytics/byok?period=today&group_by=model,project'));
    expect(analytics.status).toBe(200);
    const audit = await record(await call(gateway, 'GET', '/v1/audit-logs?type=request&limit=500'));
    expect(audit.status).toBe(200);
    expect((audit.body.events as unknown[]).length).toBeGreaterThan(50);
    const rows = JSON.stringify(await gateway.runtime.store.listUsage('default'));
    const kept = [rows, exported.text, json.text, analytics.text, audit.text];
    // The log, without the first-start announcement (which prints the default admin key once, by design).
    const logLines = gateway.output.filter((line) => line.startsWith('{'));
    for (const canary of canaries()) {
      for (const text of kept) expect(text).not.toContain(canary);
      for (const line of logLines) expect(line).not.toContain(canary);
    }
  });
});
