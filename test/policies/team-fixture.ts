// A gateway with one team made through POST /v1/teams (the seed's body shape), its member's key, and
// the account's OpenAI key pointing at the simulator: the setting of the budget and approval tests.

import type { Clock } from '../../core/clock.ts';
import type { PluginSource } from '../../core/registry.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type PromptCounter, startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

export const OPENAI_KEY = 'sk-proj-PolicyTestsOpenAIKey000000000001';

export interface TeamGateway {
  gateway: TestGateway;
  openai: SimulatorHandle;
  teamId: string;
  memberKey: string;
  adminKey: string;
  stop(): Promise<void>;
}

export async function startTeamGateway(
  byokPermissions: TeamPermissions,
  options: { clock?: Clock; env?: Record<string, string>; extraPlugins?: PluginSource[]; promptTokens?: PromptCounter } = {},
): Promise<TeamGateway> {
  const openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY], promptTokens: options.promptTokens });
  const gateway = await startTestGateway({
    clock: options.clock,
    extraPlugins: options.extraPlugins,
    probes: false,
    logLevel: 'warn',
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, ...options.env },
  });
  const adminKey = gateway.defaultAdminKey;
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
  const response = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Engineering Team',
      byok_permissions: byokPermissions,
      members: [
        { email: 'developer@company.com', role: 'developer', byok_access: true },
        { email: 'lead@company.com', role: 'admin', byok_access: true },
      ],
    },
    { key: adminKey },
  );
  const body = (await response.json()) as { id: string; members: Array<{ role: string; api_key: string }> };
  if (response.status !== 201) throw new Error(`creating the team failed: ${response.status} ${JSON.stringify(body)}`);
  const member = body.members.find((entry) => entry.role === 'developer');
  if (member === undefined) throw new Error('the team has no developer member');
  return {
    gateway,
    openai,
    teamId: body.id,
    memberKey: member.api_key,
    adminKey,
    async stop() {
      await gateway.stop();
      await openai.stop();
    },
  };
}

export interface ErrorBody {
  error: { code: string; message: string; type: string; [extra: string]: unknown };
}
