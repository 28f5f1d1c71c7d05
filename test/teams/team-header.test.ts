// X-Team-ID is the client's text: a secret pasted into it by mistake must not come back in the refusal.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const CANARY_PROVIDER_KEY = 'sk-proj-TeamHeaderCanary0123456789abcdefghijklmnop';

let gateway: TestGateway;
let memberKey: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const response = await call(gateway, 'POST', '/v1/teams', { name: 'Header', members: [{ email: 'dev@header.example', role: 'developer' }] });
  const team = (await response.json()) as { members: Array<{ api_key: string }> };
  memberKey = team.members[0]?.api_key ?? '';
});

afterAll(async () => {
  await gateway.stop();
});

test("a member key with another team's X-Team-ID is refused without echoing a secret sent in the header", async () => {
  for (const path of ['/v1/chat/completions', '/v1/usage/me']) {
    const response = await call(
      gateway,
      path === '/v1/usage/me' ? 'GET' : 'POST',
      path,
      path === '/v1/usage/me' ? undefined : { model: 'gpt-4o', messages: [] },
      {
        key: memberKey,
        headers: { 'X-Team-ID': CANARY_PROVIDER_KEY },
      },
    );
    const text = await response.text();
    expect(response.status).toBe(403);
    expect(text).toContain('permission_denied');
    expect(text).not.toContain(CANARY_PROVIDER_KEY);
    expect(text).not.toContain('TeamHeaderCanary');
  }
});
