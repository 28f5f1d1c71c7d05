// A gateway with an OpenAI key on the simulator, a team whose developer's requests above $0.005 wait
// for approval, some usage, one pending approval, and a viewer key: what the dashboard tests look at.

import { existsSync } from 'node:fs';
import { addProviderKeys, call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = !existsSync(CHROMIUM);
export const OPENAI_KEY = 'sk-proj-DashboardTestsOpenAIKey0000000001';
export const SECOND_OPENAI_KEY = 'sk-proj-DashboardTestsOpenAIKey0000000002';

export interface DashboardFixture {
  gateway: TestGateway;
  openai: SimulatorHandle;
  adminKey: string;
  memberKey: string;
  /** The team's admin member: manages its team's members and approvals, nothing of the account. */
  leadKey: string;
  viewerKey: string;
  teamId: string;
  stop(): Promise<void>;
}

async function json<T>(response: Response, status: number): Promise<T> {
  const body = (await response.json()) as T;
  if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** `servedRequests`: how many small requests the developer makes before the one held for approval (3). */
export async function startDashboardFixture(options: { servedRequests?: number } = {}): Promise<DashboardFixture> {
  const openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY, SECOND_OPENAI_KEY] });
  const gateway = await startTestGateway({ probes: false, logLevel: 'warn', env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` } });
  const adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
  const team = await json<{ id: string; members: Array<{ role: string; api_key: string }> }>(
    await call(
      gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Engineering',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } },
        members: [
          { email: 'developer@company.com', role: 'developer', byok_access: true },
          { email: 'lead@company.com', role: 'admin', byok_access: true },
        ],
      },
      { key: adminKey },
    ),
    201,
  );
  const memberKey = team.members.find((member) => member.role === 'developer')?.api_key ?? '';
  const leadKey = team.members.find((member) => member.role === 'admin')?.api_key ?? '';
  const viewer = await json<{ api_key: string }>(await call(gateway, 'POST', '/v1/keys', { name: 'finance viewer', role: 'viewer' }, { key: adminKey }), 201);
  const small = { model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'Say hello.' }] };
  for (let index = 0; index < (options.servedRequests ?? 3); index += 1)
    await json(await call(gateway, 'POST', '/v1/chat/completions', small, { key: memberKey }), 200);
  const held = await call(gateway, 'POST', '/v1/chat/completions', { ...small, max_tokens: 1000 }, { key: memberKey });
  if (held.status !== 403) throw new Error(`the big request was not held: ${held.status}`);
  await flushUsage(gateway);
  return {
    gateway,
    openai,
    adminKey,
    memberKey,
    leadKey,
    viewerKey: viewer.api_key,
    teamId: team.id,
    async stop() {
      await gateway.stop();
      await openai.stop();
    },
  };
}
