// Budgets and approvals count a prompt with the provider's own tokenizer when the byte bound alone
// would refuse it or send it for approval. Prose is about a quarter as many tokens as bytes, so near
// a cap the bound refuses requests that fit: here the cap is below one request's bound worst case,
// so the bound alone serves none, and counted with OpenAI's tokenizer (o200k_base for gpt-4o-mini)
// exactly the requests that fit are served. The simulator bills with the same tokenizer; the cap holds.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { encodingOfModel } from '../../providers/openai/tokenizer.ts';
import { call } from '../helpers/gateway.ts';
import {
  bookedOpenAIToday,
  postChatsAtOnce,
  realPromptTokens,
  setOpenAIDailyCap,
  startTeamGateway,
  startTokenBilledTeamGateway,
  teamGatewayPerSuite,
  type TeamGateway,
} from './team-fixture.ts';

const MODEL = 'gpt-4o-mini';
const REQUESTS = 30;
const WORDS = ['budget', 'release', 'notes', 'the', 'team', 'gateway', 'provider', 'summarise', 'quarterly', 'report', 'and', 'of'];

/** About 4,000 characters of English-like prose, different each time. */
const prose = (): string => Array.from({ length: 600 }, () => WORDS[Math.floor(Math.random() * WORDS.length)] as string).join(' ');
const requestFor = (content: string): ChatRequest => ({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 1 });

describe('which OpenAI models get a tokenizer', () => {
  test('each family its encoding; a model OpenAI does not name keeps the byte bound', () => {
    const cases: Array<[string, string | undefined]> = [
      ['gpt-4o-mini', 'o200k_base'],
      ['gpt-4o-2024-08-06', 'o200k_base'],
      ['chatgpt-4o-latest', 'o200k_base'],
      ['gpt-4.1-nano', 'o200k_base'],
      ['gpt-5', 'o200k_base'],
      ['gpt-5.1-codex', 'o200k_base'],
      ['o1-mini', 'o200k_base'],
      ['o3', 'o200k_base'],
      ['o4-mini-2025-04-16', 'o200k_base'],
      ['gpt-oss-120b', 'o200k_base'],
      ['gpt-4', 'cl100k_base'],
      ['gpt-4-turbo-preview', 'cl100k_base'],
      ['gpt-3.5-turbo', 'cl100k_base'],
      ['gpt-3.5-turbo-0125', 'cl100k_base'],
      ['gpt-40', undefined],
      ['o10', undefined],
      ['llama-3.1-70b', undefined],
      ['text-davinci-003', undefined],
      ['claude-3-5-sonnet', undefined],
    ];
    for (const [model, encoding] of cases) expect([model, encodingOfModel(model)]).toEqual([model, encoding]);
  });
});

describe('a budget near its cap, prompts counted by the provider’s tokenizer', () => {
  let setup: TeamGateway;
  let boundNanos: number;
  let countedNanos: number;
  let capUsd: number;
  /** As many requests as fit the cap when counted, while one request's bound worst case is still above it. */
  let fits: number;

  beforeAll(async () => {
    setup = await startTokenBilledTeamGateway();
    const pricing = setup.gateway.runtime.services.pricing;
    const request = requestFor(prose());
    boundNanos = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    const counted = (await pricing.countPromptTokens('openai', MODEL, request)) as number;
    countedNanos = worstCaseNanos(pricing, request, 'openai', MODEL, counted) as number;
    fits = Math.floor(boundNanos / countedNanos - 0.5);
    capUsd = (fits * countedNanos + Math.floor(countedNanos / 2)) / 1e9;
    await setOpenAIDailyCap(setup, capUsd);
  });

  afterAll(async () => {
    await setup.stop();
  });

  test('the counted prompt is between the real count and the bound; providers and models without a tokenizer answer none', async () => {
    const pricing = setup.gateway.runtime.services.pricing;
    for (let round = 0; round < 20; round++) {
      const request = requestFor(prose());
      const real = realPromptTokens({ messages: request.messages as Array<{ role: 'user'; content: string }> });
      const counted = (await pricing.countPromptTokens('openai', MODEL, request)) as number;
      expect(counted).toBeGreaterThanOrEqual(real);
      expect(counted).toBeLessThan(pricing.promptTokenBound(request) / 3);
    }
    const request = requestFor(prose());
    expect(await pricing.countPromptTokens('openai', 'llama-3.1-70b', request)).toBeUndefined();
    expect(await pricing.countPromptTokens('anthropic', 'claude-3-5-sonnet-20241022', request)).toBeUndefined();
    expect(await pricing.countPromptTokens('no-such-provider', MODEL, request)).toBeUndefined();
    // The byte bound alone: one request's worst case is above the whole cap, which fits several counted.
    expect(boundNanos).toBeGreaterThan(capUsd * 1e9);
    expect(fits).toBeGreaterThanOrEqual(3);
  });

  test(`${REQUESTS} concurrent requests the bound alone would all refuse: exactly those that fit counted are served, never past the cap`, async () => {
    const outcomes = await postChatsAtOnce(
      setup,
      Array.from({ length: REQUESTS }, () => requestFor(prose())),
      REQUESTS - fits,
    );
    expect(outcomes.filter((outcome) => outcome.status === 200).length).toBe(fits);
    expect(outcomes.filter((outcome) => outcome.status === 402 && outcome.code === 'budget_exceeded').length).toBe(REQUESTS - fits);
    await Bun.sleep(200);
    const { requests, costUsd } = await bookedOpenAIToday(setup);
    expect(requests).toBe(fits);
    expect(costUsd).toBeGreaterThan(0);
    expect(costUsd).toBeLessThanOrEqual(capUsd);
  }, 30_000);
});

describe('an approval threshold between the counted worst case and the bound', () => {
  const setup = teamGatewayPerSuite({ providers: { openai: { enabled: true } } });

  test('a request above the threshold only by its bytes is served without an approval; one above it counted needs one', async () => {
    const pricing = setup().gateway.runtime.services.pricing;
    const request = requestFor(prose());
    const bound = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    const counted = worstCaseNanos(pricing, request, 'openai', MODEL, (await pricing.countPromptTokens('openai', MODEL, request)) as number) as number;
    const threshold = Math.floor((bound + counted) / 2);
    const patched = await call(
      setup().gateway,
      'PATCH',
      `/v1/teams/${setup().teamId}`,
      { byok_permissions: { providers: { openai: { require_approval_above: threshold / 1e9 } } } },
      { key: setup().adminKey },
    );
    expect(patched.status).toBe(200);
    await setup().gateway.runtime.services.snapshot.refresh();
    const send = (body: ChatRequest) =>
      fetch(`${setup().gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${setup().memberKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await send(request)).status).toBe(200);
    // Twice the output allowance that just fit: the counted worst case is now above the threshold too.
    const dearer = { ...request, max_tokens: Math.ceil(((threshold - counted) / ((pricing.price('openai', MODEL)?.outputPerToken ?? 1) * 1e9)) * 2) + 1 };
    const refused = await send(dearer);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('approval_required');
  });
});

describe('KEYWAY_TOKENIZERS=off', () => {
  let setup: TeamGateway;

  beforeAll(async () => {
    setup = await startTokenBilledTeamGateway({ env: { KEYWAY_TOKENIZERS: 'off' } });
  });

  afterAll(async () => {
    await setup.stop();
  });

  test('no tokenizer is loaded: a request the bound alone refuses stays refused', async () => {
    const pricing = setup.gateway.runtime.services.pricing;
    const request = requestFor(prose());
    expect(await pricing.countPromptTokens('openai', MODEL, request)).toBeUndefined();
    const bound = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    await setOpenAIDailyCap(setup, (bound - 1) / 1e9);
    const response = await fetch(`${setup.gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    expect(response.status).toBe(402);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('budget_exceeded');
  });
});
