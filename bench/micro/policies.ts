// The budget policies' hooks on the hot path: cost-cap's reservation at `call` and its settlement at
// `account` (in-memory counters), and approvals' judgement of a request below its threshold. Fake
// services with round prices and the core's real prompt estimate; no store is touched (the team's
// seed is done before timing).

import { do_not_optimize, group } from 'mitata';
import { promptTokenBound } from '../../core/accounting/prompt-bound.ts';
import { estimatePromptTokens } from '../../core/accounting/token-estimate.ts';
import { MemoryCounters } from '../../core/counters/memory.ts';
import { ERROR_TABLE, KeywayError } from '../../core/errors.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import type { Services } from '../../core/spec/services.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { TEAMS_SECTION, type TeamView } from '../../plugins/teams/types.ts';
import { createApprovals } from '../../policies/approvals/index.ts';
import { createCostCap } from '../../policies/cost-cap/index.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { benchmark } from './registry.ts';

const ACCOUNT = 'acct_bench';
const TEAM = 'team_bench';

function services(): Services {
  const team: TeamView = {
    id: TEAM,
    accountId: ACCOUNT,
    name: 'Bench Team',
    permissions: { providers: { openai: { enabled: true, max_cost_per_day: 1e9, require_approval_above: 1e6 } } },
  };
  const section = { byId: new Map([[TEAM, team]]) };
  const logger = { warn() {}, info() {}, debug() {}, error() {} };
  return {
    clock: { now: () => Date.now() },
    counters: new MemoryCounters(),
    logger,
    pricing: {
      estimatePromptTokens,
      promptTokenBound,
      price: () => ({ inputPerToken: 2.5e-6, outputPerToken: 1e-5, maxOutputTokens: 16_384, maxInputTokens: 128_000 }),
    },
    errors: { table: ERROR_TABLE, KeywayError, create: (code: never, values?: never, options?: never) => new KeywayError(code, values, options) },
    snapshot: { current: {} as never, section: (name: string) => (name === TEAMS_SECTION ? section : undefined), refresh: async () => {} },
    store: { summarizeUsage: async () => [], query: async () => [], execute: async () => {} },
  } as unknown as Services;
}

function contextFor(request: ChatRequest): RequestContext {
  const principal = {
    keyId: 'key_bench',
    role: 'developer' as const,
    accountId: ACCOUNT,
    teamId: TEAM,
    byokAccess: true,
    environment: undefined,
    settings: {},
  };
  const context = createRequestContext(
    'req_bench',
    new Request('http://keyway.bench/v1/chat/completions', { method: 'POST' }),
    principal,
    'chat',
    () => undefined,
    request,
  );
  context.teamId = TEAM;
  const key = {
    id: 'pk_1',
    provider: 'openai',
    owner: 'account' as const,
    accountId: ACCOUNT,
    organizationId: undefined,
    settings: {},
    status: 'active',
    weight: 1,
  };
  context.candidates = [
    { provider: 'openai', model: 'gpt-4o', key },
    { provider: 'openai', model: 'gpt-4o', key: { ...key, id: 'pk_2' } },
  ];
  context.served = { provider: 'openai', model: 'gpt-4o', keyId: 'pk_1', owner: 'account' };
  return context;
}

const OUTCOME: RequestOutcome = { status: 200, usage: undefined, finishReason: undefined, error: undefined, latencyMs: 1, streamed: false, costUsd: 0.00042 };

export async function registerPolicyBenches(): Promise<void> {
  const shared = services();
  const costCap = createCostCap(shared);
  const approvals = createApprovals(shared);
  const request = { ...typicalChatRequest('gpt-4o'), max_tokens: 512 } as ChatRequest;
  // The first call seeds the team's counters from the (fake) store; the benches then run the steady state.
  await costCap.call(contextFor(request));

  group('policies', () => {
    benchmark('policies: cost-cap call (reserve) + account (settle)', () => {
      const context = contextFor(request);
      const reserving = costCap.call(context);
      if (reserving instanceof Promise) throw new Error('cost-cap should stay synchronous once seeded, with in-memory counters');
      do_not_optimize(costCap.account(context, OUTCOME));
    });
    benchmark('policies: approvals call below the threshold', () => {
      const context = contextFor(request);
      do_not_optimize(approvals.call(context));
    });
    benchmark('policies: cost-cap + approvals, no team', () => {
      const context = contextFor(request);
      context.teamId = undefined;
      do_not_optimize(approvals.call(context));
      do_not_optimize(costCap.call(context));
    });
  });
}
