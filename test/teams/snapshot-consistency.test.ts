// A team deleted while another instance's (or this one's) snapshot load is reading: the deletion lands
// after the core read the member keys and before the teams section is read. Loaded by independent
// reads, that snapshot held the member's key, still active, and no team: the key was served for as
// long as the snapshot lived with none of its team's rules (the seed team requires a project tag).
// Read in one transaction (Store.readConsistent), the snapshot is the state before the deletion,
// rules included, and the next one the state after it, the key refused. And the deletion itself is
// several writes: a load landing between two of them must find the team with its rules or no member
// key, so the member keys are revoked before the team is marked deleted.

import { afterAll, afterEach, beforeAll, expect, test } from 'bun:test';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';
import { injectedChange, interceptInPlace } from '../helpers/injected-change.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const OPENAI_KEY = 'sk-proj-SnapshotConsistencyKey000000000000001';
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 3 + 1)).toString('base64');
const hello = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Hello!' }] };

interface Stage {
  gateway: TestGateway;
  team: { id: string; account_id: string; members: Array<{ api_key?: string; key_id: string }> };
  memberKey: string;
  database?: TestDatabase;
}

/** The member's chat call, with no project tag: its team's rules refuse it. */
async function memberCall(stage: Stage): Promise<{ status: number; code: string | undefined }> {
  const response = await call(stage.gateway, 'POST', '/v1/chat/completions', hello, { key: stage.memberKey });
  const body = (await response.json()) as { error?: { code?: string } };
  return { status: response.status, code: body.error?.code };
}

/** Any management write: the snapshot is reloaded after it. */
async function someManagementWrite(stage: Stage, name: string): Promise<void> {
  expect((await call(stage.gateway, 'POST', '/v1/accounts', { name })).status).toBe(201);
}

async function startStage(port: number, database: TestDatabase | undefined): Promise<Stage> {
  const gateway = await startTestGateway({
    probes: false,
    logLevel: 'warn',
    env: {
      KEYWAY_PORT: String(port),
      KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`,
      ...(database === undefined ? {} : { KEYWAY_DATABASE_URL: database.url, KEYWAY_MASTER_KEY: MASTER_KEY }),
    },
  });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }], gateway.defaultAdminKey);
  const created = await call(gateway, 'POST', '/v1/teams', SEED_TEAM, { key: gateway.defaultAdminKey });
  expect(created.status).toBe(201);
  const team = (await created.json()) as Stage['team'];
  return { gateway, team, memberKey: team.members[0]?.api_key ?? '', database };
}

let simulator: SimulatorHandle;
let stage: Stage | undefined;

beforeAll(() => {
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
});

afterEach(async () => {
  await stage?.gateway.stop();
  await stage?.database?.drop();
  stage = undefined;
});

afterAll(async () => {
  await simulator.stop();
});

// Ports the kernel picks (0): a fixed one inside the ephemeral range collided with another test's socket.
const STORES: Array<[string, number, () => Promise<TestDatabase | undefined>]> = [['sqlite', 0, async () => undefined]];
if (await postgresReachable()) STORES.push(['postgres', 0, createTestDatabase]);

/**
 * Before each store write `execute` and `revokeGatewayKey` make from now on, a snapshot load (as
 * another instance's reload could land there) and the member's call: what each state between two
 * writes serves.
 */
function probeBetweenWrites(stage: Stage, seen: Array<{ status: number; code: string | undefined }>): void {
  const store = stage.gateway.runtime.store as unknown as Record<string, (...parameters: unknown[]) => Promise<unknown>>;
  let probing = false;
  for (const name of ['execute', 'revokeGatewayKey']) {
    const original = (store[name] as (...parameters: unknown[]) => Promise<unknown>).bind(store);
    store[name] = async (...parameters) => {
      if (!probing) {
        probing = true;
        try {
          await stage.gateway.runtime.snapshots.catchUp('a load between two writes');
          seen.push(await memberCall(stage));
        } finally {
          probing = false;
        }
      }
      return original(...parameters);
    };
  }
}

for (const [name, port, database] of STORES) {
  test(`${name}: a team deleted mid-load, its member's key is never served without the team's rules`, async () => {
    stage = await startStage(port, await database());
    const current = stage;
    const refusedByTeam = await memberCall(current);
    expect(refusedByTeam).toEqual({ status: 403, code: 'project_tag_required' });

    const store = current.gateway.runtime.store;
    // As DELETE /v1/teams/:id writes it, all of it between the core's tables and the teams section.
    const injected = injectedChange('FROM teams', async () => {
      const now = new Date().toISOString();
      await store.execute('UPDATE teams SET deleted_at = ?, updated_at = ? WHERE id = ?', [now, now, current.team.id]);
      for (const member of current.team.members) await store.revokeGatewayKey(member.key_id, current.team.account_id);
      await store.execute('UPDATE team_members SET removed_at = ? WHERE team_id = ?', [now, current.team.id]);
    });
    interceptInPlace(store, injected);
    const served = simulator.state.requests.length;
    await someManagementWrite(current, 'Reload One');
    expect(injected.armed).toBe(false);
    // The snapshot is the state before the deletion: the key, and its team's rules with it.
    expect(await memberCall(current)).toEqual(refusedByTeam);
    expect(simulator.state.requests.length).toBe(served);

    await someManagementWrite(current, 'Reload Two');
    expect(await memberCall(current)).toMatchObject({ status: 401 });
  });
}

for (const [name, port, database] of STORES) {
  test(`${name}: every state a team deletion passes through serves the member's key with its team's rules, or not at all`, async () => {
    stage = await startStage(port, await database());
    const current = stage;
    const seen: Array<{ status: number; code: string | undefined }> = [];
    probeBetweenWrites(current, seen);
    const deleted = await call(current.gateway, 'DELETE', `/v1/teams/${current.team.id}`, undefined, { key: current.gateway.defaultAdminKey });
    expect(deleted.status).toBe(204);
    seen.push(await memberCall(current));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const answer of seen) expect([403, 401]).toContain(answer.status);
    expect(seen.at(-1)).toMatchObject({ status: 401 });
  });
}
