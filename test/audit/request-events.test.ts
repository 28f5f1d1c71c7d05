// Request events read from the usage rows: no second row per request, the same answer field for field,
// one newest-first order and keyset pagination across the audit table and the usage rows (ties at one
// instant included), account isolation, the audit retention applied to the usage rows' events, the
// fingerprint only when asked, and no prompt or key anywhere.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { usageRecord } from '../helpers/usage-record.ts';
import { readAllEvents, type AuditEvent, type AuditPage } from './helpers.ts';

const PROVIDER_KEY = 'sk-proj-AUDITxUSAGExPROVIDERxKEY0123456789abcd';
const PROMPT = 'the merger closes on friday: canary 9137';
const DAY_MS = 86_400_000;
/** Every event of these tests: the clock moves forward by days, never back. */
const ALL_TIME = 'start=2020-01-01&end=2100-01-01';

let simulator: SimulatorHandle;
let gateway: TestGateway;
let offset = 0;
const answers: string[] = [];

function chat(requestId: string, key?: string, content = PROMPT): Promise<Response> {
  return call(
    gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', messages: [{ role: 'user', content }] },
    { key, headers: { 'x-request-id': requestId } },
  );
}

async function putCompliance(block: Record<string, unknown>, key?: string): Promise<void> {
  expect((await call(gateway, 'PUT', '/v1/settings/compliance', block, { key })).status).toBe(200);
}

async function events(query: string, key?: string): Promise<AuditEvent[]> {
  await gateway.runtime.usage.flush();
  return readAllEvents(gateway, `${ALL_TIME}&${query}`, key, answers);
}

/** Every page of `limit` events, with the check that each page is full but the last. */
async function paged(query: string, limit: number, key?: string): Promise<AuditEvent[]> {
  const seen: AuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const response = await call(gateway, 'GET', `/v1/audit-logs?${ALL_TIME}&${query}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`, undefined, {
      key,
    });
    const text = await response.text();
    answers.push(text);
    const page = JSON.parse(text) as AuditPage;
    if (page.has_more) expect(page.events.length).toBe(limit);
    seen.push(...page.events);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return seen;
}

function expectNewestFirst(list: AuditEvent[]): void {
  for (let index = 1; index < list.length; index++) {
    const newer = list[index - 1] as AuditEvent;
    const older = list[index] as AuditEvent;
    expect(newer.occurred_at > older.occurred_at || (newer.occurred_at === older.occurred_at && newer.id > older.id)).toBe(true);
  }
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  gateway = await startTestGateway({ probes: false, clock: { now: () => Date.now() + offset }, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` } });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('request events from the usage rows', () => {
  test('no second row: the usage row is marked and the answer has every field of a request event', async () => {
    await putCompliance({ audit_logging: 'all_requests' });
    const response = await chat('req_usage_shape');
    expect(response.status).toBe(200);
    const keyId = response.headers.get('x-key-id');
    const [event, ...others] = (await events('type=request')).filter((candidate) => candidate.request_id === 'req_usage_shape');
    expect(others).toEqual([]);
    expect(event).toEqual({
      id: expect.stringMatching(/^aud_u\d{15}$/),
      object: 'audit_event',
      type: 'request',
      occurred_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      account_id: 'default',
      request_id: 'req_usage_shape',
      actor: { key_id: 'key_operator', role: 'operator', team_id: null },
      ip: '127.0.0.1',
      action: 'request.chat',
      target: { endpoint: 'chat', model: 'gpt-4o' },
      status: 200,
      endpoint: 'chat',
      requested_model: 'gpt-4o',
      provider: 'openai',
      model: 'gpt-4o',
      provider_key_id: keyId,
      byok: true,
      error_code: null,
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
      cached_input_tokens: 0,
      reasoning_tokens: 0,
      cost_usd: expect.any(Number),
      latency_ms: expect.any(Number),
      streamed: false,
      fallback_attempts: 0,
      team_id: null,
      project: null,
    });
    expect(Number.isInteger(event?.latency_ms)).toBe(true);
    expect(await gateway.runtime.store.query(`SELECT COUNT(*) AS count FROM audit_events WHERE type = 'request'`)).toEqual([{ count: 0 }]);
    const rows = await gateway.runtime.store.listUsage('default');
    const row = rows.find((candidate) => candidate.requestId === 'req_usage_shape');
    expect({ audited: row?.audited, ip: row?.clientIp, role: row?.actorRole, fingerprint: row?.requestSha256 }).toEqual({
      audited: true,
      ip: '127.0.0.1',
      role: 'operator',
      fingerprint: null,
    });
  });

  test('an unaudited request keeps no IP, role or fingerprint in its usage row, and is no event', async () => {
    await putCompliance({ audit_logging: 'admin_actions' });
    expect((await chat('req_usage_unaudited')).status).toBe(200);
    expect((await events('type=request')).some((event) => event.request_id === 'req_usage_unaudited')).toBe(false);
    const row = (await gateway.runtime.store.listUsage('default')).find((candidate) => candidate.requestId === 'req_usage_unaudited');
    expect({ audited: row?.audited, ip: row?.clientIp, role: row?.actorRole, fingerprint: row?.requestSha256 }).toEqual({
      audited: false,
      ip: null,
      role: null,
      fingerprint: null,
    });
  });

  test('the fingerprint is there when asked: the same body gives the same one, another body another', async () => {
    await putCompliance({ audit_logging: 'all_requests', log_all_requests: true });
    await chat('req_print_a');
    await chat('req_print_b');
    await chat('req_print_c', undefined, 'another question');
    const byId = new Map((await events('type=request')).map((event) => [event.request_id, event]));
    const [first, second, third] = ['req_print_a', 'req_print_b', 'req_print_c'].map((id) => byId.get(id)?.request_sha256);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(second).toBe(first as string);
    expect(third).toMatch(/^[0-9a-f]{64}$/);
    expect(third).not.toBe(first as string);
    expect(byId.get('req_usage_shape')).not.toHaveProperty('request_sha256');
  });

  test('the fingerprint is the SHA-256 of the body bytes as sent, which the client can compute itself', async () => {
    await putCompliance({ audit_logging: 'all_requests', log_all_requests: true });
    // Key order, spacing and a non-ASCII character a re-serialisation of the parsed request would not keep.
    const sent = '{ "messages": [ {"content": "the réunion moves to 10:00", "role": "user"} ],\n  "model": "gpt-4o" }';
    const response = await call(gateway, 'POST', '/v1/chat/completions', sent, { headers: { 'x-request-id': 'req_print_bytes' } });
    expect(response.status).toBe(200);
    const event = (await events('type=request')).find((candidate) => candidate.request_id === 'req_print_bytes');
    expect(event?.request_sha256).toBe(new Bun.CryptoHasher('sha256').update(new TextEncoder().encode(sent)).digest('hex'));
    expect(event?.request_sha256).not.toBe(Bun.SHA256.hash(JSON.stringify(JSON.parse(sent)), 'hex'));
    // Refused before the call stage (no such model): fingerprinted by the account hook, the same way.
    const refusedText = sent.replace('gpt-4o', 'no-such-model-anywhere');
    const refused = await call(gateway, 'POST', '/v1/chat/completions', refusedText, { headers: { 'x-request-id': 'req_print_refused' } });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    const refusedEvent = (await events('type=request')).find((candidate) => candidate.request_id === 'req_print_refused');
    expect(refusedEvent?.request_sha256).toBe(Bun.SHA256.hash(refusedText, 'hex'));
  });
});

describe('one log from two sources', () => {
  test('admin events, request events and a request event of an older release page as one newest-first list', async () => {
    await putCompliance({ audit_logging: 'all_requests' });
    for (let index = 0; index < 4; index++) {
      await call(gateway, 'POST', '/v1/keys', { name: `merge ${index}`, role: 'viewer' });
      await chat(`req_merge_${index}`);
    }
    // A request event written by an older release, at the very instant of a usage row's: the tie is broken the same way on every page.
    const newest = (await events('type=request'))[0] as AuditEvent;
    await gateway.runtime.store.execute(
      `INSERT INTO audit_events (id, account_id, type, occurred_at, request_id, actor_key_id, actor_role, actor_team_id, client_ip, action, target, status, details)
       VALUES (?, 'default', 'request', ?, 'req_legacy', 'key_operator', 'operator', NULL, '127.0.0.1', 'request.chat', ?, 200, ?)`,
      [
        'aud_0zzzzzzzz000001legacyxx',
        newest.occurred_at,
        JSON.stringify({ endpoint: 'chat', model: 'gpt-4o' }),
        JSON.stringify({ endpoint: 'chat', streamed: false }),
      ],
    );
    const all = await events('');
    expectNewestFirst(all);
    expect(new Set(all.map((event) => event.id)).size).toBe(all.length);
    expect(new Set(all.map((event) => event.type))).toEqual(new Set(['admin', 'request']));
    const legacy = all.findIndex((event) => event.request_id === 'req_legacy');
    expect(all[legacy - 1]?.id).toBe(newest.id);
    for (const limit of [1, 2, 3, 7]) expect((await paged('', limit)).map((event) => event.id)).toEqual(all.map((event) => event.id));
    const requests = await events('type=request');
    expect(requests.map((event) => event.id)).toEqual(all.filter((event) => event.type === 'request').map((event) => event.id));
    expect((await paged('type=request', 2)).map((event) => event.id)).toEqual(requests.map((event) => event.id));
    expect((await events('type=admin')).every((event) => event.type === 'admin')).toBe(true);
    expect((await events('type=key_access')).length).toBe(0);
  });

  test('an event that arrives after a page was read is not in the pages that follow it', async () => {
    const first = (await (await call(gateway, 'GET', `/v1/audit-logs?${ALL_TIME}&type=request&limit=2`)).json()) as AuditPage;
    await chat('req_late');
    await gateway.runtime.usage.flush();
    const rest = await readAllEvents(gateway, `${ALL_TIME}&type=request&cursor=${first.next_cursor}`);
    expect(rest.some((event) => event.request_id === 'req_late')).toBe(false);
    expect([...first.events, ...rest].length).toBe((await events('type=request')).length - 1);
  });

  test('account isolation: an admin reads its own request events; the operator every account, or one', async () => {
    const created = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'Audited elsewhere' })).json()) as {
      id: string;
      admin_key: { api_key: string };
    };
    const otherKey = created.admin_key.api_key;
    await putCompliance({ audit_logging: 'all_requests' }, otherKey);
    // No provider key in that account: the request fails, and is booked and audited all the same.
    await chat('req_other_account', otherKey);
    const own = await events('type=request', otherKey);
    expect(own.map((event) => [event.request_id, event.account_id])).toEqual([['req_other_account', created.id]]);
    expect((await events('type=request', gateway.defaultAdminKey)).every((event) => event.account_id === 'default')).toBe(true);
    const chosen = await events(`type=request&account_id=${created.id}`, OPERATOR_KEY);
    expect(chosen.map((event) => event.id)).toEqual(own.map((event) => event.id));
    await chat('req_default_after_other');
    const everything = await events('type=request', OPERATOR_KEY);
    expect(new Set(everything.map((event) => event.account_id))).toEqual(new Set(['default', created.id]));
    // The operator's view merges each account's newest: one newest-first list, the accounts interleaved
    // by time, paged in twos without a repeat or a gap.
    const ownDefault = await events('type=request', gateway.defaultAdminKey);
    expect(everything.length).toBe(ownDefault.length + own.length);
    expect(everything.slice(0, 2).map((event) => event.request_id)).toEqual(['req_default_after_other', 'req_other_account']);
    const newestFirst = (left: AuditEvent, right: AuditEvent) =>
      left.occurred_at === right.occurred_at ? (left.id < right.id ? 1 : -1) : left.occurred_at < right.occurred_at ? 1 : -1;
    expect(everything.map((event) => event.id)).toEqual([...everything].sort(newestFirst).map((event) => event.id));
    expect((await paged('type=request', 2, OPERATOR_KEY)).map((event) => event.id)).toEqual(everything.map((event) => event.id));
    expect(await events('account_id=platform', OPERATOR_KEY)).not.toContainEqual(expect.objectContaining({ type: 'request' }));
  });

  test('past the account audit retention an audited usage row is no event, though the row stays', async () => {
    const before = await events('type=request', OPERATOR_KEY);
    const otherAccount = before.find((event) => event.account_id !== 'default')?.account_id as string;
    expect(before.filter((event) => event.account_id === 'default').length).toBeGreaterThan(5);
    await putCompliance({ audit_logging: 'all_requests', audit_retention_days: 2 });
    offset += 3 * DAY_MS;
    // Usage rows keep real time, three days behind this clock now: a row booked at the clock's time stands for a newer request.
    await gateway.runtime.store.insertUsage([
      usageRecord({
        requestId: 'req_after_retention',
        createdAt: new Date(Date.now() + offset).toISOString(),
        audited: true,
        clientIp: '10.0.0.1',
        actorRole: 'admin',
      }),
    ]);
    await gateway.runtime.plugins.jobs.find((entry) => entry.value.name === 'audit-retention')?.value.run();
    const kept = await events('type=request', OPERATOR_KEY);
    // The default account keeps two days; the other account the default 365.
    expect(kept.filter((event) => event.account_id === 'default').map((event) => event.request_id)).toEqual(['req_after_retention']);
    expect(kept.filter((event) => event.account_id === otherAccount).map((event) => event.request_id)).toEqual(['req_other_account']);
    expect((await events('type=request', gateway.defaultAdminKey)).map((event) => [event.request_id, event.ip])).toEqual([['req_after_retention', '10.0.0.1']]);
    const rows = await gateway.runtime.store.listUsage('default');
    expect(rows.some((row) => row.requestId === 'req_usage_shape' && row.audited === true)).toBe(true);
  });

  test('no prompt, provider key or gateway key in any answer or usage row', async () => {
    const rows = JSON.stringify([...(await gateway.runtime.store.listUsage('default'))]);
    expect(answers.length).toBeGreaterThan(10);
    for (const text of [...answers, rows]) {
      for (const secret of [PROMPT, 'canary 9137', PROVIDER_KEY, OPERATOR_KEY, gateway.defaultAdminKey]) expect(text).not.toContain(secret);
    }
  });
});
