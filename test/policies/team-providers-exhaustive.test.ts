// A team that lists providers may use those only (QA13): under the seed's account-wide cost_optimized
// routing, the seed team's member asking for gpt-4-turbo-preview was served by Cohere's class member,
// a provider the team never listed, so the team's OpenAI budget and approval threshold did not apply.
// Now no routing leaves the team's providers; a team that lists none still uses every provider.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { SEED_TEAM } from '../helpers/seed-team.ts';
import {
  addAccountKeys,
  call,
  chat,
  errorOf,
  PROVIDERS,
  servedBy,
  startFleet,
  startRoutingGateway,
  type RoutingGateway,
  type SimulatorFleet,
} from '../routing/harness.ts';

let fleet: SimulatorFleet;
let gateway: RoutingGateway;
let memberKey = '';
let teamId = '';
let openMemberKey = '';

async function createTeam(body: unknown): Promise<{ id: string; members: Array<{ api_key: string }> }> {
  const response = await call(gateway, 'POST', '/v1/teams', body);
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; members: Array<{ api_key: string }> };
}

beforeAll(async () => {
  fleet = startFleet('account');
  gateway = await startRoutingGateway({ env: fleet.environment() });
  await addAccountKeys(gateway, fleet, PROVIDERS);
  // The seed's "Cost-Optimized Routing" block, for the whole account.
  const routing = await call(gateway, 'PUT', '/v1/settings/routing', {
    routing: { strategy: 'cost_optimized', prefer_byok: true, cost_weights: { openai: 0.8, anthropic: 1.0 } },
  });
  expect(routing.status).toBe(200);
  const seed = await createTeam({ ...SEED_TEAM, members: SEED_TEAM.members.filter((member) => member.role === 'developer') });
  teamId = seed.id;
  memberKey = seed.members[0]?.api_key ?? '';
  const open = await createTeam({ name: 'Open team', byok_permissions: {}, members: [{ email: 'open@company.com', role: 'developer', byok_access: true }] });
  openMemberKey = open.members[0]?.api_key ?? '';
});

afterAll(async () => {
  await gateway?.stop();
  await fleet?.stop();
});

beforeEach(() => fleet.reset());

describe("a team's providers are the only ones it may use", () => {
  test("the seed's member request under the seed's cost_optimized routing is served by a provider the team lists", async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await chat(gateway, { model: 'gpt-4-turbo-preview' }, { 'X-Team-ID': teamId, 'X-Project-Tag': 'project-a' }, memberKey);
      expect(response.status).toBe(200);
      expect(['openai', 'anthropic']).toContain(servedBy(response).provider as string);
    }
    expect(fleet.upstreamCounts()).toMatchObject({ google: 0, cohere: 0, perplexity: 0 });
  });

  test('a model of a provider the team does not list is 403 provider_not_allowed, before any upstream call', async () => {
    const response = await chat(gateway, { model: 'command-r-plus' }, { 'X-Team-ID': teamId, 'X-Project-Tag': 'project-a' }, memberKey);
    expect(response.status).toBe(403);
    const error = await errorOf(response);
    expect(error.code).toBe('provider_not_allowed');
    expect(error.message).toContain('openai, anthropic');
    expect(fleet.upstreamCounts()).toEqual({ openai: 0, anthropic: 0, google: 0, cohere: 0, perplexity: 0 });
  });

  test('a team that lists no provider uses every provider', async () => {
    const response = await chat(gateway, { model: 'command-r-plus', routing: { strategy: 'direct' } }, {}, openMemberKey);
    expect(response.status).toBe(200);
    expect(servedBy(response).provider).toBe('cohere');
  });
});
