// Absurd usage from upstream (1e15 tokens, negative, NaN) is capped and flagged, never booked as a
// bill of billions.

import { describe, expect, test } from 'bun:test';
import { Accountant } from '../../core/accounting/account.ts';
import { capUsage, MAX_HOSTED_TOOL_CALLS, MAX_PROVIDER_COST_USD, MAX_USAGE_TOKENS } from '../../core/accounting/usage-limits.ts';
import { UsageQueue } from '../../core/accounting/usage-queue.ts';
import { catalogFor } from '../../core/catalog/catalog.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { createLogger } from '../../core/logger.ts';
import type { HookTable } from '../../core/registry.ts';
import type { UsageRecord } from '../../core/spec/store.ts';
import type { Usage } from '../../core/spec/vocabulary.ts';

const SANE: Usage = { inputTokens: 120, outputTokens: 30, totalTokens: 150, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };

describe('capUsage', () => {
  test('sane usage passes through untouched, as the same object', () => {
    const result = capUsage(SANE);
    expect(result.usage).toBe(SANE);
    expect(result.capped).toBeUndefined();
    expect(capUsage({ ...SANE, providerCostUsd: 0.004 }).capped).toBeUndefined();
  });

  test('huge, negative, NaN and infinite counts are clamped and named', () => {
    const { usage, capped } = capUsage({ ...SANE, inputTokens: 1e15, outputTokens: -5, totalTokens: Number.NaN, reasoningTokens: Number.POSITIVE_INFINITY });
    expect(usage.inputTokens).toBe(MAX_USAGE_TOKENS);
    expect(usage.outputTokens).toBe(0);
    expect(usage.totalTokens).toBe(0);
    expect(usage.reasoningTokens).toBe(MAX_USAGE_TOKENS);
    expect(capped).toEqual({ inputTokens: '1000000000000000', outputTokens: '-5', totalTokens: 'NaN', reasoningTokens: 'Infinity' });
  });

  test('a count that is not a number at all is 0', () => {
    const { usage, capped } = capUsage({ ...SANE, cachedInputTokens: '12' as unknown as number });
    expect(usage.cachedInputTokens).toBe(0);
    expect(capped).toEqual({ cachedInputTokens: '12' });
  });

  test('a fractional count is rounded without a flag', () => {
    const { usage, capped } = capUsage({ ...SANE, outputTokens: 30.4 });
    expect(usage.outputTokens).toBe(30);
    expect(capped).toBeUndefined();
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
});
