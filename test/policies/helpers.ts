// Unit-test harness for the team policies: a policy set up over fake services whose snapshot holds
// the given teams, and request contexts built the way the lifecycle runner builds them.

import { descriptorFromError, ERROR_TABLE, KeywayError } from '../../core/errors.ts';
import { createRequestContext } from '../../core/lifecycle/context.ts';
import { redactSecrets } from '../../core/logger.ts';
import type { Hooks, PluginContributions, PluginDefinition, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import type { Clock } from '../../core/clock.ts';
import type { Counters } from '../../core/spec/counters.ts';
import type { PricingService, Services } from '../../core/spec/services.ts';
import type { UsageSummaryFilter, UsageSummaryRow } from '../../core/spec/store.ts';
import { TEAMS_SECTION, type TeamPermissions, type TeamsSection, type TeamView } from '../../plugins/teams/types.ts';

export const ACCOUNT = 'acct_test';
export const TEAM = 'team_test';

export function teamsSection(permissions: TeamPermissions | undefined, accountId = ACCOUNT): TeamsSection {
  const byId = new Map<string, TeamView>();
  if (permissions !== undefined) byId.set(TEAM, { id: TEAM, accountId, name: 'Engineering Team', permissions });
  return { byId, deletedById: new Map() };
}

const silentLogger = { warn() {}, info() {}, debug() {}, error() {}, child: () => silentLogger } as never;

/** The errors service over the one error table, as the core hands it to plugins. */
const stubErrors = {
  table: ERROR_TABLE,
  KeywayError,
  create: (code: never, values?: never, options?: never) => new KeywayError(code, values, options),
  descriptorOf: descriptorFromError,
  redact: redactSecrets,
};

/**
 * What the cost cap reads of its services: a clock, counters, prices, the teams section (`section`) and
 * the store's summary of the day's booked spend (`summarizeUsage`, where a test counts or delays reads).
 */
export function costCapServices(parts: {
  clock: Clock;
  counters: Counters;
  pricing: PricingService;
  section: TeamsSection;
  summarizeUsage: (filter: UsageSummaryFilter) => Promise<UsageSummaryRow[]>;
}): Services {
  const { clock, counters, pricing, section, summarizeUsage } = parts;
  return {
    clock,
    counters,
    pricing,
    logger: silentLogger,
    errors: stubErrors,
    snapshot: { current: {} as never, section: () => section, refresh: async () => {} },
    store: { summarizeUsage },
  } as unknown as Services;
}

/** The policy's hooks, set up with a snapshot whose `teams` section is `section`. */
export async function hooksOf(plugin: PluginDefinition, section: TeamsSection = teamsSection(undefined), config: unknown = {}): Promise<Hooks> {
  const contributions = await contributionsOf(plugin, section, config);
  return { ...plugin.hooks, ...contributions?.hooks };
}

/** What the plugin's setup contributes, over a services stub whose snapshot holds `section`. */
export async function contributionsOf(
  plugin: PluginDefinition,
  section: TeamsSection = teamsSection(undefined),
  config: unknown = {},
): Promise<PluginContributions | undefined> {
  const services = {
    errors: stubErrors,
    snapshot: { current: {} as never, section: (name: string) => (name === TEAMS_SECTION ? section : undefined), refresh: async () => {} },
    logger: silentLogger,
  };
  return (await plugin.setup?.({ config, logger: silentLogger, fetch, env: {}, dataDirectory: '/tmp', services: services as never })) ?? undefined;
}

export function principal(overrides: Partial<Principal> = {}): Principal {
  return { keyId: 'key_1', role: 'developer', accountId: ACCOUNT, teamId: TEAM, byokAccess: true, environment: undefined, settings: {}, ...overrides };
}

export interface ContextOptions {
  principal?: Partial<Principal>;
  headers?: Record<string, string>;
  body?: Partial<ChatRequest>;
  clientIp?: string;
}

export function context(options: ContextOptions = {}): RequestContext {
  const request = new Request('http://keyway.test/v1/chat/completions', { method: 'POST', headers: options.headers });
  const body: ChatRequest = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...options.body } as ChatRequest;
  return createRequestContext('req_1', request, principal(options.principal), 'chat', () => options.clientIp, body);
}

export function key(id: string, provider: string, settings: Record<string, unknown> = {}, owner: 'account' | 'platform' = 'account'): ProviderKeyRecord {
  return { id, provider, owner, accountId: owner === 'account' ? ACCOUNT : null, organizationId: undefined, settings, status: 'active', weight: 1 };
}

export function keyMap(keys: ProviderKeyRecord[]): Map<string, ProviderKeyRecord[]> {
  const map = new Map<string, ProviderKeyRecord[]>();
  for (const entry of keys) map.set(entry.provider, [...(map.get(entry.provider) ?? []), entry]);
  return map;
}

/** The KeywayError a hook refuses with, or undefined when it lets the request through. */
export async function refusalErrorOf(run: () => unknown): Promise<KeywayError | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    if (error instanceof KeywayError) return error;
    throw error;
  }
}

/** The error code a hook refuses with, or undefined when it lets the request through. */
export async function refusalOf(run: () => unknown): Promise<string | undefined> {
  return (await refusalErrorOf(run))?.code;
}

/** What the account stage hands the hooks for a call that cost `costUsd` (undefined: it failed, 502). */
export function outcomeOf(costUsd: number | undefined): RequestOutcome {
  return { status: costUsd === undefined ? 502 : 200, usage: undefined, finishReason: undefined, error: undefined, latencyMs: 1, streamed: false, costUsd };
}
