// Absurd usage from upstream (1e15 tokens, negative, NaN) is capped and flagged, never booked as a
// bill of billions.

import { describe, expect, test } from 'bun:test';
import { Accountant } from '../../core/accounting/account.ts';
import { estimateTextTokens } from '../../core/accounting/token-estimate.ts';
import {
  capUsage,
  lacksInputCount,
  lacksOutputCount,
  MAX_HOSTED_TOOL_CALLS,
  MAX_PROVIDER_COST_USD,
  MAX_USAGE_TOKENS,
  outputBound,
} from '../../core/accounting/usage-limits.ts';
import { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { catalogFor } from '../../core/catalog/catalog.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { createLogger } from '../../core/logger.ts';
import type { HookTable } from '../../core/registry.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import { unreportedUsage, type ChatRequest, type ChatResult, type Usage } from '../../core/spec/vocabulary.ts';

const SANE: Usage = { inputTokens: 120, outputTokens: 30, totalTokens: 150, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };

describe('capUsage', () => {
  test('sane usage passes through untouched, as the same object', () => {
    const result = capUsage(SANE);
    expect(result.usage).toBe(SANE);
    expect(result.capped).toBeUndefined();
    expect(capUsage({ ...SANE, providerCostUsd: 0.004 }).capped).toBeUndefined();
  });

  test('huge, NaN and infinite counts are clamped and named; a negative input or output is estimated instead', () => {
    const { usage, capped, estimated } = capUsage(
      { ...SANE, inputTokens: 1e15, outputTokens: -5, totalTokens: Number.NaN, reasoningTokens: Number.POSITIVE_INFINITY },
      { estimate: { inputTokens: 7, outputTokens: 9 } },
    );
    expect(usage.inputTokens).toBe(MAX_USAGE_TOKENS);
    expect(usage.outputTokens).toBe(9);
    expect(usage.totalTokens).toBe(MAX_USAGE_TOKENS + 9);
    // Within the output, as every part is within its whole.
    expect(usage.reasoningTokens).toBe(9);
    expect(capped).toEqual({ inputTokens: '1000000000000000', totalTokens: 'NaN', reasoningTokens: 'Infinity' });
    expect(estimated).toEqual({ outputTokens: '-5' });
  });

  // QA19 L1: the cost clamped them, the row kept them as sent.
  test('a part reported above its whole is clamped to it and named: cache reads and writes within the input, 1-hour writes within the writes, reasoning within the output', () => {
    const { usage, capped, estimated } = capUsage({
      ...SANE,
      cachedInputTokens: 999,
      cacheWriteInputTokens: 50,
      cacheWrite1hInputTokens: 60,
      reasoningTokens: 500,
    });
    expect(usage).toMatchObject({
      inputTokens: 120,
      outputTokens: 30,
      cachedInputTokens: 120,
      cacheWriteInputTokens: 0,
      cacheWrite1hInputTokens: 0,
      reasoningTokens: 30,
    });
    expect(capped).toEqual({ cachedInputTokens: '999', cacheWriteInputTokens: '50', cacheWrite1hInputTokens: '60', reasoningTokens: '500' });
    expect(estimated).toBeUndefined();
    const writes = capUsage({ ...SANE, cachedInputTokens: 100, cacheWriteInputTokens: 50, cacheWrite1hInputTokens: 30 });
    expect(writes.usage).toMatchObject({ cachedInputTokens: 100, cacheWriteInputTokens: 20, cacheWrite1hInputTokens: 20 });
    expect(writes.capped).toEqual({ cacheWriteInputTokens: '50', cacheWrite1hInputTokens: '30' });
  });

  test('parts within their wholes pass as sent', () => {
    const usage: Usage = { ...SANE, cachedInputTokens: 100, cacheWriteInputTokens: 20, cacheWrite1hInputTokens: 20, reasoningTokens: 30 };
    expect(capUsage(usage).usage).toBe(usage);
  });

  test('a count that is not a number at all is 0', () => {
    const { usage, capped } = capUsage({ ...SANE, cachedInputTokens: '12' as unknown as number });
    expect(usage.cachedInputTokens).toBe(0);
    expect(capped).toEqual({ cachedInputTokens: '12' });
  });

  test('a fractional count is rounded up without a flag: money is never under-counted', () => {
    const { usage, capped, estimated } = capUsage({ ...SANE, inputTokens: 120.2, outputTokens: 30.4, cachedInputTokens: 10.5 });
    expect(usage).toMatchObject({ inputTokens: 121, outputTokens: 31, totalTokens: 152, cachedInputTokens: 11 });
    expect(capped).toBeUndefined();
    expect(estimated).toBeUndefined();
  });

  test('hosted tool call counts: sane ones pass as they are, absurd ones are clamped and named', () => {
    const sane = { ...SANE, hostedToolCalls: { web_search: 2 } };
    expect(capUsage(sane).usage).toBe(sane);
    const { usage, capped } = capUsage({ ...SANE, hostedToolCalls: { web_search: 1e9, file_search: -3, other: 2 } });
    expect(usage.hostedToolCalls).toEqual({ web_search: MAX_HOSTED_TOOL_CALLS, file_search: 0, other: 2 });
    expect(capped).toEqual({ 'hostedToolCalls.web_search': '1000000000', 'hostedToolCalls.file_search': '-3' });
  });

  test("the provider's own cost: absurd is capped, not a number or negative is dropped for the list price", () => {
    expect(capUsage({ ...SANE, providerCostUsd: 1e12 }).usage.providerCostUsd).toBe(MAX_PROVIDER_COST_USD);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const result = capUsage({ ...SANE, providerCostUsd: bad });
      expect(result.usage.providerCostUsd).toBeUndefined();
      expect(result.capped?.providerCostUsd).toBe(String(bad));
    }
  });
});

describe('missing counts and the output bound', () => {
  test('a count is missing when unreported, negative, not finite or not a number; a sane usage lacks none', () => {
    expect(lacksInputCount(SANE) || lacksOutputCount(SANE)).toBe(false);
    expect(lacksInputCount(undefined)).toBe(true);
    expect(lacksInputCount(unreportedUsage())).toBe(true);
    expect(lacksOutputCount(unreportedUsage())).toBe(true);
    expect(lacksInputCount({ ...SANE, inputTokens: -1 })).toBe(true);
    expect(lacksOutputCount({ ...SANE, outputTokens: Number.POSITIVE_INFINITY })).toBe(true);
    expect(lacksOutputCount({ ...SANE, outputTokens: '12' as unknown as number })).toBe(true);
    expect(lacksInputCount({ ...SANE, outputTokens: -1 })).toBe(false);
  });

  test('a missing side is booked at the estimate (never above the output bound), the other as reported', () => {
    const { usage, capped, estimated } = capUsage(
      { ...SANE, outputTokens: 0, unreported: { outputTokens: 'absent' } },
      { outputTokens: 50, estimate: { inputTokens: 999, outputTokens: 70 } },
    );
    expect(usage).toEqual({ ...SANE, outputTokens: 50, totalTokens: 170 });
    expect(usage.unreported).toBeUndefined();
    expect(capped).toBeUndefined();
    expect(estimated).toEqual({ outputTokens: 'absent' });
  });

  test('reported output above the bound is capped there and named', () => {
    const { usage, capped, estimated } = capUsage({ ...SANE, outputTokens: 5_000 }, { outputTokens: 50 });
    expect(usage.outputTokens).toBe(50);
    expect(capped).toEqual({ outputTokens: '5000' });
    expect(estimated).toBeUndefined();
    // Within the bound: the same object, nothing allocated.
    expect(capUsage(SANE, { outputTokens: 30 }).usage).toBe(SANE);
  });

  const request = (fields: Partial<ChatRequest>): ChatRequest => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...fields });

  test("the bound: the request's allowance per choice times n, else the model's limit; reported reasoning adds up to the model's limit", () => {
    expect(outputBound(request({ max_tokens: 50 }), 16_384, 0)).toBe(50);
    expect(outputBound(request({ max_tokens: 10, max_completion_tokens: 40, n: 3 }), 16_384, 0)).toBe(120);
    expect(outputBound(request({}), 16_384, 0)).toBe(16_384);
    expect(outputBound(request({}), undefined, 0)).toBeUndefined();
    expect(outputBound(request({ max_tokens: 50 }), 16_384, 700)).toBe(750);
    expect(outputBound(request({ max_tokens: 50 }), 16_384, 1e15)).toBe(50 + 16_384);
    expect(outputBound(request({ max_tokens: 50 }), undefined, 1e15)).toBe(100);
  });

  test('no bound where the provider may sample more than once or bill output beyond max_tokens: server tools, MCP, predicted outputs', () => {
    expect(outputBound(request({ max_tokens: 50, tools: [{ type: 'web_search_20250305', name: 'web_search' } as never] }), 16_384, 0)).toBeUndefined();
    expect(outputBound(request({ max_tokens: 50, mcp_servers: [{ type: 'url', url: 'https://mcp.example' }] }), 16_384, 0)).toBeUndefined();
    expect(outputBound(request({ max_tokens: 50, prediction: { type: 'content', content: 'draft' } }), 16_384, 0)).toBeUndefined();
    const functions = [{ type: 'function' as const, function: { name: 'lookup' } }];
    expect(outputBound(request({ max_tokens: 50, tools: functions }), 16_384, 0)).toBe(50);
  });
});

describe('the account stage', () => {
  function accountantWith(logLines: string[]) {
    const rows: UsageRecord[] = [];
    const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) } as never);
    const usage = new UsageQueue({ insertUsage: async (batch) => void rows.push(...batch) }, logger, { flushIntervalMs: 3_600_000, batchSize: 1000 });
    const hooks: HookTable = { auth: [], keyResolve: [], route: [], call: [], account: [] };
    const accountant = new Accountant({ catalog: catalogFor(new Map([['openai', { catalogAliases: { providers: ['openai'] } }]])), usage, logger, hooks });
    return { accountant, usage, rows };
  }

  function servedContext(requestId: string) {
    const context = createRequestContext(
      requestId,
      new Request('http://keyway.test/v1/chat/completions'),
      { keyId: 'key_test', role: 'admin', accountId: 'default', teamId: undefined, byokAccess: true, environment: undefined, settings: {} },
      'chat',
      () => undefined,
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
    );
    context.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_1', owner: 'account' };
    return context;
  }

  test('books 1e15 tokens as the 10-million ceiling at list price, flagged, with a warning naming the request and provider', async () => {
    const logLines: string[] = [];
    const { accountant, usage, rows } = accountantWith(logLines);
    const outcome = accountant.account(servedContext('req_absurd'), {
      status: 200,
      usage: { ...SANE, inputTokens: 1e15, outputTokens: 1e15 },
      finishReason: undefined,
      error: undefined,
      streamed: false,
    });
    expect(outcome.usageEstimated).toBe(true);
    expect(outcome.usage?.inputTokens).toBe(MAX_USAGE_TOKENS);
    // gpt-4o list price: far below the $12.5 billion of the raw figures.
    expect(outcome.costUsd as number).toBeGreaterThan(0);
    expect(outcome.costUsd as number).toBeLessThan(1000);
    await usage.flush();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.usageEstimated).toBe(true);
    expect(rows[0]?.inputTokens).toBe(MAX_USAGE_TOKENS);
    const warning = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.level === 'warn');
    expect(warning?.requestId).toBe('req_absurd');
    expect(warning?.provider).toBe('openai');
    expect(String(warning?.msg)).toContain('absurd usage');
    await usage.close();
  });

  test('sane usage is booked as sent, not flagged', async () => {
    const { accountant, usage, rows } = accountantWith([]);
    const outcome = accountant.account(servedContext('req_sane'), { status: 200, usage: SANE, finishReason: undefined, error: undefined, streamed: false });
    expect(outcome.usage).toBe(SANE);
    expect(outcome.usageEstimated).toBeUndefined();
    await usage.flush();
    expect(rows[0]?.usageEstimated).toBe(false);
    expect(rows[0]?.inputTokens).toBe(120);
    await usage.close();
  });
  const ANSWER = 'The Danube flows into the Black Sea, the Rhine into the North Sea, the Rhone into the Mediterranean.';
  const resultWith = (usage: Usage): ChatResult => ({
    id: 'chatcmpl-1',
    model: 'gpt-4o',
    created: 0,
    choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finishReason: { unified: 'stop', raw: 'stop' } }],
    usage,
  });

  test("an answer without usage books the prompt as counted and the answer's text as estimated, flagged, with a warning", async () => {
    const logLines: string[] = [];
    const { accountant, usage } = accountantWith(logLines);
    const result = resultWith(unreportedUsage());
    const outcome = accountant.account(
      servedContext('req_unreported'),
      { status: 200, usage: result.usage, finishReason: undefined, error: undefined, streamed: false },
      result,
      42,
    );
    expect(outcome.usageEstimated).toBe(true);
    expect(outcome.usage).toMatchObject({ inputTokens: 42, outputTokens: estimateTextTokens(ANSWER), totalTokens: 42 + estimateTextTokens(ANSWER) });
    expect(outcome.usage?.unreported).toBeUndefined();
    expect(outcome.costUsd as number).toBeGreaterThan(0);
    const warning = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.level === 'warn');
    expect(warning?.requestId).toBe('req_unreported');
    expect(warning?.unreported).toEqual({ inputTokens: 'absent', outputTokens: 'absent' });
    expect(JSON.stringify(warning)).not.toContain('Danube');
    await usage.close();
  });

  test("a stream's output is its streamed estimate; without a tokenizer's count, the prompt's estimate", async () => {
    const { accountant, usage } = accountantWith([]);
    const outcome = accountant.account(
      servedContext('req_stream_unreported'),
      { status: 200, usage: unreportedUsage(), finishReason: undefined, error: undefined, streamed: true },
      { streamedTokens: 17.2 },
    );
    expect(outcome.usage?.outputTokens).toBe(18);
    expect(outcome.usage?.inputTokens).toBeGreaterThan(0);
    expect(outcome.usageEstimated).toBe(true);
    await usage.close();
  });

  test('fractional counts are rounded up without a flag or a warning', async () => {
    const logLines: string[] = [];
    const { accountant, usage } = accountantWith(logLines);
    const outcome = accountant.account(servedContext('req_fraction'), {
      status: 200,
      usage: { ...SANE, inputTokens: 10.6, outputTokens: 3.2, totalTokens: 13.8 },
      finishReason: undefined,
      error: undefined,
      streamed: false,
    });
    expect(outcome.usage).toMatchObject({ inputTokens: 11, outputTokens: 4, totalTokens: 15 });
    expect(outcome.usageEstimated).toBeUndefined();
    expect(logLines.some((line) => line.includes('"level":"warn"') || line.includes('"level":40'))).toBe(false);
    await usage.close();
  });

  test("a tokenizer that does not answer in time leaves the prompt's estimate; one that fails too", async () => {
    const logger = createLogger('silent');
    const queue = new UsageQueue({ insertUsage: async () => undefined }, logger, { flushIntervalMs: 3_600_000, batchSize: 1000 });
    const hooks: HookTable = { auth: [], keyResolve: [], route: [], call: [], account: [] };
    const catalog = catalogFor(new Map([['openai', { catalogAliases: { providers: ['openai'] } }]]));
    const hanging = new Accountant({ catalog, usage: queue, logger, hooks, countPromptTokens: () => new Promise(() => undefined), promptCountWaitMs: 20 });
    expect(await hanging.promptTokensOf(servedContext('req_hanging'))).toBeUndefined();
    const failing = new Accountant({ catalog, usage: queue, logger, hooks, countPromptTokens: async () => Promise.reject(new Error('no tables')) });
    expect(await failing.promptTokensOf(servedContext('req_failing'))).toBeUndefined();
    const counting = new Accountant({
      catalog,
      usage: queue,
      logger,
      hooks,
      countPromptTokens: async (_provider, model) => (model === 'gpt-4o' ? 9 : undefined),
    });
    expect(await counting.promptTokensOf(servedContext('req_counting'))).toBe(9);
    await queue.close();
  });
});
