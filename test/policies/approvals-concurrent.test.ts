// Identical requests needing approval, sent at the same instant by the same key (QA18): each used to
// find no pending approval, and each stored (and paged the team's admins about) its own; 24 at once
// left up to 24 pending approvals. The store now keeps one pending approval per key, body, provider
// and model (its unique index, approvals migration `0003_pending_once`): every one of the requests is
// answered 403 approval_required with the same approval_id, one approval waits in the list, and the
// admins are paged once. On two instances sharing PostgreSQL (before the fix: up to 22 approvals for
// 24 requests in the first round) and, as a guard, on one gateway on SQLite (whose calls complete
// without yielding, so one process did not race there; several workers did:
// test/process/workers-approvals.test.ts).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { AlertEvent } from '../../core/spec/plugin.ts';
import { addProviderKeys, call, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { createTeamOnEvery, postgresReachable, sharedBackends, startInProcessInstances, type SharedBackends } from '../cluster/instances.ts';
import { OPENAI_KEY, recordingAlertChannel, startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const AT_ONCE = 24;
const THRESHOLD = { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } };
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const bodyOf = (round: number) => ({
  model: 'gpt-4o',
  max_tokens: 1000,
  messages: [{ role: 'user', content: `Summarise the quarterly report, part ${round}.` }],
});

/** The same body sent `AT_ONCE` times at once by `key`, spread over `gateways`: each answer's approval id. */
async function askAtOnce(gateways: readonly TestGateway[], key: string, body: unknown): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: AT_ONCE }, async (_, index) => {
      const response = await call(gateways[index % gateways.length] as TestGateway, 'POST', '/v1/chat/completions', body, { key });
      const { error } = (await response.json()) as ErrorBody;
      return { status: response.status, code: error?.code, id: String(error?.approval_id) };
    }),
  );
  expect(answers.filter((answer) => answer.status !== 403 || answer.code !== 'approval_required')).toEqual([]);
  return answers.map((answer) => answer.id);
}

/** Rows the store holds: pending approvals of the key, and approval_pending alert events. */
async function storedOf(gateway: TestGateway): Promise<{ pending: string[]; alerted: string[] }> {
  const pending = await gateway.runtime.store.query("SELECT id FROM approvals WHERE status = 'pending' ORDER BY id");
  const alerted = await gateway.runtime.store.query("SELECT subject FROM alert_events WHERE type = 'approval_pending' ORDER BY subject");
  return { pending: pending.map((row) => String(row.id)), alerted: alerted.map((row) => String(row.subject)) };
}

describe('one gateway (SQLite)', () => {
  const pages: AlertEvent[] = [];
  let setup: TeamGateway;

  beforeAll(async () => {
    setup = await startTeamGateway(THRESHOLD, { extraPlugins: [{ definition: recordingAlertChannel(pages), source: 'test' }] });
  });

  afterAll(async () => {
    await setup.stop();
  });

  test(`${AT_ONCE} identical requests at once: one approval, one page, every answer names it, 3 rounds`, async () => {
    const approvals: string[] = [];
    for (let round = 0; round < 3; round += 1) {
      const ids = await askAtOnce([setup.gateway], setup.memberKey, bodyOf(round));
      const id = ids[0] as string;
      expect(id).toStartWith('apr');
      expect({ round, distinct: [...new Set(ids)] }).toEqual({ round, distinct: [id] });
      approvals.push(id);
    }
    expect(setup.openai.inferenceRequests()).toHaveLength(0);
    const listed = (await (await call(setup.gateway, 'GET', '/v1/approvals?status=pending', undefined, { key: setup.adminKey })).json()) as {
      approvals: Array<{ id: string }>;
    };
    expect(listed.approvals.map((approval) => approval.id).sort()).toEqual([...approvals].sort());
    await Bun.sleep(300);
    expect((await storedOf(setup.gateway)).alerted).toEqual([...approvals].sort());
    expect(
      pages
        .filter((page) => page.type === 'approval_pending')
        .map((page) => String(page.subject))
        .sort(),
    ).toEqual([...approvals].sort());

    // Once decided, the same body asks anew: the index holds pending approvals only.
    const first = approvals[0] as string;
    expect((await call(setup.gateway, 'POST', `/v1/approvals/${first}/deny`, undefined, { key: setup.adminKey })).status).toBe(200);
    const again = await askAtOnce([setup.gateway], setup.memberKey, bodyOf(0));
    expect(new Set(again).size).toBe(1);
    expect(again[0]).not.toBe(first);
  }, 30_000);
});

const reachable = await postgresReachable();

describe.skipIf(!reachable)('two instances on one PostgreSQL database', () => {
  let backends: SharedBackends;
  let openai: SimulatorHandle;
  let instances: TestGateway[] = [];
  let memberKey = '';

  beforeAll(async () => {
    backends = await sharedBackends();
    openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
    instances = await startInProcessInstances(backends, 2, { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` });
    const adminKey = (instances[0] as TestGateway).defaultAdminKey;
    await addProviderKeys(instances[0] as TestGateway, [{ name: 'openai', api_key: OPENAI_KEY }], adminKey);
    ({ memberKey } = await createTeamOnEvery(instances, adminKey, {
      name: 'Engineering Team',
      byok_permissions: THRESHOLD,
      members: [
        { email: 'developer@company.com', role: 'developer', byok_access: true },
        { email: 'lead@company.com', role: 'admin', byok_access: true },
      ],
    }));
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await openai?.stop();
    await backends?.remove();
  });

  test(`${AT_ONCE} identical requests at once across both: one approval, one alert, 3 rounds`, async () => {
    const approvals: string[] = [];
    for (let round = 0; round < 3; round += 1) {
      const ids = await askAtOnce(instances, memberKey, bodyOf(round));
      expect({ round, distinct: [...new Set(ids)] }).toEqual({ round, distinct: [ids[0] as string] });
      approvals.push(ids[0] as string);
    }
    await Bun.sleep(300);
    expect(await storedOf(instances[0] as TestGateway)).toEqual({ pending: [...approvals].sort(), alerted: [...approvals].sort() });
  }, 60_000);
});
