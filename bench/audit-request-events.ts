// bun bench/audit-request-events.ts — what one `request` audit event costs the gateway thread, in
// process. A request event is no row of its own any more: the account hook marks the usage row
// (the fingerprint: JSON of the request and its SHA-256), and the row carries three more fields
// through the usage journal line. Thread CPU time per request, medians over ROUNDS rounds of 20,000
// requests, of building and journaling the usage row with the mark against without it. The insert
// runs on the writer thread (see bench/RESULTS.md for its cost).

import { readFileSync } from 'node:fs';
import { journalLine } from '../core/accounting/journal-line.ts';
import { usageRow } from '../core/accounting/usage-row.ts';
import { createRequestContext } from '../core/lifecycle/context.ts';
import type { RequestOutcome } from '../core/spec/lifecycle.ts';
import type { ChatRequest } from '../core/spec/vocabulary.ts';
import { markAudited } from '../plugins/audit/request-events.ts';

const threadCpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const EVENTS = 20_000;

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

const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
let bytes = 0;
/** One round: thread CPU µs per request of the row and its journal line, marked for the audit or not. */
function round(audited: boolean): number {
  const start = threadCpu();
  for (let index = 0; index < EVENTS; index++) {
    const context = contexts[index % 64] as (typeof contexts)[number];
    context.usageAudit = undefined;
    if (audited) markAudited(context, true);
    bytes += journalLine(usageRow(context, outcome)).length;
  }
  return (threadCpu() - start) / 1000 / EVENTS;
}
const plain: number[] = [];
const marked: number[] = [];
for (let index = 0; index <= ROUNDS; index++) {
  // Alternated, so that neither side always runs on a warmer cache.
  const marking = index % 2 === 1;
  const first = round(marking);
  const second = round(!marking);
  const [plainTime, markedTime] = marking ? [second, first] : [first, second];
  // Round 0 warms up.
  if (index === 0) continue;
  plain.push(plainTime);
  marked.push(markedTime);
}
const extras = marked.map((value, index) => value - (plain[index] as number));
console.log(
  `request event, gateway thread: usage row + journal line ${median(plain).toFixed(2)} µs, marked for the audit ${median(marked).toFixed(2)} µs: +${median(extras).toFixed(2)} µs per request (medians of ${ROUNDS}, range ${Math.min(...extras).toFixed(2)}–${Math.max(...extras).toFixed(2)}; ${Math.round(bytes / EVENTS / (ROUNDS + 1) / 2)} B a line on average)`,
);
