// A Codex-style session replayed through Keyway: what Codex CLI sends (Bearer key, originator,
// session-id and turn headers, store: false, include of encrypted reasoning, prompt_cache_key, a
// shell function tool, every turn streamed, the whole conversation resent with each turn's items),
// several turns with tool calls, against providers other than OpenAI.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { anthropicDescriptor, cohereDescriptor, googleDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call, flushUsage } from '../helpers/gateway.ts';
import { checkResponsesStream, parseResponsesSse } from './event-sequence.ts';

let world: ClientWorld;

beforeAll(async () => {
  world = await startClientWorld([anthropicDescriptor, googleDescriptor, cohereDescriptor]);
});

afterAll(async () => {
  await world.stop();
});

type Json = Record<string, unknown>;

const CODEX_TOOLS = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Runs a command and answers its output.',
    strict: false,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
  {
    type: 'function',
    name: 'get_time',
    description: 'Answers the time in a zone.',
    strict: false,
    parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'], additionalProperties: false },
  },
];

function codexHeaders(turn: number): Record<string, string> {
  return {
    originator: 'codex_cli_rs',
    'session-id': '0199-session',
    'thread-id': '0199-thread',
    'x-codex-beta-features': 'unified_exec',
    'x-codex-turn-metadata': JSON.stringify({ turn }),
    accept: 'text/event-stream',
  };
}

async function turn(model: string, input: Json[], number: number): Promise<{ items: Json[]; text: string; requestId: string | null }> {
  const body = {
    model,
    instructions: 'You are Codex, a coding agent.',
    input,
    tools: CODEX_TOOLS,
    tool_choice: 'auto',
    parallel_tool_calls: false,
    reasoning: { effort: 'medium', summary: 'auto' },
    store: false,
    stream: true,
    include: ['reasoning.encrypted_content'],
    prompt_cache_key: '0199-session',
  };
  const response = await call(world.gateway, 'POST', '/v1/responses', body, { key: world.gateway.defaultAdminKey, headers: codexHeaders(number) });
  expect(response.status).toBe(200);
  const checked = checkResponsesStream(parseResponsesSse(await response.text()));
  expect(checked.terminal).toBe('response.completed');
  return { items: checked.items, text: checked.text, requestId: response.headers.get('x-request-id') };
}

describe.each([anthropicDescriptor, googleDescriptor, cohereDescriptor].map((descriptor) => [descriptor.name, descriptor.model] as const))(
  'a Codex session on %s (%s)',
  (provider, model) => {
    test('three turns: a tool call, its output answered, a new question over the whole history', async () => {
      const conversation: Json[] = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] }];
      const first = await turn(model, conversation, 1);
      const calls = first.items.filter((item) => item.type === 'function_call');
      // parallel_tool_calls: false, as Codex sends it: one call per turn.
      expect(calls.map((item) => [item.name, JSON.parse(String(item.arguments))])).toEqual([['get_weather', { city: 'sample' }]]);
      // Codex resends every item it was given, a reasoning item included, then the call's output.
      conversation.push(
        { type: 'reasoning', id: 'rs_replayed', summary: [], encrypted_content: 'gAAAAB-opaque' },
        ...first.items,
        ...calls.map((item) => ({ type: 'function_call_output', call_id: item.call_id, output: '18C' })),
      );

      const second = await turn(model, conversation, 2);
      expect(second.text).toBe('Tool results: 18C');
      conversation.push(...second.items, { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Thanks, that is all.' }] });

      const third = await turn(model, conversation, 3);
      // The simulated model, given tools and a new question, calls a tool again: the session goes on.
      expect(third.items.length).toBeGreaterThan(0);

      await flushUsage(world.gateway);
      const rows = (await world.gateway.runtime.store.listUsage('default')).filter((row) =>
        [first, second, third].some((done) => done.requestId === row.requestId),
      );
      expect(rows.map((row) => ({ endpoint: row.endpoint, provider: row.provider, status: row.status }))).toEqual(
        Array.from({ length: 3 }, () => ({ endpoint: 'responses', provider, status: 200 })),
      );
      expect(rows.every((row) => row.inputTokens > 0 && row.outputTokens > 0)).toBe(true);
    });
  },
);

const APPLY_PATCH = {
  type: 'custom',
  name: 'apply_patch',
  description: 'Applies a patch to the workspace.',
  format: { type: 'grammar', syntax: 'lark', definition: 'start: "*** Begin Patch" LF hunk+ "*** End Patch"' },
};

describe.each([anthropicDescriptor, googleDescriptor].map((descriptor) => [descriptor.name, descriptor.model] as const))(
  "Codex's free-form apply_patch (a custom tool) on %s",
  (provider, model) => {
    test.each([false, true])('the call comes back as a custom_tool_call and its output is answered (streamed: %p)', async (stream) => {
      const question = [{ type: 'message', role: 'user', content: 'Apply the fix' }];
      const response = await call(
        world.gateway,
        'POST',
        '/v1/responses',
        { model, input: question, tools: [APPLY_PATCH], tool_choice: { type: 'custom', name: 'apply_patch' }, stream },
        { key: world.gateway.defaultAdminKey, headers: codexHeaders(1) },
      );
      expect(response.status).toBe(200);
      const items = stream ? checkResponsesStream(parseResponsesSse(await response.text())).items : ((await response.json()) as { output: Json[] }).output;
      expect(items.map((item) => ({ type: item.type, name: item.name, input: item.input }))).toEqual([
        { type: 'custom_tool_call', name: 'apply_patch', input: 'sample' },
      ]);
      // The provider saw a function taking one string, with the grammar in its description.
      const upstream = JSON.stringify(world.simulator(provider).inferenceRequests().at(-1)?.body);
      expect(upstream).toContain('*** Begin Patch');

      const second = await call(
        world.gateway,
        'POST',
        '/v1/responses',
        { model, tools: [APPLY_PATCH], input: [...question, ...items, { type: 'custom_tool_call_output', call_id: items[0]?.call_id, output: 'Done!' }] },
        { key: world.gateway.defaultAdminKey },
      );
      expect(second.status).toBe(200);
      const answer = (await second.json()) as { output: Array<{ content?: Array<{ text: string }> }> };
      expect(answer.output[0]?.content?.[0]?.text).toBe('Tool results: Done!');
    });
  },
);
