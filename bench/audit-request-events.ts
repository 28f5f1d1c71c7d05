// bun bench/audit-request-events.ts — what one `request` audit event costs the gateway thread, in
// process: the account hook's enqueue (metadata, fingerprint, serialisation) and the write side up to
// the store's hand-off (row parameters, then the JSON the SQLite writer client sends its thread). Thread
// CPU time per event, medians over ROUNDS rounds of 20,000 events: steadier than wall time on a shared
// machine. The insert itself runs on the writer thread (see bench/RESULTS.md for its cost).

import { readFileSync } from 'node:fs';
import { createRequestContext } from '../core/lifecycle/context.ts';
import type { Logger } from '../core/logger.ts';
import type { RequestOutcome } from '../core/spec/lifecycle.ts';
import type { Services } from '../core/spec/services.ts';
import type { ChatRequest } from '../core/spec/vocabulary.ts';
import { AuditQueue } from '../plugins/audit/queue.ts';
import { queueRequestEvents } from '../plugins/audit/request-events.ts';

const threadCpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const EVENTS = 20_000;

let handedOff = 0;
const services = {
  store: {
    // What the SQLite writer client does with a batch before posting it to its thread.
    appendRows: async (_table: string, _columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>) => {
      handedOff += JSON.stringify(rows).length;
    },
  },
  credentials: { randomId: () => 'x_abcdefghijkl' },
  clock: { now: () => Date.now() },
} as unknown as Services;
const queue = new AuditQueue(services, { error: () => undefined } as unknown as Logger);

const body: ChatRequest = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };
const principal = {
  keyId: 'key_0123456789abcdef',
  role: 'developer' as const,
  accountId: 'acct_bench',
  teamId: 'team_bench',
  byokAccess: true,
  environment: undefined,
  settings: {},
};
const outcome: RequestOutcome = {
  status: 200,
  usage: { inputTokens: 200, outputTokens: 20, totalTokens: 220, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
  finishReason: undefined,
  error: undefined,
  latencyMs: 3.2,
  streamed: false,
  costUsd: 0.00013,
};
const contexts = Array.from({ length: 64 }, (_, index) => {
  const context = createRequestContext(
    `req_${index}`,
    new Request('http://keyway.bench/v1/chat/completions', { method: 'POST' }),
    principal,
    'chat',
    () => '127.0.0.1',
    structuredClone(body),
  );
  context.teamId = 'team_bench';
  context.projectTag = 'project-a';
  context.served = { provider: 'openai', model: 'gpt-3.5-turbo', keyId: 'pk_0123456789abcdef', owner: 'account' };
  return context;
});

const logging = { keyAccess: false, requests: true, fingerprint: true };
const now = new Date().toISOString();
const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
const enqueue: number[] = [];
const write: number[] = [];
for (let round = 0; round <= ROUNDS; round++) {
  const start = threadCpu();
  for (let index = 0; index < EVENTS; index++) queueRequestEvents(queue, logging, contexts[index % 64] as (typeof contexts)[number], outcome, now);
  const queued = threadCpu();
  await queue.flush();
  const done = threadCpu();
  // Round 0 warms up.
  if (round === 0) continue;
  enqueue.push((queued - start) / 1000 / EVENTS);
  write.push((done - queued) / 1000 / EVENTS);
}
console.log(
  `request event, gateway thread: enqueue ${median(enqueue).toFixed(2)} µs + write side ${median(write).toFixed(2)} µs = ${(median(enqueue) + median(write)).toFixed(2)} µs per event (medians of ${ROUNDS}; ${Math.round(handedOff / EVENTS / (ROUNDS + 1))} B handed off per event)`,
);
