// The audit log's other halves and its reading: key access logs on and off, request metadata under
// `all_requests` (never the prompt) and none under `admin_actions`, period and cursor paging, account
// isolation, and retention.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';
import { readAllEvents, type AuditEvent, type AuditPage } from './helpers.ts';

const PROVIDER_KEY = 'sk-proj-AUDITxLOGxPROVIDERxKEY0123456789abcdef';
const PROMPT = 'the quarterly numbers are confidential: 4242';
const DAY_MS = 86_400_000;

let simulator: SimulatorHandle;
let gateway: TestGateway;
let now = Date.parse('2026-06-15T12:00:00.000Z');

function chat(key?: string, headers: Record<string, string> = {}): Promise<Response> {
  return call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: PROMPT }] }, { key, headers });
}

async function putCompliance(block: Record<string, unknown>, key?: string): Promise<Response> {
  return call(gateway, 'PUT', '/v1/settings/compliance', block, { key });
}

/**
 * Request events carry their usage row's time, which is the real clock's (usage rows keep real time),
 * while this gateway's clock stands in June 2026: they are read in a period around the real now.
 */
function aroundRealNow(): string {
  return `start=${new Date(Date.now() - DAY_MS).toISOString()}&end=${new Date(Date.now() + DAY_MS).toISOString()}`;
}

async function flushed(): Promise<void> {
  await gateway.runtime.usage.flush();
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  gateway = await startTestGateway({ probes: false, clock: { now: () => now }, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('key access logs', () => {
  test('off by default: a served request leaves no key access event', async () => {
    const response = await chat();
    expect(response.status).toBe(200);
    await flushed();
    expect(await readAllEvents(gateway, 'type=key_access')).toEqual([]);
  });

  test('on: every use of a provider key, with key, principal, request, model and outcome', async () => {
    expect((await putCompliance({ key_access_logs: true })).status).toBe(200);
    const response = await chat(undefined, { 'x-request-id': 'req_key_access_1' });
    expect(response.status).toBe(200);
    const keyId = response.headers.get('x-key-id');
    await flushed();
    const events = await readAllEvents(gateway, 'type=key_access');
    // One use; the decryption this request caused (a cache miss after the settings changed) is its own event.
    const mine = events.filter((event) => event.request_id === 'req_key_access_1' && event.action === 'provider_key.use');
    expect(mine.length).toBe(1);
    const served = mine.find((event) => event.outcome === 'served') as AuditEvent;
    expect(served).toBeDefined();
    expect(served.target).toEqual({ key_id: keyId, provider: 'openai' });
    expect({ principal: served.principal_key_id, actor: served.actor.key_id, role: served.actor.role, model: served.model, ip: served.ip }).toEqual({
      principal: 'key_operator',
      actor: 'key_operator',
      role: 'operator',
      model: 'gpt-4o',
      ip: '127.0.0.1',
    });
    expect(JSON.stringify(events)).not.toContain(PROVIDER_KEY);
  });

  test('a failed attempt is a use of the key too, with its reason', async () => {
    simulator.inject({ kind: 'server_error' });
    const response = await chat(undefined, { 'x-request-id': 'req_key_access_failed' });
    expect(response.status).toBe(502);
    await flushed();
    const mine = (await readAllEvents(gateway, 'type=key_access')).filter(
      (event) => event.request_id === 'req_key_access_failed' && event.action === 'provider_key.use',
    );
    expect(mine.map((event) => ({ outcome: event.outcome, status: event.status, provider: event.provider }))).toEqual([
      { outcome: 'server_error', status: 500, provider: 'openai' },
    ]);
  });
});

describe('request metadata', () => {
  test('none under admin_actions', async () => {
    expect((await putCompliance({ audit_logging: 'admin_actions' })).status).toBe(200);
    await chat();
    await flushed();
    expect(await readAllEvents(gateway, `type=request&${aroundRealNow()}`)).toEqual([]);
  });

  test('under all_requests: endpoint, model, status, tokens, cost, latency, team, project, IP; never the prompt', async () => {
    expect((await putCompliance({ byok_compliance: { audit_logging: 'all_requests' } })).status).toBe(200);
    const response = await chat(undefined, { 'x-request-id': 'req_metadata_1' });
    expect(response.status).toBe(200);
    await flushed();
    const texts: string[] = [];
    const events = await readAllEvents(gateway, `type=request&${aroundRealNow()}`, undefined, texts);
    const event = events.find((candidate) => candidate.request_id === 'req_metadata_1') as AuditEvent;
    expect(event).toBeDefined();
    expect(event.action).toBe('request.chat');
    expect({ endpoint: event.endpoint, provider: event.provider, model: event.model, status: event.status, ip: event.ip, byok: event.byok }).toEqual({
      endpoint: 'chat',
      provider: 'openai',
      model: 'gpt-4o',
      status: 200,
      ip: '127.0.0.1',
      byok: true,
    });
    expect(event.input_tokens as number).toBeGreaterThan(0);
    expect(event.output_tokens as number).toBeGreaterThan(0);
    expect(event.cost_usd as number).toBeGreaterThan(0);
    expect(event.latency_ms).toBeNumber();
    expect(event).toHaveProperty('team_id', null);
    expect(event).toHaveProperty('project', null);
    expect(event.request_sha256).toBeUndefined();
    for (const text of texts) expect(text).not.toContain('confidential');
  });

  test('log_all_requests adds a fingerprint of the request body, never its text', async () => {
    expect((await putCompliance({ audit_logging: 'all_requests', log_all_requests: true })).status).toBe(200);
    await chat(undefined, { 'x-request-id': 'req_fingerprint_1' });
    await flushed();
    const texts: string[] = [];
    const event = (await readAllEvents(gateway, `type=request&${aroundRealNow()}`, undefined, texts)).find(
      (candidate) => candidate.request_id === 'req_fingerprint_1',
    ) as AuditEvent;
    expect(event.request_sha256).toMatch(/^[0-9a-f]{64}$/);
    for (const text of texts) expect(text).not.toContain('confidential');
  });

  test("a team whose usage_controls say log_all_requests (the seed's team) has its requests logged under admin_actions", async () => {
    expect((await putCompliance({})).status).toBe(200);
    const team = (await (await call(gateway, 'POST', '/v1/teams', { ...SEED_TEAM, name: 'Logged team' })).json()) as { id: string };
    await chat(undefined, { 'x-team-id': team.id, 'x-project-tag': 'project-a', 'x-request-id': 'req_team_logged' });
    await chat(undefined, { 'x-request-id': 'req_not_logged' });
    await flushed();
    const events = await readAllEvents(gateway, `type=request&${aroundRealNow()}`);
    const logged = events.find((event) => event.request_id === 'req_team_logged') as AuditEvent;
    expect(logged).toBeDefined();
    expect({ team: logged.team_id, project: logged.project }).toEqual({ team: team.id, project: 'project-a' });
    expect(logged.request_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(events.some((event) => event.request_id === 'req_not_logged')).toBe(false);
  });
});

describe('reading the log', () => {
  test('cursor pages are stable: no repeats, no gaps, newest first, even while events arrive', async () => {
    for (let index = 0; index < 7; index++) await call(gateway, 'POST', '/v1/keys', { name: `paging ${index}`, role: 'viewer' });
    const all = await readAllEvents(gateway, 'type=admin');
    const first = (await (await call(gateway, 'GET', '/v1/audit-logs?type=admin&limit=3')).json()) as AuditPage;
    expect(first.events.length).toBe(3);
    expect(first.has_more).toBe(true);
    // A new event after the first page is not seen by the pages that follow it.
    await call(gateway, 'POST', '/v1/keys', { name: 'late', role: 'viewer' });
    const paged: AuditEvent[] = [...first.events];
    let cursor = first.next_cursor;
    while (cursor !== null) {
      const page = (await (await call(gateway, 'GET', `/v1/audit-logs?type=admin&limit=3&cursor=${cursor}`)).json()) as AuditPage;
      expect(page.events.length).toBeLessThanOrEqual(3);
      paged.push(...page.events);
      cursor = page.next_cursor;
    }
    expect(paged.map((event) => event.id)).toEqual(all.map((event) => event.id));
    const times = paged.map((event) => event.occurred_at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  test('periods: today and a custom range select by time; a past range is empty', async () => {
    const today = await readAllEvents(gateway, 'period=today&type=admin');
    expect(today.length).toBeGreaterThan(0);
    expect(await readAllEvents(gateway, 'start=2020-01-01&end=2020-02-01')).toEqual([]);
    const range = await readAllEvents(gateway, `type=admin&start=2026-06-15&end=2026-06-16`);
    expect(range.map((event) => event.id)).toEqual(today.map((event) => event.id));
  });

  test('bad queries are 400s in the spec shape', async () => {
    await expectSpecError(await call(gateway, 'GET', '/v1/audit-logs?type=everything'), 400, 'invalid_field');
    await expectSpecError(await call(gateway, 'GET', '/v1/audit-logs?period=forever'), 400, 'invalid_field');
    await expectSpecError(await call(gateway, 'GET', '/v1/audit-logs?cursor=not-a-cursor'), 400, 'invalid_field');
    await expectSpecError(await call(gateway, 'GET', '/v1/audit-logs?limit=0'), 400, 'invalid_field');
  });

  test('account isolation: an admin sees its account; the operator sees all, or one with account_id', async () => {
    const created = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'Isolated' })).json()) as { id: string; admin_key: { api_key: string } };
    const otherKey = created.admin_key.api_key;
    await call(gateway, 'POST', '/v1/keys', { name: 'other account key' }, { key: otherKey });
    const own = await readAllEvents(gateway, 'type=admin', otherKey);
    expect(own.length).toBe(1);
    expect(own[0]?.account_id).toBe(created.id);
    const defaults = await readAllEvents(gateway, 'type=admin', gateway.defaultAdminKey);
    expect(defaults.length).toBeGreaterThan(0);
    expect(defaults.every((event) => event.account_id === 'default')).toBe(true);
    // Creating the account was the operator's action on the platform: no account admin sees it.
    expect(defaults.some((event) => event.action === 'POST /v1/accounts')).toBe(false);
    const platform = await readAllEvents(gateway, 'type=admin&account_id=platform', OPERATOR_KEY);
    expect(platform.map((event) => event.action)).toEqual(['POST /v1/accounts']);
    await expectSpecError(await call(gateway, 'GET', `/v1/audit-logs?account_id=${created.id}`, undefined, { key: gateway.defaultAdminKey }), 404, 'not_found');
    const chosen = await readAllEvents(gateway, `type=admin&account_id=${created.id}`, OPERATOR_KEY);
    expect(chosen.map((event) => event.id)).toEqual(own.map((event) => event.id));
    const everything = await readAllEvents(gateway, 'type=admin', OPERATOR_KEY);
    expect(new Set(everything.map((event) => event.account_id))).toEqual(new Set(['default', created.id, 'platform']));
  });

  test('a team member key may not read the log', async () => {
    const team = (await (await call(gateway, 'POST', '/v1/teams', { ...SEED_TEAM, name: 'Readers' })).json()) as { members: Array<{ api_key: string }> };
    const memberKey = team.members[0]?.api_key as string;
    const response = await call(gateway, 'GET', '/v1/audit-logs', undefined, { key: memberKey });
    expect(response.status).toBe(403);
  });
});

describe('retention', () => {
  test('events older than the account retention are purged by the job; newer ones stay', async () => {
    expect((await putCompliance({ audit_retention_days: 2 })).status).toBe(200);
    await call(gateway, 'POST', '/v1/keys', { name: 'old', role: 'viewer' });
    const before = await readAllEvents(gateway, 'type=admin&start=2026-01-01&end=2027-01-01');
    expect(before.length).toBeGreaterThan(0);
    now += 3 * DAY_MS;
    await call(gateway, 'POST', '/v1/keys', { name: 'new', role: 'viewer' });
    await readAllEvents(gateway, 'type=admin', gateway.defaultAdminKey);
    const job = gateway.runtime.plugins.jobs.find((entry) => entry.value.name === 'audit-retention');
    await job?.value.run();
    // Every audit table event is in June 2026 (this gateway's clock); the request events read from usage
    // rows are at real time and have their own retention test (request-events.test.ts).
    const after = await readAllEvents(gateway, 'start=2026-01-01&end=2026-07-01', gateway.defaultAdminKey);
    expect(after.length).toBe(1);
    expect((after[0]?.after as { name: string }).name).toBe('new');
  });
});
