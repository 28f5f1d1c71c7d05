// A gateway with one team made through POST /v1/teams (the seed's body shape), its member's key, and
// the account's OpenAI key pointing at the simulator: the setting of the budget and approval tests.

import { afterAll, beforeAll } from 'bun:test';
import { countChatCompletionTokens } from 'gpt-tokenizer/model/gpt-4o';
import type { Clock } from '../../core/clock.ts';
import type { AlertEvent, PluginDefinition } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import type { PluginSource } from '../../core/registry.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { utcDay } from '../../policies/cost-cap/worst-case.ts';
import { addProviderKeys, call, flushUsage, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type PromptCounter, startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

export const OPENAI_KEY = 'sk-proj-PolicyTestsOpenAIKey000000000001';

export interface TeamGateway {
  gateway: TestGateway;
  openai: SimulatorHandle;
  teamId: string;
  memberKey: string;
  /** The team's admin member (lead@company.com): manages the team, cannot act on the account. */
  leadKey: string;
  adminKey: string;
  stop(): Promise<void>;
}

/**
 * One team gateway for the describe block it is called in: started before its tests, stopped after.
 * Read it through the function once the tests run.
 */
export function teamGatewayPerSuite(byokPermissions: TeamPermissions): () => TeamGateway {
  let setup: TeamGateway | undefined;
  beforeAll(async () => {
    setup = await startTeamGateway(byokPermissions);
  });
  afterAll(async () => {
    await setup?.stop();
  });
  return () => {
    if (setup === undefined) throw new Error('the team gateway is read before the suite started it');
    return setup;
  };
}

export async function startTeamGateway(
  byokPermissions: TeamPermissions,
  options: {
    clock?: Clock;
    env?: Record<string, string>;
    extraPlugins?: PluginSource[];
    promptTokens?: PromptCounter;
    /** The dated model the simulator answers a requested name with, as OpenAI does. */
    servedModels?: Record<string, string>;
    /** The OpenAI key's settings (`max_tokens_default`…). */
    keySettings?: Record<string, unknown>;
  } = {},
): Promise<TeamGateway> {
  const openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY], promptTokens: options.promptTokens, servedModels: options.servedModels });
  const gateway = await startTestGateway({
    clock: options.clock,
    extraPlugins: options.extraPlugins,
    probes: false,
    logLevel: 'warn',
    env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, ...options.env },
  });
  const adminKey = gateway.defaultAdminKey;
  await addProviderKeys(
    gateway,
    [{ name: 'openai', api_key: OPENAI_KEY, ...(options.keySettings === undefined ? {} : { settings: options.keySettings }) }],
    adminKey,
  );
  const response = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Engineering Team',
      byok_permissions: byokPermissions,
      members: [
        { email: 'developer@company.com', role: 'developer', byok_access: true },
        { email: 'lead@company.com', role: 'admin', byok_access: true },
      ],
    },
    { key: adminKey },
  );
  const body = (await response.json()) as { id: string; members: Array<{ role: string; api_key: string }> };
  if (response.status !== 201) throw new Error(`creating the team failed: ${response.status} ${JSON.stringify(body)}`);
  const member = body.members.find((entry) => entry.role === 'developer');
  const lead = body.members.find((entry) => entry.role === 'admin');
  if (member === undefined || lead === undefined) throw new Error('the team has no developer or admin member');
  return {
    gateway,
    openai,
    teamId: body.id,
    memberKey: member.api_key,
    leadKey: lead.api_key,
    adminKey,
    async stop() {
      await gateway.stop();
      await openai.stop();
    },
  };
}

/** An alert channel that keeps every event it is sent in `events`: the pages a team's admins would get, for the approval suites. */
export function recordingAlertChannel(events: AlertEvent[]): PluginDefinition {
  return {
    name: 'alert-recorder',
    version: '1.0.0',
    apiVersion: 1,
    kind: 'alert-channel',
    setup: () => ({
      alertChannel: { name: 'recorder', accepts: (target: string) => target.includes('@'), send: async (event: AlertEvent) => void events.push(event) },
    }),
  };
}

export interface ErrorBody {
  error: { code: string; message: string; type: string; [extra: string]: unknown };
}

/** Sets (null: removes) the team's OpenAI `max_cost_per_day` through the API, as an admin would, and waits for the snapshot. */
export async function setOpenAIDailyCap(setup: TeamGateway, capUsd: number | null): Promise<void> {
  const patched = await call(
    setup.gateway,
    'PATCH',
    `/v1/teams/${setup.teamId}`,
    { byok_permissions: { providers: { openai: { max_cost_per_day: capUsd } } } },
    { key: setup.adminKey },
  );
  if (patched.status !== 200) throw new Error(`setting the cap answered ${patched.status}: ${await patched.text()}`);
  await setup.gateway.runtime.services.snapshot.refresh();
}

/** What the team's OpenAI usage booked today, read from the store once every queued row is written: requests and USD. */
export async function bookedOpenAIToday(setup: TeamGateway): Promise<{ requests: number; costUsd: number }> {
  await flushUsage(setup.gateway);
  const day = utcDay(Date.now());
  const rows = await setup.gateway.runtime.store.summarizeUsage({
    accountId: 'default',
    teamId: setup.teamId,
    from: new Date(day.start).toISOString(),
    to: new Date(day.end).toISOString(),
  });
  const openai = rows.filter((row) => row.provider === 'openai');
  return { requests: openai.reduce((sum, row) => sum + row.requests, 0), costUsd: openai.reduce((sum, row) => sum + row.costUsd, 0) };
}

if (countChatCompletionTokens === undefined) throw new Error('gpt-tokenizer no longer counts chat completions for gpt-4o');
/** What OpenAI bills a chat's prompt on gpt-4o and gpt-4o-mini (o200k_base, its chat format). */
export const realPromptTokens = countChatCompletionTokens;

/** A team with an OpenAI budget, on a simulator that bills each prompt at OpenAI's own count (realPromptTokens). */
export function startTokenBilledTeamGateway(options: { env?: Record<string, string> } = {}): Promise<TeamGateway> {
  return startTeamGateway(
    { providers: { openai: { enabled: true, max_cost_per_day: 1000 } } },
    { ...options, promptTokens: (messages) => realPromptTokens({ messages: messages as Array<{ role: 'user'; content: string }> }) },
  );
}

/** Sends every request at once as the team's member; each answer's status and error code. */
/**
 * Posts the requests at once with the OpenAI simulator holding every answer until `refusals` of them
 * were answered otherwise (or 15 s passed), so every reservation is made before any settles: the
 * served count is then what the cap holds, not what settling to real costs frees. A fixed delay
 * assumed the machine made 40 reservations within it; a loaded one did not, and early settlements
 * let more in (correctly, but not the figure under test).
 */
export async function postChatsAtOnce(
  setup: TeamGateway,
  requests: ChatRequest[],
  refusals: number,
): Promise<Array<{ status: number; code: string | undefined; promptTokens: number | undefined }>> {
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let refused = 0;
  if (refusals === 0) release();
  setup.openai.setSticky({ kind: 'hold', until: released, maxMs: 15_000 });
  try {
    return await Promise.all(
      requests.map(async (request) => {
        const response = await fetch(`${setup.gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${setup.memberKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(request),
        });
        const body = (await response.json()) as { usage?: { prompt_tokens: number }; error?: { code: string } };
        if (response.status !== 200 && ++refused >= refusals) release();
        return { status: response.status, code: body.error?.code, promptTokens: body.usage?.prompt_tokens };
      }),
    );
  } finally {
    setup.openai.setSticky(undefined);
  }
}

/** A member's short gpt-4o call (16 output tokens at most), streamed or not: the budget tests' unit of spend. */
export function memberSummaryChat(setup: TeamGateway, stream: boolean): Promise<Response> {
  return call(
    setup.gateway,
    'POST',
    '/v1/chat/completions',
    { model: 'gpt-4o', max_tokens: 16, stream, messages: [{ role: 'user', content: 'Summarise the release notes in one line, please.' }] },
    { key: setup.memberKey },
  );
}
