// KEYWAY_WORKERS=2: the same request needing approval, sent by the same key over fresh connections at
// once (the kernel hands them to either worker), asks for one approval. QA18: each worker found none
// pending and stored its own (and paged the admins for it). The store's unique index on pending
// approvals (approvals migration `0003_pending_once`) now decides, whichever worker asks: every answer
// is 403 approval_required naming the one approval, and one approval_pending alert event is recorded.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { freshAnswer, startTwoWorkers, until, type GatewayProcess, type WorkerAnswer } from './process-helpers.ts';

const OPENAI_KEY = 'sk-proj-WorkersApprovalsOpenAIKey0000000001';
const OPERATOR_KEY = 'kw_op_WorkersApprovalsOperator0123456789abc';
// The window between two workers' look and insert is narrow: before the fix, rounds 2 to 7 of 40 raced (4 runs of 4).
const ROUNDS = 40;
const AT_ONCE = 24;
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const bodyOf = (round: number) => ({
  model: 'gpt-4o',
  max_tokens: 1000,
  messages: [{ role: 'user', content: `Summarise the quarterly report, part ${round}.` }],
});

let openai: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';
let memberKey = '';

const send = (key: string, method: string, path: string, body?: unknown): Promise<WorkerAnswer> => freshAnswer(`${gateway.url}${path}`, key, method, body);

/** What the embedded database holds, read from its file: pending approvals and approval_pending alert events. */
function stored(): { pending: string[]; alerted: string[] } {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    const pending = database.query("SELECT id FROM approvals WHERE status = 'pending' ORDER BY id").all() as Array<{ id: string }>;
    const alerted = database.query("SELECT subject FROM alert_events WHERE type = 'approval_pending' ORDER BY subject").all() as Array<{ subject: string }>;
    return { pending: pending.map((row) => row.id), alerted: alerted.map((row) => row.subject) };
  } finally {
    database.close();
  }
}

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-workers-approvals', { operatorKey: OPERATOR_KEY, upstreams: { openai: openai.url } }));
  expect((await send(adminKey, 'POST', '/v1/providers/keys', { providers: [{ name: 'openai', api_key: OPENAI_KEY }] })).status).toBe(201);
  const team = await send(adminKey, 'POST', '/v1/teams', {
    name: 'Engineering Team',
    byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } },
    members: [
      { email: 'developer@company.com', role: 'developer', byok_access: true },
      { email: 'lead@company.com', role: 'admin', byok_access: true },
    ],
  });
  expect(team.status).toBe(201);
  memberKey = String((team.body.members as Array<{ api_key: string }>)[0]?.api_key);
  // The member's key known on both workers before the race starts.
  const known = new Set<string>();
  expect(
    await until(async () => {
      const answer = await send(memberKey, 'GET', '/v1/models');
      if (answer.status === 200) known.add(answer.worker);
      return known.size === 2;
    }, 10_000),
  ).toBe(true);
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  await openai?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('KEYWAY_WORKERS=2: the same request needing approval, sent at once', () => {
  test(`${AT_ONCE} at once, ${ROUNDS} rounds: one pending approval and one alert per round, every answer names it`, async () => {
    const workers = new Set<string>();
    const approvals: string[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const answers = await Promise.all(Array.from({ length: AT_ONCE }, () => send(memberKey, 'POST', '/v1/chat/completions', bodyOf(round))));
      for (const answer of answers) workers.add(answer.worker);
      const errors = answers.map((answer) => answer.body.error as Record<string, unknown>);
      expect(answers.map((answer) => `${answer.status} ${String(errors[answers.indexOf(answer)]?.code)}`)).toEqual(
        Array<string>(AT_ONCE).fill('403 approval_required'),
      );
      const ids = [...new Set(errors.map((error) => String(error.approval_id)))];
      expect({ round, ids: ids.length }).toEqual({ round, ids: 1 });
      approvals.push(ids[0] as string);
    }
    // Both workers took calls: the race was between processes, not only within one.
    expect([...workers].sort()).toEqual(['1', '2']);
    expect(openai.inferenceRequests()).toHaveLength(0);
    const sorted = [...approvals].sort();
    expect(await until(() => stored().alerted.length >= sorted.length, 5_000)).toBe(true);
    await Bun.sleep(300);
    expect(stored()).toEqual({ pending: sorted, alerted: sorted });
  }, 60_000);
});
