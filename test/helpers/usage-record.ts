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
