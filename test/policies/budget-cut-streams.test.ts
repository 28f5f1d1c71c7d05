// Streams cut short near a cap (QA18 multi #1). Near its cap a budget counts the prompt with the
// provider's tokenizer and reserves that count; a stream the client then leaves is booked at an
// estimate. The estimate is built to stay above tokenizers (about 1.6 times English prose), so it used
// to book more than the reservation held: three streams that fitted a $0.06 cap were booked $0.0744.
// Now the estimate of a prompt a budget counted is at most that count, and the cap holds.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { flushUsage } from '../helpers/gateway.ts';
import { leaveStreamAfter } from '../helpers/sse.ts';
import { bookedOpenAIToday, setOpenAIDailyCap, startTokenBilledTeamGateway, type TeamGateway } from './team-fixture.ts';

const MODEL = 'gpt-4o-mini';
const WORDS = ['budget', 'release', 'notes', 'the', 'team', 'gateway', 'provider', 'summarise', 'quarterly', 'report', 'and', 'of'];

/** About 4,000 characters of English-like prose, different each time. */
const prose = (): string => Array.from({ length: 600 }, () => WORDS[Math.floor(Math.random() * WORDS.length)] as string).join(' ');
const requestFor = (content: string): ChatRequest => ({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 20, stream: true });

describe('streams the client leaves, on a budget near its cap', () => {
  let setup: TeamGateway;
  let capUsd: number;
  let fits: number;
  const requests = Array.from({ length: 8 }, () => requestFor(prose()));

  beforeAll(async () => {
    setup = await startTokenBilledTeamGateway();
    const pricing = setup.gateway.runtime.services.pricing;
    // The dearest of the requests sets the cap: as many as fit counted, while one's bound worst case is above it.
    let counted = 0;
    let bound = Number.POSITIVE_INFINITY;
    for (const request of requests) {
      const tokens = (await pricing.countPromptTokens('openai', MODEL, request)) as number;
      counted = Math.max(counted, worstCaseNanos(pricing, request, 'openai', MODEL, tokens) as number);
      bound = Math.min(bound, worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number);
    }
    fits = Math.min(requests.length, Math.floor(bound / counted - 0.5));
    capUsd = (fits * counted + Math.floor(counted / 2)) / 1e9;
    await setOpenAIDailyCap(setup, capUsd);
  });

  afterAll(async () => {
    await setup.stop();
  });

  test('each is booked at most at the count it reserved on: the booked spend stays within the cap', async () => {
    expect(fits).toBeGreaterThanOrEqual(3);
    expect(capUsd).toBeLessThan(
      worstCaseNanos(
        setup.gateway.runtime.services.pricing,
        requests[0] as ChatRequest,
        'openai',
        MODEL,
        setup.gateway.runtime.services.pricing.promptTokenBound(requests[0] as ChatRequest),
      ) as number,
    );
    setup.openai.setSticky({ kind: 'slow_stream', delayMs: 150 });
    const left = await Promise.all(
      requests.slice(0, fits).map(async (request) => {
        const abort = new AbortController();
        const response = await fetch(`${setup.gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(request),
          signal: abort.signal,
        });
        if (response.status !== 200) return response.status;
        await leaveStreamAfter(response, abort, '"content":"');
        return 200;
      }),
    );
    setup.openai.setSticky(undefined);
    expect(left).toEqual(Array.from({ length: fits }, () => 200));

    let booked = await bookedOpenAIToday(setup);
    for (let waited = 0; booked.requests < fits && waited < 3_000; waited += 50) {
      await Bun.sleep(50);
      booked = await bookedOpenAIToday(setup);
    }
    expect(booked.requests).toBe(fits);
    await flushUsage(setup.gateway);
    const rows = (await setup.gateway.runtime.store.listUsage('default')).filter((row) => row.teamId === setup.teamId && row.provider === 'openai');
    expect(rows.map((row) => [row.status, row.errorCode, row.usageEstimated])).toEqual(Array.from({ length: fits }, () => [499, 'client_closed', true]));
    expect(booked.costUsd).toBeGreaterThan(0);
    expect(booked.costUsd).toBeLessThanOrEqual(capUsd);
    // Each prompt is booked at the tokenizer's count, not the estimate above it.
    const pricing = setup.gateway.runtime.services.pricing;
    const counts = await Promise.all(requests.map((request) => pricing.countPromptTokens('openai', MODEL, request)));
    for (const row of rows) expect(counts).toContain(row.inputTokens);
  }, 30_000);
});
