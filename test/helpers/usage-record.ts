// One booked usage row for tests that write rows straight into a store: a served OpenAI call on the
// default account, changed by what each test cares about.

import type { UsageRecord } from '../../core/spec/store.ts';

let sequence = 0;

export function usageRecord(overrides: Partial<UsageRecord> = {}): UsageRecord {
  sequence++;
  return {
    requestId: `req_test_${sequence}`,
    accountId: 'default',
    gatewayKeyId: 'key_test',
    teamId: null,
    projectTag: null,
    endpoint: 'chat',
    provider: 'openai',
    model: 'gpt-4o',
    requestedModel: 'gpt-4o',
    providerKeyId: 'pk_test',
    byok: true,
    status: 200,
    errorCode: null,
    inputTokens: 100,
    outputTokens: 10,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    costUsd: 0.001,
    latencyMs: 12.5,
    streamed: false,
    fallbackAttempts: 0,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A request no provider served (refused by a policy, or failed everywhere): it cost nothing. */
export function unservedRecord(overrides: Partial<UsageRecord> = {}): UsageRecord {
  return usageRecord({ provider: null, model: null, providerKeyId: null, byok: false, status: 402, errorCode: 'budget_exceeded', costUsd: 0, ...overrides });
}

/**
 * Row `index` of a generated bench load: four accounts, twenty keys, a few teams and projects, two
 * models, some failures, a second apart from 2026-11-01 (bench/store-postgres.ts, bench/drivers.ts).
 */
export function generatedUsageRecord(index: number): UsageRecord {
  return usageRecord({
    requestId: `req_${index}`,
    accountId: `acct_${index % 4}`,
    gatewayKeyId: `key_${index % 20}`,
    teamId: index % 3 === 0 ? `team_${index % 5}` : null,
    projectTag: index % 4 === 0 ? 'churn' : null,
    endpoint: '/v1/chat/completions',
    provider: index % 5 === 0 ? 'anthropic' : 'openai',
    model: index % 2 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
    providerKeyId: `pk_${index % 6}`,
    byok: index % 3 !== 0,
    status: index % 50 === 0 ? 500 : 200,
    inputTokens: 500 + (index % 300),
    outputTokens: 100 + (index % 50),
    costUsd: 0.0012,
    latencyMs: 240,
    streamed: index % 2 === 0,
    fallbackAttempts: 0,
    createdAt: new Date(Date.UTC(2026, 10, 1) + index * 1000).toISOString(),
  });
}

/** A served gpt-4o-mini call as the usage benches book it, under the given request id. */
export function benchUsageRecord(requestId: string, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return usageRecord({
    requestId,
    gatewayKeyId: 'gk_bench_operator',
    model: 'gpt-4o-mini',
    requestedModel: 'gpt-4o-mini',
    providerKeyId: 'pk_bench',
    byok: false,
    inputTokens: 212,
    outputTokens: 96,
    cacheWrite1hTokens: 0,
    costUsd: 0.0000894,
    latencyMs: 0.412,
    fallbackAttempts: 1,
    usageEstimated: false,
    ...overrides,
  });
}
