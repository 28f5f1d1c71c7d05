// Shared by the suites that run several gateways on the test Redis against one team's budget: each
// gateway's environment, and the team, set up once by a gateway that stops before the suite starts
// the gateways it tests on that data folder (or on copies of it).

import { expect } from 'bun:test';
import type { PricingService } from '../../core/spec/services.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { addProviderKeys, call, startTestGateway } from '../helpers/gateway.ts';
import { dataFolderEnv } from '../process/process-helpers.ts';
import { TEST_REDIS_URL } from './redis.ts';

/**
 * The environment of a gateway on its own data folder, its OpenAI upstream at `openaiUrl` and its
 * counters on the test Redis under `prefix` (one prefix a suite: its gateways share the counters);
 * `extra` is added last and wins.
 */
export function sharedCountersEnv(
  directory: string,
  options: { openaiUrl: string; prefix: string; operatorKey?: string; extra?: Record<string, string> },
): Record<string, string> {
  return dataFolderEnv(directory, {
    operatorKey: options.operatorKey,
    upstreams: { openai: options.openaiUrl },
    extra: { KEYWAY_REDIS_URL: TEST_REDIS_URL, KEYWAY_REDIS_PREFIX: options.prefix, ...options.extra },
  });
}

/** `request`'s worst case on OpenAI's `request.model` in nano-dollars, its prompt at the token bound: what a budget reserves for it. */
export function worstCaseOf(pricing: PricingService, request: ChatRequest): number {
  return worstCaseNanos(pricing, request, 'openai', request.model, pricing.promptTokenBound(request)) as number;
}

export interface BudgetedTeam {
  teamId: string;
  /** The key of the team's one member, a developer. */
  memberKey: string;
  /** The team's daily OpenAI cap, in USD. */
  capUsd: number;
}

/**
 * On a gateway started with `env` and stopped after: the OpenAI key (`openaiKey`) and a team whose
 * daily OpenAI cap `capFrom` works out from the gateway's prices (a number of worst cases, so the
 * suites need not know the catalog's figures).
 */
export async function setUpBudgetedTeam(env: Record<string, string>, openaiKey: string, capFrom: (pricing: PricingService) => number): Promise<BudgetedTeam> {
  const setup = await startTestGateway({ probes: false, logLevel: 'warn', env });
  await addProviderKeys(setup, [{ name: 'openai', api_key: openaiKey }], setup.defaultAdminKey);
  const capUsd = capFrom(setup.runtime.services.pricing);
  const created = await call(
    setup,
    'POST',
    '/v1/teams',
    {
      name: 'Engineering Team',
      byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: capUsd } } },
      members: [{ email: 'developer@company.com', role: 'developer', byok_access: true }],
    },
    { key: setup.defaultAdminKey },
  );
  expect(created.status).toBe(201);
  const body = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
  await setup.stop();
  return { teamId: body.id, memberKey: body.members[0]?.api_key ?? '', capUsd };
}
