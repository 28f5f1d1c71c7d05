// THE BUDGET RACE: 200+ concurrent requests (streamed and not, some cancelled by the client mid-
// stream) against a daily budget that fits exactly 50 worst cases. Exactly 50 are served, the rest
// are refused 402 before any upstream call, and the settled spend never exceeds the cap.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { budgetKey } from '../../policies/cost-cap/index.ts';
import { utcDay, worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { bookedOpenAIToday, setOpenAIDailyCap, startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const MODEL = 'gpt-4o-mini';
const MAX_TOKENS = 1000;
const FITS = 50;
const REQUESTS = 220;
const messages = [{ role: 'user', content: 'Write one short sentence about budgets.' }];
/** The Retry-After docs/policies.md gives a refusal caused only by this process's in-flight reservations. */
const IN_FLIGHT_RETRY_AFTER_SECONDS = 2;

let setup: TeamGateway;
let worstNanos: number;
let capUsd: number;

beforeAll(async () => {
  // The cap is set after the worst case is known: start with a placeholder, then PATCH the team.
  setup = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 1000 } } });
  const pricing = setup.gateway.runtime.services.pricing;
  const request = { model: MODEL, messages, max_tokens: MAX_TOKENS } as ChatRequest;
  worstNanos = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
  expect(worstNanos).toBeGreaterThan(0);
  // Fifty and a half worst cases: the 51st reservation cannot fit, whatever the rounding.
  capUsd = (FITS * worstNanos + Math.floor(worstNanos / 2)) / 1e9;
  await setOpenAIDailyCap(setup, capUsd);
});

afterAll(async () => {
  await setup.stop();
});

type Outcome = { status: number; kind: 'plain' | 'stream' | 'cancel'; body?: ErrorBody; retryAfter?: string | null; shouldRetry?: string | null };

async function one(index: number): Promise<Outcome> {
  const kind = index % 3 === 0 ? 'plain' : index % 3 === 1 ? 'stream' : 'cancel';
  const controller = new AbortController();
  const response = await fetch(`${setup.gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages, max_tokens: MAX_TOKENS, stream: kind !== 'plain' }),
    signal: controller.signal,
  });
  if (response.status !== 200)
    return {
      status: response.status,
      kind,
      body: (await response.json()) as ErrorBody,
      retryAfter: response.headers.get('retry-after'),
      shouldRetry: response.headers.get('x-should-retry'),
    };
  if (kind === 'cancel') {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => undefined);
    return { status: 200, kind };
  }
  await response.text();
  return { status: 200, kind };
}

describe('the budget race', () => {
  test(`${REQUESTS} concurrent requests against a budget of ${FITS} worst cases: exactly ${FITS} served, the cap never overshot`, async () => {
    // Every upstream answer waits, so all reservations are made before any is settled: the count of
    // served requests is then exactly what the cap holds, not what settling to real costs frees.
    setup.openai.setSticky({ kind: 'delay', delayMs: 1500 });
    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: REQUESTS }, (_, index) => one(index)));
    const elapsed = performance.now() - started;
    setup.openai.setSticky(undefined);

    const served = outcomes.filter((outcome) => outcome.status === 200);
    const refused = outcomes.filter((outcome) => outcome.status === 402);
    expect(served.length).toBe(FITS);
    expect(refused.length).toBe(REQUESTS - FITS);
    expect(outcomes.filter((outcome) => outcome.status !== 200 && outcome.status !== 402)).toEqual([]);
    // Streamed, non-streamed and cancelled requests all took part.
    for (const kind of ['plain', 'stream', 'cancel'] as const) expect(served.some((outcome) => outcome.kind === kind)).toBe(true);

    // The refusal names the budget, the team, the provider, the limit and its reset.
    const day = utcDay(Date.now());
    const resetAt = new Date(day.end).toISOString();
    const first = refused[0] as Outcome;
    expect(first.body?.error.code).toBe('budget_exceeded');
    expect(first.body?.error.type).toBe('budget_exceeded');
    expect(first.body?.error.budget).toBe('max_cost_per_day');
    expect(first.body?.error.team_id).toBe(setup.teamId);
    expect(first.body?.error.provider).toBe('openai');
    expect(first.body?.error.limit_usd).toBe(capUsd);
    expect(first.body?.error.reset_at).toBe(resetAt);
    expect(first.body?.error.message).toContain('Engineering Team');
    expect(first.body?.error.message).toContain(resetAt);
    // Nothing is spent yet: every refusal is caused by the 50 reservations in flight, which settle within
    // seconds, so each is told to retry in seconds (not at midnight), with the budget left untouched.
    for (const refusal of refused) {
      expect(refusal.retryAfter).toBe(String(IN_FLIGHT_RETRY_AFTER_SECONDS));
      expect(refusal.shouldRetry).toBe('true');
      expect(refusal.body?.error.remaining_usd).toBe(capUsd);
      expect(refusal.body?.error.in_flight_usd).toBe((FITS * worstNanos) / 1e9);
      expect(refusal.body?.error.message).toContain('requests in flight on this gateway hold');
    }

    // A refused request reached no upstream: the simulator saw exactly the served ones.
    expect(setup.openai.inferenceRequests().length).toBe(FITS);

    // Everything settles (account runs after each stream's end or cancel), then the books are read.
    await Bun.sleep(300);
    const { requests: booked, costUsd: spent } = await bookedOpenAIToday(setup);
    expect(booked).toBe(FITS);
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(capUsd);
    // The counter holds the settled spend exactly as booked (nano-dollars), never more than the cap.
    const counter = await setup.gateway.runtime.counters.get(budgetKey('default', setup.teamId, 'openai', day.date));
    expect(counter).toBeLessThanOrEqual(Math.round(capUsd * 1e9));
    expect(counter).toBe(Math.round(spent * 1e9));
    console.log(
      `budget race: ${REQUESTS} requests in ${Math.round(elapsed)} ms; worst case ${worstNanos} n$; cap ${capUsd} $; ` +
        `served ${served.length} (${served.filter((o) => o.kind === 'plain').length} plain, ${served.filter((o) => o.kind === 'stream').length} streamed, ` +
        `${served.filter((o) => o.kind === 'cancel').length} cancelled), refused ${refused.length}; settled spend ${spent.toFixed(6)} $ (${((spent / capUsd) * 100).toFixed(1)}% of the cap), counter ${counter} n$`,
    );
  }, 30_000);

  test('once settled below their worst case, the freed budget serves more requests, still never past the cap', async () => {
    const day = utcDay(Date.now());
    const before = await setup.gateway.runtime.counters.get(budgetKey('default', setup.teamId, 'openai', day.date));
    const room = Math.floor((Math.round(capUsd * 1e9) - before) / worstNanos);
    const answers = await Promise.all(Array.from({ length: room + 5 }, (_, index) => one(index * 3)));
    expect(answers.filter((answer) => answer.status === 200).length).toBeGreaterThanOrEqual(room);
    await Bun.sleep(100);
    const after = await setup.gateway.runtime.counters.get(budgetKey('default', setup.teamId, 'openai', day.date));
    expect(after).toBeLessThanOrEqual(Math.round(capUsd * 1e9));
  }, 30_000);
});
