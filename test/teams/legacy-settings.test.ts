// A team stored by an older release may hold list entries today's grammar refuses (an allowed_ips entry
// with a zone id, an mcp_servers entry that is not a URL pattern): it must stay editable, and keep those
// entries, while what a PATCH itself sets is held to today's grammar.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;
let teamId: string;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false });
  const created = await call(gateway, 'POST', '/v1/teams', { name: 'legacy' }, { key: gateway.defaultAdminKey });
  expect(created.status).toBe(201);
  teamId = ((await created.json()) as { id: string }).id;
  // What an older release stored without a word: both entries are refused when written today.
  const legacy = {
    allowed_ips: ['fe80::1%eth0'],
    providers: { openai: { enabled: true, models: ['gpt-4o-mini', 'gpt-4o\n'] } },
    hosted_tools: { web_search: false, mcp_servers: ['mcp.example.com'] },
    usage_controls: { require_project_tag: true, allowed_projects: ['project-a', 'pk-analytics-2024', 'projet-é'] },
  };
  await gateway.runtime.services.store.execute('UPDATE teams SET permissions = ? WHERE id = ?', [JSON.stringify(legacy), teamId]);
  await gateway.runtime.services.snapshot.refresh();
});

afterAll(async () => {
  await gateway.stop();
});

const patch = (body: unknown) => call(gateway, 'PATCH', `/v1/teams/${teamId}`, body, { key: gateway.defaultAdminKey });

test('a rename and a budget change go through, and the stored lists are kept as they were', async () => {
  const renamed = await patch({ name: 'renamed', byok_permissions: { providers: { openai: { max_cost_per_day: 5 } } } });
  expect(renamed.status).toBe(200);
  const team = (await renamed.json()) as { name: string; allowed_ips?: string[]; hosted_tools?: { mcp_servers?: string[] } };
  expect(team.name).toBe('renamed');
  expect(team.allowed_ips).toEqual(['fe80::1%eth0']);
  expect(team.hosted_tools?.mcp_servers).toEqual(['mcp.example.com']);
  const permissions = (team as { byok_permissions?: { usage_controls?: unknown; providers?: Record<string, unknown> } }).byok_permissions;
  expect(permissions?.usage_controls).toEqual({
    require_project_tag: true,
    allowed_projects: ['project-a', 'pk-analytics-2024', 'projet-é'],
  });
  expect(permissions?.providers?.openai).toEqual({ enabled: true, models: ['gpt-4o-mini', 'gpt-4o\n'], max_cost_per_day: 5 });
});

test('a key-shaped project is refused when written: no request could name it', async () => {
  const body = { byok_permissions: { usage_controls: { allowed_projects: ['project-b', 'sk-proj-NotAProjectButAKey0001'] } } };
  await expectSpecError(await patch(body), 400, 'invalid_field');
  await expectSpecError(await call(gateway, 'POST', '/v1/teams', { name: 'tagged', ...body }, { key: gateway.defaultAdminKey }), 400, 'invalid_field');
  const fine = await patch({ byok_permissions: { usage_controls: { allowed_projects: ['project-b'] } } });
  expect(fine.status).toBe(200);
});

test('a list the patch sets is held to the grammar of the day, and a refused patch changes nothing', async () => {
  await expectSpecError(await patch({ allowed_ips: ['10.0.0.1', 'fe80::2%eth1'] }), 400, 'invalid_field');
  await expectSpecError(await patch({ hosted_tools: { mcp_servers: ['not a url'] } }), 400, 'invalid_field');
  await expectSpecError(await patch({ byok_permissions: { providers: { openai: { models: ['gpt-4o\t'] } } } }), 400, 'invalid_field');
  const fixed = await patch({ allowed_ips: ['10.0.0.0/8'], hosted_tools: { mcp_servers: ['https://mcp.example.com/*'] } });
  expect(fixed.status).toBe(200);
  const team = (await fixed.json()) as { allowed_ips?: string[]; hosted_tools?: { mcp_servers?: string[] } };
  expect(team.allowed_ips).toEqual(['10.0.0.0/8']);
  expect(team.hosted_tools?.mcp_servers).toEqual(['https://mcp.example.com/*']);
});
