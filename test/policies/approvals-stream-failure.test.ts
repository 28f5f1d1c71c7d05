// An approval is for one request: once an upstream answered (its first byte reached the client) and
// the request was booked, the approval is used, whether the stream then ended well, failed upstream
// mid-way or was cut by the client. It is given back only when no upstream answered (QA qa-teams L2,
// docs/policies.md approvals §4): a stream that failed after the first byte does not re-open it, or one
// approval could be spent again and again, each time billed.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { call, flushUsage } from '../helpers/gateway.ts';
import { startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

let setup: TeamGateway;
// gpt-4o with max_tokens 1000 may cost about $0.01: above the $0.005 threshold.
const BIG = { model: 'gpt-4o', max_tokens: 1000, messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] };

beforeAll(async () => {
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 100, require_approval_above: 0.005 } } });
});

afterAll(async () => {
  await setup.stop();
});

const chat = (body: unknown, approvalId: string | undefined, signal?: AbortSignal) =>
  fetch(`${setup.gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${setup.memberKey}`,
      'content-type': 'application/json',
      ...(approvalId === undefined ? {} : { 'x-approval-id': approvalId }),
    },
    body: JSON.stringify(body),
    signal,
  });

/** Asks for BIG (optionally with another body), has the team's admin approve it, and answers its id. */
async function approved(body: Record<string, unknown> = BIG): Promise<string> {
  const asked = await chat(body, undefined);
  expect(asked.status).toBe(403);
  const id = ((await asked.json()) as ErrorBody).error.approval_id as string;
  expect((await call(setup.gateway, 'POST', `/v1/approvals/${id}/approve`, undefined, { key: setup.adminKey })).status).toBe(200);
  return id;
}

/** The approval's status, once the request's `account` stage (which gives an approval back) has run. */
async function statusOf(id: string): Promise<string> {
  await flushUsage(setup.gateway);
  await Bun.sleep(30);
  const response = await call(setup.gateway, 'GET', '/v1/approvals', undefined, { key: setup.adminKey });
  const approvals = ((await response.json()) as { approvals: Array<{ id: string; status: string }> }).approvals;
  return approvals.find((approval) => approval.id === id)?.status ?? 'missing';
}

async function expectAlreadyUsed(id: string, body: Record<string, unknown>): Promise<void> {
  const again = await chat(body, id);
  expect(again.status).toBe(403);
  expect(((await again.json()) as ErrorBody).error.message).toContain('already used');
}

test('a stream that fails upstream after the first byte keeps its approval used, and the request is booked', async () => {
  const streamed = { ...BIG, stream: true };
  const id = await approved(streamed);
  setup.openai.inject({ kind: 'mid_stream_error', afterChunks: 2 });
  const upstreamBefore = setup.openai.inferenceRequests().length;
  const response = await chat(streamed, id);
  expect(response.status).toBe(200);
  const text = await response.text();
  expect(text).toContain('"content":"');
  expect(text).toContain('"error"');
  expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore + 1);
  expect(await statusOf(id)).toBe('used');
  await expectAlreadyUsed(id, streamed);
  expect(setup.openai.inferenceRequests().length).toBe(upstreamBefore + 1);
  const rows = (await setup.gateway.runtime.store.listUsage('default')).filter((row) => row.teamId === setup.teamId && row.provider === 'openai');
  expect(rows.at(-1)?.costUsd ?? 0).toBeGreaterThan(0);
});

test('a stream the client cuts after the first byte keeps its approval used', async () => {
  const streamed = { ...BIG, stream: true, messages: [{ role: 'user', content: 'Summarise the annual report.' }] };
  const id = await approved(streamed);
  setup.openai.inject({ kind: 'slow_stream', delayMs: 200 });
  const abort = new AbortController();
  const response = await chat(streamed, id, abort.signal);
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  abort.abort();
  await reader.cancel().catch(() => undefined);
  let status = await statusOf(id);
  for (let waited = 0; status !== 'used' && waited < 3_000; waited += 50) status = await statusOf(id);
  expect(status).toBe('used');
  await expectAlreadyUsed(id, streamed);
});

test('a request no upstream answered gives its approval back, and the re-send is served', async () => {
  const body = { ...BIG, messages: [{ role: 'user', content: 'Summarise the weekly report.' }] };
  const id = await approved(body);
  setup.openai.setSticky({ kind: 'server_error' });
  const failed = await chat(body, id);
  setup.openai.setSticky(undefined);
  expect(failed.status).toBeGreaterThanOrEqual(500);
  await failed.text();
  expect(await statusOf(id)).toBe('approved');
  const served = await chat(body, id);
  expect(served.status).toBe(200);
  await served.text();
  expect(await statusOf(id)).toBe('used');
});
