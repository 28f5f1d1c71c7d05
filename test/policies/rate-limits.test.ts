// The rate-limits policy: its hooks over a fake snapshot and memory counters on a manual clock, then
// over HTTP: the N+1th request of a minute is a 429 with Retry-After, other keys and teams go on,
// and the window's end lets the key in again.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { ManualClock } from '../../core/clock.ts';
import { MemoryCounters } from '../../core/counters/memory.ts';
import { KeywayError } from '../../core/errors.ts';
import type { Counters } from '../../core/spec/counters.ts';
import type { Hooks, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { rateLimitsPlugin, secondsUntilWindowEnds } from '../../policies/rate-limits/index.ts';
import { call } from '../helpers/gateway.ts';
import { context, teamsSection, TEAM } from './helpers.ts';
import { type ErrorBody, startTeamGateway, type TeamGateway } from './team-fixture.ts';

/** 10 seconds into a minute: a refusal's Retry-After is 50. */
const START = Date.UTC(2026, 0, 5, 12, 0, 10);
const silentLogger = { warn() {}, info() {}, debug() {}, error() {}, child: () => silentLogger } as never;

async function setUp(permissions: TeamPermissions | undefined, counters?: Counters, estimate = 40) {
  const clock = new ManualClock(START);
  const memory = counters ?? new MemoryCounters(clock);
  const services = {
    clock,
    counters: memory,
    snapshot: { current: {} as never, section: () => teamsSection(permissions), refresh: async () => {} },
    pricing: { estimatePromptTokens: () => estimate, promptTokenBound: () => estimate, price: () => undefined },
    logger: silentLogger,
  };
  const contributions = await rateLimitsPlugin.setup?.({
    config: {},
    logger: silentLogger,
    fetch,
    env: {},
    dataDirectory: '/tmp',
    services: services as never,
  });
  return { hooks: contributions?.hooks as Hooks, clock, counters: memory };
}

async function refusal(run: () => unknown): Promise<KeywayError | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    if (error instanceof KeywayError) return error;
    throw error;
  }
}

const outcome = (inputTokens: number, outputTokens: number): RequestOutcome => ({
  status: 200,
  usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
  finishReason: undefined,
  error: undefined,
  latencyMs: 1,
  streamed: false,
  costUsd: undefined,
});

describe('rate-limits hooks', () => {
  test("a key's requests per minute: the N+1th is 429 with the seconds left in the window, then the next window opens", async () => {
    const { hooks, clock } = await setUp(undefined);
    const request = () => context({ principal: { teamId: undefined, settings: { requests_per_minute: 3 } } });
    for (let index = 0; index < 3; index++) expect(await refusal(() => hooks.auth?.(request()))).toBeUndefined();
    const error = await refusal(() => hooks.auth?.(request()));
    expect(error?.code).toBe('rate_limited');
    expect(error?.status).toBe(429);
    expect(error?.retryAfterSeconds).toBe(50);
    expect(error?.message).toContain("this API key's limit of 3 requests per minute");
    // Another key is counted apart.
    expect(
      await refusal(() => hooks.auth?.(context({ principal: { keyId: 'key_2', teamId: undefined, settings: { requests_per_minute: 3 } } }))),
    ).toBeUndefined();
    clock.advance(50_000);
    expect(await refusal(() => hooks.auth?.(request()))).toBeUndefined();
  });

  test("a team's requests per minute are shared by its keys", async () => {
    const { hooks } = await setUp({ rate_limits: { requests_per_minute: 2 } });
    expect(await refusal(() => hooks.auth?.(context({ principal: { keyId: 'key_a' } })))).toBeUndefined();
    expect(await refusal(() => hooks.auth?.(context({ principal: { keyId: 'key_b' } })))).toBeUndefined();
    const error = await refusal(() => hooks.auth?.(context({ principal: { keyId: 'key_c' } })));
    expect(error?.message).toContain("the team's limit of 2 requests per minute");
    expect(error?.extra).toEqual({ limit_scope: 'team', limit_unit: 'requests' });
  });

  test('tokens: refused before the call when the window cannot take the worst case; output counted at account', async () => {
    const { hooks, counters } = await setUp({ rate_limits: { tokens_per_minute: 200 } }, undefined, 40);
    const first = context({ body: { max_tokens: 100 } });
    expect(await refusal(() => hooks.call?.(first))).toBeUndefined();
    expect(await counters.hit(`rl:tok:team:${TEAM}`, 0, 60_000)).toBe(40);
    await hooks.account?.(first, outcome(30, 90)); // 90 output tokens; the prompt was below its estimate
    expect(await counters.hit(`rl:tok:team:${TEAM}`, 0, 60_000)).toBe(130);
    // 130 + 40 + 100 > 200: refused, and nothing counted for it.
    const error = await refusal(() => hooks.call?.(context({ body: { max_tokens: 100 } })));
    expect(error?.message).toContain("the team's limit of 200 tokens per minute");
    expect(error?.retryAfterSeconds).toBe(50);
    expect(await counters.hit(`rl:tok:team:${TEAM}`, 0, 60_000)).toBe(130);
    // A smaller worst case still fits.
    expect(await refusal(() => hooks.call?.(context({ body: { max_tokens: 20 } })))).toBeUndefined();
  });

  // Judged at the route stage, before the call stage's approvals (QA20: test/policies/approvals-unservable.test.ts).
  test('a request that alone exceeds the tokens limit says it can never fit, what to lower, and not to retry', async () => {
    const { hooks, counters } = await setUp(undefined, undefined, 40);
    const error = await refusal(() => hooks.route?.(context({ principal: { settings: { tokens_per_minute: 100 } }, body: { max_tokens: 4096 } })));
    expect(error?.message).toContain("this API key's limit of 100 tokens per minute is below this request's worst case of about 4136 tokens");
    expect(error?.message).toContain('Lower max_tokens (or max_completion_tokens) to at most 60');
    expect(error?.retryAfterSeconds).toBeUndefined();
    expect(error?.headers).toEqual({ 'x-should-retry': 'false', 'x-ratelimit-limit-tokens': '100' });
    expect(error?.extra).toEqual({ limit_scope: 'key', limit_unit: 'tokens', worst_case_tokens: 4136 });
    // Refused before any counter is read or counted.
    expect(await counters.hit('rl:tok:key:key_1', 0, 60_000)).toBe(0);
    // A prompt alone above the limit is told to shorten the prompt.
    const prompt = await setUp(undefined, undefined, 150);
    const long = await refusal(() => prompt.hooks.route?.(context({ principal: { settings: { tokens_per_minute: 100 } }, body: { max_tokens: 10 } })));
    expect(long?.message).toContain('Send a shorter prompt');
  });

  test("a team limit no window can meet is said even while the key's window is full", async () => {
    const { hooks, counters } = await setUp({ rate_limits: { tokens_per_minute: 200 } }, undefined, 40);
    await counters.hit('rl:tok:key:key_1', 950, 60_000);
    const error = await refusal(() => hooks.route?.(context({ principal: { settings: { tokens_per_minute: 1000 } }, body: { max_tokens: 500 } })));
    expect(error?.message).toContain("the team's limit of 200 tokens per minute is below");
    expect(error?.retryAfterSeconds).toBeUndefined();
  });

  test('with both max_tokens and max_completion_tokens, the larger is the output allowance, whichever field holds it', async () => {
    const { hooks } = await setUp(undefined, undefined, 40);
    const principal = { settings: { tokens_per_minute: 100 } };
    for (const body of [
      { max_tokens: 1, max_completion_tokens: 4000 },
      { max_tokens: 4000, max_completion_tokens: 1 },
    ]) {
      const error = await refusal(() => hooks.route?.(context({ principal, body })));
      expect(error?.message).toContain("this request's worst case of about 4040 tokens");
    }
  });

  test('the worst case counts every choice (n)', async () => {
    const { hooks } = await setUp(undefined, undefined, 40);
    const principal = { settings: { tokens_per_minute: 300 } };
    expect(await refusal(() => hooks.call?.(context({ principal, body: { max_tokens: 100, n: 2 } })))).toBeUndefined();
    expect((await refusal(() => hooks.route?.(context({ principal, body: { max_tokens: 100, n: 3 } }))))?.code).toBe('rate_limited');
  });

  test('a failed request adds nothing at account', async () => {
    const { hooks, counters } = await setUp(undefined, undefined, 40);
    const request = context({ principal: { settings: { tokens_per_minute: 1000 } } });
    await hooks.call?.(request);
    await hooks.account?.(request, { ...outcome(0, 0), status: 502, usage: undefined });
    expect(await counters.hit('rl:tok:key:key_1', 0, 60_000)).toBe(40);
  });

  test('a key and team without limits never touch the counters', async () => {
    const untouchable = new Proxy({} as Counters, {
      get() {
        throw new Error('the counters were touched');
      },
    });
    const { hooks } = await setUp({}, untouchable);
    const request = context();
    await hooks.auth?.(request);
    await hooks.call?.(request);
    await hooks.account?.(request, outcome(10, 10));
    expect(request.state.size).toBe(0);
  });

  test('asynchronous counters (a shared implementation) work the same', async () => {
    const clock = new ManualClock(START);
    const memory = new MemoryCounters(clock);
    const asynchronous = new Proxy(memory, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? (...args: unknown[]) => Promise.resolve(value.apply(target, args)) : value;
      },
    });
    const { hooks } = await setUp({ rate_limits: { requests_per_minute: 1 } }, asynchronous);
    const first = hooks.auth?.(context());
    expect(first).toBeInstanceOf(Promise);
    await first;
    expect((await refusal(() => hooks.auth?.(context())))?.code).toBe('rate_limited');
  });

  test('Retry-After is the seconds left in the fixed window, at least 1', () => {
    expect(secondsUntilWindowEnds(START)).toBe(50);
    expect(secondsUntilWindowEnds(START + 49_500)).toBe(1);
    expect(secondsUntilWindowEnds(START - 10_000)).toBe(60);
  });
});

describe('rate limits over HTTP', () => {
  let fixture: TeamGateway;
  const clock = new ManualClock(START);
  let limitedKey: string;
  let limitedTeamKeys: string[];

  beforeAll(async () => {
    fixture = await startTeamGateway({}, { clock });
    const created = await call(fixture.gateway, 'POST', '/v1/keys', { name: 'limited', role: 'developer', requests_per_minute: 2 }, { key: fixture.adminKey });
    expect(created.status).toBe(201);
    limitedKey = ((await created.json()) as { api_key: string }).api_key;
    const team = await call(
      fixture.gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Limited Team',
        rate_limits: { requests_per_minute: 3 },
        members: [
          { email: 'one@limited.example', role: 'developer', byok_access: true },
          { email: 'two@limited.example', role: 'developer', byok_access: true },
        ],
      },
      { key: fixture.adminKey },
    );
    expect(team.status).toBe(201);
    limitedTeamKeys = ((await team.json()) as { members: Array<{ api_key: string }> }).members.map((member) => member.api_key);
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  const chat = (key: string, path: 'chat' | 'messages' = 'chat') =>
    path === 'chat'
      ? call(fixture.gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { key })
      : call(fixture.gateway, 'POST', '/v1/messages', { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }, { key });

  test("a key's third request in a minute: 429 rate_limited with Retry-After, no upstream call; other keys unaffected", async () => {
    expect((await chat(limitedKey)).status).toBe(200);
    expect((await chat(limitedKey)).status).toBe(200);
    const before = fixture.openai.inferenceRequests().length;
    const refused = await chat(limitedKey);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('50');
    // OpenAI's header names for the window that was hit.
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('50s');
    const body = (await refused.json()) as ErrorBody;
    expect(body.error.code).toBe('rate_limited');
    expect(body.error.type).toBe('rate_limit_error');
    expect(body.error.message).toContain("this API key's limit of 2 requests per minute");
    expect(fixture.openai.inferenceRequests().length).toBe(before);
    // On the Anthropic dialect too.
    const anthropic = await chat(limitedKey, 'messages');
    expect(anthropic.status).toBe(429);
    expect(((await anthropic.json()) as { error: { type: string } }).error.type).toBe('rate_limit_error');
    // Another key, and a team member, are unaffected.
    expect((await chat(fixture.memberKey)).status).toBe(200);
    expect((await chat(fixture.adminKey)).status).toBe(200);
  });

  test("a team's limit is shared by its members; another team goes on", async () => {
    const [one = '', two = ''] = limitedTeamKeys;
    expect((await chat(one)).status).toBe(200);
    expect((await chat(two)).status).toBe(200);
    expect((await chat(one)).status).toBe(200);
    const refused = await chat(two);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as ErrorBody).error.message).toContain("the team's limit of 3 requests per minute");
    expect((await chat(fixture.memberKey)).status).toBe(200);
  });

  test('tokens per minute: a request whose worst case does not fit is refused before the call; usage fills the window', async () => {
    const created = await call(fixture.gateway, 'POST', '/v1/keys', { name: 'tokens', role: 'developer', tokens_per_minute: 300 }, { key: fixture.adminKey });
    const key = ((await created.json()) as { api_key: string }).api_key;
    const ask = (maxTokens: number) =>
      call(
        fixture.gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', max_tokens: maxTokens, messages: [{ role: 'user', content: 'hi' }] },
        { key },
      );
    const before = fixture.openai.inferenceRequests().length;
    const tooBig = await ask(1000);
    expect(tooBig.status).toBe(429);
    expect(((await tooBig.json()) as ErrorBody).error.message).toContain("this API key's limit of 300 tokens per minute is below this request's worst case");
    expect(fixture.openai.inferenceRequests().length).toBe(before);
    let served = 0;
    let refused: Response | undefined;
    for (let attempt = 0; attempt < 100 && refused === undefined; attempt++) {
      const response = await ask(20);
      if (response.status === 200) {
        served++;
        await response.text();
        await Bun.sleep(1); // the account stage adds the usage after the answer
      } else refused = response;
    }
    expect(served).toBeGreaterThan(0);
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get('retry-after')).toBe('50');
  });

  test("tokens per minute count an embeddings request's input before the call, the key's and the team's; the reported usage settles", async () => {
    const created = await call(fixture.gateway, 'POST', '/v1/keys', { name: 'embed', role: 'developer', tokens_per_minute: 100 }, { key: fixture.adminKey });
    const key = ((await created.json()) as { api_key: string }).api_key;
    const team = await call(
      fixture.gateway,
      'POST',
      '/v1/teams',
      { name: 'Embedding Team', rate_limits: { tokens_per_minute: 100 }, members: [{ email: 'e@limited.example', role: 'developer', byok_access: true }] },
      { key: fixture.adminKey },
    );
    const member = ((await team.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    const embed = (caller: string, input: unknown) =>
      call(fixture.gateway, 'POST', '/v1/embeddings', { model: 'text-embedding-3-small', input }, { key: caller });
    // QA12: 50 inputs of 'hello world ' × 50 (5,000 tokens) were served under a 100-token limit.
    const large = Array.from({ length: 50 }, () => 'hello world '.repeat(50));
    for (const [caller, owner] of [
      [key, "this API key's"],
      [member, "the team's"],
    ] as const) {
      const before = fixture.openai.inferenceRequests().length;
      for (const input of [large, 'hello world '.repeat(200), [Array.from({ length: 300 }, (_, index) => index)]]) {
        const refused = await embed(caller, input);
        expect(refused.status).toBe(429);
        expect(((await refused.json()) as ErrorBody).error.message).toContain(`${owner} limit of 100 tokens per minute is below this request's worst case`);
      }
      expect(fixture.openai.inferenceRequests().length).toBe(before);
      // A small input (about 86 tokens) is served and stays counted: the same again does not fit.
      const served = await embed(caller, 'hello world '.repeat(20));
      expect(served.status).toBe(200);
      await served.text();
      await Bun.sleep(1); // the account stage adds the reported usage after the answer
      expect((await embed(caller, 'hello world '.repeat(20))).status).toBe(429);
    }
  });

  test('a request no window can take (key or team, chat or messages): refused at once, no Retry-After, x-should-retry: false; the SDK does not retry', async () => {
    const created = await call(fixture.gateway, 'POST', '/v1/keys', { name: 'small', role: 'developer', tokens_per_minute: 200 }, { key: fixture.adminKey });
    const key = ((await created.json()) as { api_key: string }).api_key;
    const team = await call(
      fixture.gateway,
      'POST',
      '/v1/teams',
      { name: 'Small Team', rate_limits: { tokens_per_minute: 200 }, members: [{ email: 's@limited.example', role: 'developer', byok_access: true }] },
      { key: fixture.adminKey },
    );
    const member = ((await team.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    const before = fixture.openai.inferenceRequests().length;
    for (const [caller, owner] of [
      [key, "this API key's"],
      [member, "the team's"],
    ] as const) {
      for (const path of ['/v1/chat/completions', '/v1/messages'] as const) {
        // QA: 429 "…(this request alone may use about 1012 tokens). Retry in 41 s." with Retry-After: 41.
        const refused = await call(
          fixture.gateway,
          'POST',
          path,
          { model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] },
          { key: caller },
        );
        expect(refused.status).toBe(429);
        expect(refused.headers.get('retry-after')).toBeNull();
        expect(refused.headers.get('x-should-retry')).toBe('false');
        expect(refused.headers.get('x-ratelimit-limit-tokens')).toBe('200');
        const body = (await refused.json()) as { type?: string; error: { type: string; message: string } };
        expect(body.error.type).toBe('rate_limit_error');
        if (path === '/v1/messages') expect(body.type).toBe('error');
        expect(body.error.message).toContain(`${owner} limit of 200 tokens per minute is below this request's worst case`);
        expect(body.error.message).toContain(
          path === '/v1/messages' ? 'Lower max_tokens to at most' : 'Lower max_tokens (or max_completion_tokens) to at most',
        );
        expect(body.error.message).not.toContain('Retry in');
      }
    }
    // The official client at its default two retries gives up at once (QA: after 101 s).
    const client = new OpenAI({ baseURL: `${fixture.gateway.url}/v1`, apiKey: member });
    const started = performance.now();
    const error = (await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] }).then(
      () => undefined,
      (rejection: unknown) => rejection,
    )) as { status?: number } | undefined;
    expect(error?.status).toBe(429);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(fixture.openai.inferenceRequests().length).toBe(before);
  }, 15_000);

  test('the next window lets them in again', async () => {
    clock.advance(50_000);
    expect((await chat(limitedKey)).status).toBe(200);
    expect((await chat(limitedTeamKeys[0] ?? '')).status).toBe(200);
  });
});
