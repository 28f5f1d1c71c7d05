// QA15 cluster #3: a gateway SIGKILLed with requests in flight upstream, streams that had already
// sent content among them, lost their usage: the provider billed them, and no row, analytics or
// budget saw them. Now every upstream call has exactly one row after a restart: the answered ones
// their own, the ones in flight an estimate (flagged, `gateway_stopped`), streams at least what they
// had delivered. A replay run again over the same files (one that died before deleting them) books
// nothing twice.

import { expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promptTokenBound } from '../../core/accounting/prompt-bound.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import {
  addOpenAIKey,
  dataFolderEnv,
  FROM_SOURCE,
  logLines,
  simulatorAndScratch,
  ssePayloads,
  startGatewayProcess,
  type GatewayProcess,
} from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-InFlightReplayUpstreamKey00000000001';
const OPERATOR_KEY = 'kw_op_InFlightReplayOperatorKey0123456789ab';
/** The simulator echoes it back 8 characters a chunk: about 60 content chunks. */
const LONG_PROMPT = 'Please repeat this sentence back to me slowly, word for word, so that the answer streams for a good while. '.repeat(4);

const suite = simulatorAndScratch(UPSTREAM_KEY);

function gatewayEnv(directory: string): Record<string, string> {
  // Rows stay in the journal until a flush a minute away: the replay is all that writes them.
  return dataFolderEnv(directory, { operatorKey: OPERATOR_KEY, upstreams: { openai: suite.simulator.url }, extra: { KEYWAY_USAGE_FLUSH_MS: '60000' } });
}

interface Row {
  request_id: string;
  status: number;
  error_code: string | null;
  usage_estimated: number;
  streamed: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  provider: string | null;
}

function rows(directory: string): Row[] {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return database
      .query('SELECT request_id, status, error_code, usage_estimated, streamed, input_tokens, output_tokens, cost_usd, provider FROM usage_records')
      .all() as Row[];
  } finally {
    database.close();
  }
}

function send(url: string, requestId: string, stream: boolean): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content: LONG_PROMPT }] }),
  });
}

/** Waits until the simulator has received `count` inference requests in all. */
async function upstreamCalls(count: number): Promise<void> {
  for (let waited = 0; suite.simulator.inferenceRequests().length < count; waited += 10) {
    if (waited > 10_000) throw new Error(`the simulator received ${suite.simulator.inferenceRequests().length} requests, not ${count}`);
    await Bun.sleep(10);
  }
}

/** Reads a stream as it comes; `chunks()` counts the content events the client has had so far. */
function readStream(response: Response): { chunks(): number; done: Promise<void> } {
  let text = '';
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      for await (const part of response.body as ReadableStream<Uint8Array>) text += decoder.decode(part, { stream: true });
    } catch {
      // Cut by the kill.
    }
  })();
  return { chunks: () => ssePayloads(text).filter((payload) => payload.includes('"content":"') && !payload.includes('"content":""')).length, done };
}

test('SIGKILL with non-streamed and streamed requests in flight: after a restart every upstream call has exactly one row; a second replay books nothing more', async () => {
  const directory = suite.dataDirectory('in-flight');
  let gateway: GatewayProcess | undefined = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    suite.simulator.reset();
    const url = gateway.url;

    // Answered before the kill: one plain, one streamed.
    expect(((await (await send(url, 'req_answered_plain', false)).json()) as { choices?: unknown }).choices).toBeDefined();
    expect(ssePayloads(await (await send(url, 'req_answered_stream', true)).text()).at(-1)).toBe('[DONE]');

    // In flight at the kill: three answers the upstream holds back, two streams that trickle.
    const held = ['req_held_1', 'req_held_2', 'req_held_3'];
    const pending: Array<Promise<unknown>> = [];
    for (const [index, requestId] of held.entries()) {
      suite.simulator.inject({ kind: 'delay', delayMs: 60_000 });
      pending.push(send(url, requestId, false).catch(() => undefined));
      await upstreamCalls(3 + index);
    }
    const streams: Array<ReturnType<typeof readStream>> = [];
    for (const [index, requestId] of ['req_stream_1', 'req_stream_2'].entries()) {
      suite.simulator.inject({ kind: 'slow_stream', delayMs: 120 });
      const response = await send(url, requestId, true);
      expect(response.status).toBe(200);
      streams.push(readStream(response));
      await upstreamCalls(6 + index);
    }
    // Content reached the clients, over more than one progress interval (2 s).
    for (let waited = 0; streams.some((stream) => stream.chunks() < 20) && waited < 15_000; waited += 20) await Bun.sleep(20);
    const delivered = streams.map((stream) => stream.chunks());
    expect(Math.min(...delivered)).toBeGreaterThanOrEqual(20);

    gateway.process.kill('SIGKILL');
    await gateway.waitForExit();
    gateway = undefined;
    await Promise.all([...pending, ...streams.map((stream) => stream.done)]);
    const calls = suite.simulator.inferenceRequests().length;
    expect(calls).toBe(7);
    // Kept aside: the files as the dead process left them, for a replay run again over them.
    const journal = join(directory, 'usage-journal');
    const saved = join(directory, 'journal-copy');
    mkdirSync(saved);
    for (const name of readdirSync(journal)) cpSync(join(journal, name), join(saved, name));

    gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
    expect(logLines(gateway.stdout()).some((line) => line.msg === 'replaying the usage journal of a previous run')).toBe(true);
    const booked = rows(directory);
    // Every upstream call, exactly one row.
    expect(booked).toHaveLength(calls);
    expect(booked.map((row) => row.request_id).sort()).toEqual(['req_answered_plain', 'req_answered_stream', ...held, 'req_stream_1', 'req_stream_2'].sort());
    const byId = new Map(booked.map((row) => [row.request_id, row]));
    for (const answered of ['req_answered_plain', 'req_answered_stream'])
      expect(byId.get(answered)).toMatchObject({ status: 200, error_code: null, usage_estimated: 0 });
    for (const requestId of [...held, 'req_stream_1', 'req_stream_2']) {
      const row = byId.get(requestId) as Row;
      expect(row).toMatchObject({ status: 503, error_code: 'gateway_stopped', usage_estimated: 1, provider: 'openai' });
      expect(row.input_tokens).toBeGreaterThan(0);
      expect(row.cost_usd).toBeGreaterThan(0);
    }
    for (const requestId of held) expect(byId.get(requestId)).toMatchObject({ streamed: 0, output_tokens: 0 });
    // The streams are booked for what they delivered (as of their last progress mark), never 0.
    for (const requestId of ['req_stream_1', 'req_stream_2']) {
      const row = byId.get(requestId) as Row;
      expect(row.streamed).toBe(1);
      expect(row.output_tokens).toBeGreaterThan(0);
    }
    expect(await gateway.stop('SIGTERM')).toBe(0);
    gateway = undefined;

    // The replay run again over the same files, as if the first had died before deleting them.
    for (const name of readdirSync(saved)) cpSync(join(saved, name), join(journal, name));
    gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
    expect(logLines(gateway.stdout()).some((line) => line.msg === 'replaying the usage journal of a previous run')).toBe(true);
    expect(rows(directory)).toHaveLength(calls);
    expect(await gateway.stop('SIGTERM')).toBe(0);
    gateway = undefined;
    expect(rows(directory)).toHaveLength(calls);
    expect(readdirSync(journal).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
  } finally {
    await gateway?.stop('SIGKILL').catch(() => undefined);
  }
}, 90_000);

// QA18 multi #1: a budget near its cap counts the prompt with the provider's tokenizer and reserves
// that count. A call in flight at a SIGKILL used to be booked at the prompt's byte bound (four times
// English prose's tokens): three such calls booked $0.1996 against a $0.10 cap. It is now booked at
// the count its reservation held.
test('SIGKILL with a budgeted call in flight whose prompt the budget counted: the replay books the count, not the byte bound', async () => {
  const directory = suite.dataDirectory('in-flight-counted');
  let gateway: GatewayProcess | undefined = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
  try {
    await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
    // About 4,000 bytes of prose: its byte bound is about four times its tokens.
    const words = ['budget', 'release', 'notes', 'the', 'team', 'gateway', 'provider', 'summarise', 'quarterly', 'report'];
    const content = Array.from({ length: 550 }, (_, index) => words[(index * 7) % words.length] as string).join(' ');
    const body = { model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content }] };
    const bound = promptTokenBound(body as ChatRequest);
    // gpt-4o at $2.50 per million prompt tokens: the bound's worst case (~$0.0101) is above the cap, the counted one (~$0.0016) fits.
    const team = await fetch(`${gateway.url}/v1/teams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Counted Team',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 0.005 } } },
        members: [{ email: 'dev@example.com', role: 'developer' }],
      }),
    });
    expect(team.status).toBe(201);
    const memberKey = String(((await team.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key);
    suite.simulator.reset();
    suite.simulator.inject({ kind: 'delay', delayMs: 60_000 });
    const pending = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${memberKey}`, 'content-type': 'application/json', 'x-request-id': 'req_counted_held' },
      body: JSON.stringify(body),
    }).catch(() => undefined);
    await upstreamCalls(1);
    // Past one mark interval (1 s): the call's open mark is in the journal.
    await Bun.sleep(1_500);
    gateway.process.kill('SIGKILL');
    await gateway.waitForExit();
    gateway = undefined;
    await pending;

    gateway = await startGatewayProcess({ command: FROM_SOURCE, cwd: directory, env: gatewayEnv(directory) });
    const row = rows(directory).find((booked) => booked.request_id === 'req_counted_held') as Row;
    expect(row).toMatchObject({ status: 503, error_code: 'gateway_stopped', usage_estimated: 1, provider: 'openai' });
    expect(row.input_tokens).toBeGreaterThan(0);
    expect(row.input_tokens).toBeLessThan(bound / 2);
    expect(row.cost_usd).toBeLessThanOrEqual(0.005);
    expect(await gateway.stop('SIGTERM')).toBe(0);
    gateway = undefined;
  } finally {
    await gateway?.stop('SIGKILL').catch(() => undefined);
  }
}, 60_000);
