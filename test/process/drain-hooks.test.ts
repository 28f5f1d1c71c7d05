// The shutdown drain ends a request parked in a plugin's hook too (core/lifecycle/drain.ts). Before,
// only a request waiting for its upstream was ended: a re-send waiting for its approval's decision
// (`Prefer: wait=60`) was left to wait its minute through SIGTERM, the drain deadline and a second
// signal, and a third-party hook that waits kept the shutdown waiting as long as it did. Now the
// approval's wait ends as the shutdown begins (a person's decision: the drain time would only
// prolong the stop), any other hook's wait at the drain deadline or at a second signal, each with
// the spec's 503 `not_ready` and `Retry-After: 1`; the approval stays pending.

import { Database } from 'bun:sqlite';
import { expect, test } from 'bun:test';
import { join, resolve } from 'node:path';
import { drainSuite, endedBySecondSignal, expectCleanExit, expectEndedAtDeadline, expectRetryable, timedAnswer, type DrainAnswer } from './drain-helpers.ts';
import { bookedRows, logLines, onlyRowOf, printedKeys, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-DrainHooksUpstreamKey000000000001';
const OPERATOR_KEY = 'kw_op_DrainHooksOperatorKey0123456789abcde';
const WAITING_HOOK_PLUGIN = resolve(import.meta.dir, 'fixtures/waiting-hook-plugin.ts');
/** Far longer than any drain here: only the drain can end the hook's wait in time. */
const HOOK_WAIT_MS = 30_000;

const suite = drainSuite({ upstreamKey: UPSTREAM_KEY, operatorKey: OPERATOR_KEY, env: { KEYWAY_PLUGINS: WAITING_HOOK_PLUGIN, KEYWAY_LOG_LEVEL: 'info' } });

function post(url: string, path: string, key: string, body: unknown, headers: Record<string, string> = {}): Promise<DrainAnswer> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  }).then(timedAnswer);
}

/** A chat call the waiting-hook plugin holds in its `call` hook for HOOK_WAIT_MS, once the hook has it (wrapped: an async function would await it). */
async function heldInHook(url: string): Promise<{ answer: Promise<DrainAnswer> }> {
  const answer = post(
    url,
    '/v1/chat/completions',
    OPERATOR_KEY,
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'held by a plugin' }] },
    {
      'x-test-hook-wait': String(HOOK_WAIT_MS),
    },
  );
  // The hook runs once the body is read and parsed: a moment after the request is sent.
  await Bun.sleep(500);
  return { answer };
}

function saw(gateway: GatewayProcess, message: string): boolean {
  return logLines(gateway.stdout()).some((line) => line.msg === message);
}

test('a third-party hook that waits and ignores the shutdown is ended at the drain deadline, 503 not_ready, and the process exits', async () => {
  const deadlineMs = 800;
  await suite.withGateway('drain-hook-deadline', deadlineMs, async (gateway, directory) => {
    const upstreamBefore = suite.simulator.inferenceRequests().length;
    const { answer: answering } = await heldInHook(gateway.url);
    const answer = await expectEndedAtDeadline(
      gateway,
      answering,
      deadlineMs,
      /ended at the drain deadline \(KEYWAY_DRAIN_TIMEOUT_MS\) before its answer came/,
    );
    // The plugin was told of both moments (services.shutdown), and the upstream was never called.
    expect(saw(gateway, 'waiting-hook saw the drain begin')).toBe(true);
    expect(saw(gateway, 'waiting-hook saw the drain end')).toBe(true);
    expect(suite.simulator.inferenceRequests().length).toBe(upstreamBefore);
    // Booked once, as the 503 it was, with nothing to estimate: no upstream read its prompt.
    const row = onlyRowOf(bookedRows(directory), answer.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 503, error_code: 'not_ready', usage_estimated: 0, cost_usd: 0 });
  });
}, 60_000);

test('a second signal ends a request waiting in a hook at once', async () => {
  await suite.withGateway('drain-hook-signal', 60_000, async (gateway) => {
    const { answer: answering } = await heldInHook(gateway.url);
    const { secondAt } = await endedBySecondSignal(gateway, answering);
    await expectCleanExit(gateway, secondAt, 3_000);
  });
}, 60_000);

/** A team whose OpenAI requests above $0.005 need an approval; its developer member's key. */
async function teamMemberKey(gateway: GatewayProcess): Promise<string> {
  const adminKey = printedKeys(gateway.stdout()).defaultAdminKey ?? '';
  const created = await post(gateway.url, '/v1/teams', adminKey, {
    name: 'Drain Team',
    byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } },
    members: [
      { email: 'developer@company.com', role: 'developer', byok_access: true },
      { email: 'lead@company.com', role: 'admin', byok_access: true },
    ],
  });
  expect(created.status).toBe(201);
  const members = (created.body as unknown as { members: Array<{ role: string; api_key: string }> }).members;
  return members.find((member) => member.role === 'developer')?.api_key ?? '';
}

function approvalStatus(directory: string, id: string): unknown {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return (database.query('SELECT status FROM approvals WHERE id = ?').get(id) as { status: string } | null)?.status;
  } finally {
    database.close();
  }
}

test("a re-send waiting for its approval's decision (Prefer: wait) is answered 503 as the shutdown begins, and the approval stays pending", async () => {
  // Long: the approval's wait must end at the shutdown's start, not here.
  const deadlineMs = 20_000;
  await suite.withGateway('drain-hook-approval', deadlineMs, async (gateway, directory) => {
    const memberKey = await teamMemberKey(gateway);
    // gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
    const body = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };
    const asked = await post(gateway.url, '/v1/chat/completions', memberKey, body);
    expect(asked.status).toBe(403);
    const id = String(asked.body.error?.approval_id);
    const waiting = post(gateway.url, '/v1/chat/completions', memberKey, body, { 'x-approval-id': id, prefer: 'wait=60' });
    await Bun.sleep(500);
    const signalledAt = performance.now();
    gateway.process.kill('SIGTERM');
    const answer = await waiting;
    expect(answer.at - signalledAt).toBeLessThan(2_000);
    expectRetryable(answer, /ended as the shutdown began/);
    await expectCleanExit(gateway, signalledAt, 4_000);
    // Nothing decided, nothing redeemed: the client's re-send finds it pending wherever it lands.
    expect(approvalStatus(directory, id)).toBe('pending');
  });
}, 60_000);
