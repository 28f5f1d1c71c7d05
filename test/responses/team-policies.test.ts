// The team policies through all three inbound APIs: the same request, refused by the same policy,
// gets the same status and code on /v1/chat/completions, /v1/messages and /v1/responses, reaches no
// upstream and is booked once under its endpoint. No surface skips a policy.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../core/clock.ts';
import { call, flushUsage } from '../helpers/gateway.ts';
import { startTeamGateway, type TeamGateway } from '../policies/team-fixture.ts';

const clock = new ManualClock(Date.UTC(2026, 11, 5, 9));
const SECRET_LOOKALIKE = `sk-proj-${'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNbVcXz'}`;
let setup: TeamGateway;

beforeAll(async () => {
  setup = await startTeamGateway(
    {
      providers: { openai: { enabled: true, models: ['gpt-4o*'], max_cost_per_day: 100, require_approval_above: 0.005 } },
      usage_controls: { require_project_tag: true, allowed_projects: ['project-a'], block_sensitive_content: true },
    },
    { clock },
  );
});

afterAll(async () => {
  await setup.stop();
});

type Api = 'chat' | 'messages' | 'responses';
const PATHS: Record<Api, string> = { chat: '/v1/chat/completions', messages: '/v1/messages', responses: '/v1/responses' };

interface Ask {
  model: string;
  text: string;
  maxTokens: number;
  project?: string;
}

function bodyFor(api: Api, ask: Ask): Record<string, unknown> {
  if (api === 'responses') return { model: ask.model, input: ask.text, max_output_tokens: ask.maxTokens };
  const messages = [{ role: 'user', content: ask.text }];
  return api === 'chat' ? { model: ask.model, messages, max_tokens: ask.maxTokens } : { model: ask.model, max_tokens: ask.maxTokens, messages };
}

async function outcome(api: Api, ask: Ask): Promise<{ status: number; code: string | undefined; upstreamCalls: number; booked: unknown[] }> {
  const before = setup.openai.inferenceRequests().length;
  const headers: Record<string, string> = ask.project === undefined ? {} : { 'x-project-tag': ask.project };
  const response = await call(setup.gateway, 'POST', PATHS[api], bodyFor(api, ask), { key: setup.memberKey, headers });
  const body = (await response.json()) as { error?: { code?: string; type?: string } };
  const requestId = response.headers.get('x-request-id');
  await flushUsage(setup.gateway);
  const rows = (await setup.gateway.runtime.store.listUsage('default')).filter((row) => row.requestId === requestId);
  return {
    status: response.status,
    code: body.error?.code ?? body.error?.type,
    upstreamCalls: setup.openai.inferenceRequests().length - before,
    booked: rows.map((row) => ({ status: row.status, endpoint: row.endpoint })),
  };
}

// 16: the least max_output_tokens OpenAI's Responses API takes (Keyway passes it through when OpenAI serves).
const ALLOWED: Ask = { model: 'gpt-4o-mini', text: 'Hello', maxTokens: 16, project: 'project-a' };

const REFUSALS: Array<[string, Ask, number, string]> = [
  ['a model outside the team allowlist', { ...ALLOWED, model: 'gpt-3.5-turbo' }, 403, 'model_not_allowed'],
  ['no project tag', { ...ALLOWED, project: undefined }, 403, 'project_tag_required'],
  ['a project not listed', { ...ALLOWED, project: 'project-z' }, 403, 'project_not_allowed'],
  ['a secret in the prompt', { ...ALLOWED, text: `use ${SECRET_LOOKALIKE} please` }, 400, 'sensitive_content_blocked'],
  ['a worst case above the approval threshold', { ...ALLOWED, model: 'gpt-4o', maxTokens: 1000 }, 403, 'approval_required'],
];

describe.each(REFUSALS)('%s', (_name, ask, status, code) => {
  test.each(['chat', 'messages', 'responses'] as const)('is refused on %s the same way, with no upstream call, booked once', async (api) => {
    const result = await outcome(api, ask);
    expect(result.status).toBe(status);
    // /v1/messages answers in Anthropic's shape, whose error type stands for the code.
    if (api !== 'messages') expect(result.code).toBe(code);
    expect(result.upstreamCalls).toBe(0);
    expect(result.booked).toEqual([{ status, endpoint: api === 'chat' ? 'chat' : api }]);
  });
});

test('the allowed request is served on all three', async () => {
  for (const api of ['chat', 'messages', 'responses'] as const) {
    const result = await outcome(api, ALLOWED);
    expect({ api, status: result.status, upstreamCalls: result.upstreamCalls }).toEqual({ api, status: 200, upstreamCalls: 1 });
    expect(result.booked).toEqual([{ status: 200, endpoint: api }]);
  }
});

test('the daily budget is enforced on /v1/responses too', async () => {
  const tight = await startTeamGateway({ providers: { openai: { enabled: true, max_cost_per_day: 0.000001 } } }, { clock });
  try {
    const before = tight.openai.inferenceRequests().length;
    for (const [path, body] of [
      ['/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 100 }],
      ['/v1/responses', { model: 'gpt-4o', input: 'Hi', max_output_tokens: 100 }],
    ] as const) {
      const response = await call(tight.gateway, 'POST', path, body, { key: tight.memberKey });
      expect(response.status).toBe(402);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('budget_exceeded');
    }
    expect(tight.openai.inferenceRequests().length).toBe(before);
  } finally {
    await tight.stop();
  }
});

test("a team's hosted_tools policy holds when OpenAI's own Responses API would serve the tool", async () => {
  const team = await startTeamGateway({ providers: { openai: { enabled: true } } }, { clock });
  try {
    const patched = await call(
      team.gateway,
      'PATCH',
      `/v1/teams/${team.teamId}`,
      { hosted_tools: { web_search: true, code_execution: false } },
      { key: team.adminKey },
    );
    expect(patched.status).toBe(200);
    const before = team.openai.inferenceRequests().length;
    const refused = await call(
      team.gateway,
      'POST',
      '/v1/responses',
      { model: 'gpt-4o', input: 'Run it', tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] },
      { key: team.memberKey },
    );
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: 'tool_not_allowed', param: 'tools[0]' });
    expect(team.openai.inferenceRequests().length).toBe(before);
    const allowed = await call(
      team.gateway,
      'POST',
      '/v1/responses',
      { model: 'gpt-4o', input: 'Search it', tools: [{ type: 'web_search' }] },
      { key: team.memberKey },
    );
    expect(allowed.status).toBe(200);
    expect(team.openai.inferenceRequests().at(-1)?.path).toBe('/v1/responses');
  } finally {
    await team.stop();
  }
});
